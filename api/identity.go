package api

import (
	"github.com/kairoshq/kairos/signals"
)

// identityVerifier checks the user of events sent with a publishable key
// against their user_hash (Config.IdentityVerification).
type identityVerifier struct {
	mode    IdentityVerification
	secrets [][]byte
}

func newIdentityVerifier(c Config) identityVerifier {
	v := identityVerifier{mode: c.IdentityVerification}
	for _, s := range c.IdentitySecrets {
		v.secrets = append(v.secrets, []byte(s))
	}
	return v
}

// Reasons of a user_hash rejection.
const (
	reasonHashMissing = "missing: this server verifies identities, so an event with a user sent with the publishable key " +
		"needs user_hash, the hex HMAC-SHA256 of the user id under the identity secret, computed by the site's back end " +
		"(kairos.identify(userId, userHash))"
	reasonHashWrong = "does not match user: want the hex HMAC-SHA256 of the user id under the identity secret"
)

// check returns the per-event check of a caller p: for a publishable key,
// the user of an event must be proven by its user_hash as the mode
// requires; the secret key is trusted. user_hash is removed from every
// event, verified or not: it is a credential of the user and is never
// published or stored.
func (v identityVerifier) check(p principal) func(e *signals.Event) *signals.FieldError {
	return func(e *signals.Event) *signals.FieldError {
		hash := e.UserHash
		e.UserHash = ""
		if p.kind != kindPublishable {
			return nil
		}
		return v.verify(e.User, hash)
	}
}

// verify checks hash for user under the mode; "" user needs nothing.
func (v identityVerifier) verify(user, hash string) *signals.FieldError {
	if user == "" || v.mode == IdentityOff {
		return nil
	}
	if hash == "" {
		if v.mode == IdentityOptional {
			return nil
		}
		return &signals.FieldError{Field: "user_hash", Reason: reasonHashMissing}
	}
	if !signals.VerifyUserHash(v.secrets, user, hash) {
		return &signals.FieldError{Field: "user_hash", Reason: reasonHashWrong}
	}
	return nil
}

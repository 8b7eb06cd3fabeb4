package signals

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// MaxUserHashBytes bounds user_hash (UserHash is 64 hex digits).
const MaxUserHashBytes = 128

// UserHash returns the identity verification hash of user: the lowercase
// hex HMAC-SHA256 of the user id under the site's identity secret. The
// site's back end computes it and hands it to the page, which passes it
// to kairos.identify(userId, userHash); the collector then trusts the
// user id of the browser's events (Event.UserHash). The same value in a
// shell:
//
//	printf %s "$USER_ID" | openssl dgst -sha256 -hmac "$KAIROS_IDENTITY_SECRET" | sed 's/^.* //'
func UserHash(secret []byte, user string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(user))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyUserHash reports whether hash is UserHash(s, user) for one of
// secrets (several allow rotation: add the new secret, move the site's back
// end to it, remove the old one). Hex digits may be upper or lower case.
// The comparison takes the same time whichever byte differs (hmac.Equal),
// and every secret is tried, so that timing tells nothing about the hash
// or which secret matched.
func VerifyUserHash(secrets [][]byte, user, hash string) bool {
	got, err := hex.DecodeString(hash)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := 0
	for _, s := range secrets {
		m := hmac.New(sha256.New, s)
		m.Write([]byte(user))
		if hmac.Equal(m.Sum(nil), got) {
			ok = 1
		}
	}
	return ok == 1
}

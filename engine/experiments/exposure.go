package experiments

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/internal/jsondef"
	"github.com/kairoshq/kairos/signals"
)

// Props of an exposure event (type impression).
const (
	PropExperiment = "experiment"
	PropVariant    = "variant"
	PropPropensity = "propensity"
	PropWeights    = "weights"
	PropSig        = "sig"
)

// exposureKeyLabel derives the exposure-signing key from the
// installation's secret (so that it differs from the offer-token key).
const exposureKeyLabel = "kairos experiments exposure v1"

// Signer signs and verifies exposure events with a key derived from the
// installation's secret: an exposure posted by anyone else (a
// publishable key can post impressions with any props) counts nothing.
type Signer struct{ key []byte }

// NewSigner derives the exposure key from secret (at least 16 bytes).
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < 16 {
		return nil, jsondef.Errorf("secret", "%d bytes, at least 16", len(secret))
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(exposureKeyLabel))
	return &Signer{key: m.Sum(nil)}, nil
}

func (s *Signer) sign(exp, variant, unit string, ms int64, weights, propensity string) string {
	m := hmac.New(sha256.New, s.key)
	for _, part := range []string{exp, variant, unit, strconv.FormatInt(ms, 10), weights, propensity} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// exposure is a first exposure to publish: what the exposure event
// carries.
type exposure struct {
	exp, variant string
	unit         string // subject key
	visitor      string
	user         string
	at           time.Time
	weights      []float64
	propensity   float64
}

// ExposureEventID is the id of the exposure event of a unit: deterministic,
// so that a repeated publish is de-duplicated by the engine.
func ExposureEventID(exp, unit string) string {
	h := sha256.Sum256([]byte(exp + "\x00" + unit))
	return "xp-" + exp + "-" + hex.EncodeToString(h[:12])
}

func formatWeights(w []float64) string {
	parts := make([]string, len(w))
	for i, v := range w {
		parts[i] = strconv.FormatFloat(v, 'f', 6, 64)
	}
	return strings.Join(parts, ",")
}

// event builds the signed exposure event. Its unit key is derived back
// from it by unitOfExposure: u:<User> when User is set, else a:<Visitor>.
func (s *Signer) event(x exposure) signals.Event {
	ms := x.at.UnixMilli()
	ws := formatWeights(x.weights)
	ps := strconv.FormatFloat(x.propensity, 'f', 6, 64)
	visitor := x.visitor
	if visitor == "" {
		// A user without a device (a promotion decided on the user's
		// state): the user id stands for the visitor, as in events
		// from the site's back end; a "user:" state key would be
		// refused as a reserved visitor id.
		visitor = x.user
	}
	return signals.Event{
		ID: ExposureEventID(x.exp, x.unit), Type: signals.TypeImpression, Visitor: visitor, User: x.user,
		Time: signals.Timestamp{Time: time.UnixMilli(ms).UTC()},
		Props: map[string]string{
			PropExperiment: x.exp, PropVariant: x.variant, PropPropensity: ps, PropWeights: ws,
			PropSig: s.sign(x.exp, x.variant, x.unit, ms, ws, ps),
		},
	}
}

// unitOfExposure returns the subject key an exposure event counts.
func unitOfExposure(ev *signals.Event) string {
	if ev.User != "" {
		return UserKey(ev.User)
	}
	return AnonKey(ev.Visitor)
}

// parsedExposure is a verified exposure event.
type parsedExposure struct {
	variant    string
	unit       string
	at         time.Time
	weights    []float64
	propensity float64
}

// parseExposure verifies an exposure event of experiment x: its
// signature, its variant and weights. ok is false for anything else.
func (s *Signer) parseExposure(x *Experiment, ev *signals.Event) (parsedExposure, bool) {
	p := ev.Props
	variant, ws, ps, sig := p[PropVariant], p[PropWeights], p[PropPropensity], p[PropSig]
	unit := unitOfExposure(ev)
	ms := ev.Time.UnixMilli()
	want := s.sign(x.ID, variant, unit, ms, ws, ps)
	if !hmac.Equal([]byte(sig), []byte(want)) || x.VariantIndex(variant) < 0 {
		return parsedExposure{}, false
	}
	parts := strings.Split(ws, ",")
	if len(parts) != len(x.Variants) {
		return parsedExposure{}, false
	}
	w := make([]float64, len(parts))
	for i, f := range parts {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v < 0 || v > 1 {
			return parsedExposure{}, false
		}
		w[i] = v
	}
	prop, err := strconv.ParseFloat(ps, 64)
	if err != nil || prop <= 0 || prop > 1 {
		return parsedExposure{}, false
	}
	return parsedExposure{variant: variant, unit: unit, at: time.UnixMilli(ms).UTC(), weights: w, propensity: prop}, true
}

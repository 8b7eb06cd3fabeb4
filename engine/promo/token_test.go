package promo_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/signals"
)

func mustSigner(tb testing.TB, secret string) *promo.Signer {
	tb.Helper()
	s, err := promo.NewSigner([]byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestTokenRoundTrip(t *testing.T) {
	s := mustSigner(t, "0123456789abcdef-secret")
	in := promo.Token{Offer: "o:1", Slot: "hero", Visitor: "v-17", Time: t0.Add(123 * time.Millisecond), Exposure: 0xdeadbeefcafe}
	tok := s.Sign(in)
	if len(tok) > 120 || strings.ContainsAny(tok, "+/=") {
		t.Errorf("token %q: want at most 120 URL-safe characters", tok)
	}
	got, err := s.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Offer != in.Offer || got.Slot != in.Slot || !got.Time.Equal(in.Time) || got.Exposure != in.Exposure {
		t.Errorf("Verify = %+v, want %+v", got, in)
	}
	if !got.Matches("v-17") || got.Matches("v-18") {
		t.Errorf("Matches: v-17 %v, v-18 %v", got.Matches("v-17"), got.Matches("v-18"))
	}
	if s.Sign(in) != tok {
		t.Errorf("signing is not deterministic")
	}
}

func TestTokenForgery(t *testing.T) {
	s := mustSigner(t, "0123456789abcdef-secret")
	tok := s.Sign(promo.Token{Offer: "o1", Slot: "hero", Visitor: "v", Time: t0, Exposure: 7})
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	// The same payload naming another offer, with the old MAC.
	other := bytes.Replace(bytes.Clone(raw), []byte("o1"), []byte("o2"), 1)
	tests := map[string]string{
		"empty":           "",
		"not base64":      "!!!!not-a-token!!!!",
		"truncated":       tok[:len(tok)-4],
		"flipped payload": flip(3),
		"flipped offer":   flip(len(raw) - 16 - 7),
		"flipped mac":     flip(len(raw) - 1),
		"other offer":     base64.RawURLEncoding.EncodeToString(other),
		"other secret":    mustSigner(t, "another-secret-0123456789").Sign(promo.Token{Offer: "o1", Slot: "hero", Visitor: "v", Time: t0}),
		"extra byte":      tok + "A",
		"too long":        strings.Repeat("A", 600),
		"padding":         tok + "==",
		"mac only":        base64.RawURLEncoding.EncodeToString(raw[len(raw)-16:]),
	}
	for name, tt := range tests {
		if _, err := s.Verify(tt); !errors.Is(err, promo.ErrForged) {
			t.Errorf("%s: Verify = %v, want ErrForged", name, err)
		}
	}
	if _, err := promo.NewSigner([]byte("short")); err == nil {
		t.Errorf("NewSigner accepted a 5-byte secret")
	}
}

// TestTokenAttribution: impressions and clicks with a valid token count
// for the token's offer; forged tokens, tokens of another visitor,
// expired tokens and tokens issued before the offer was created count
// nothing; an offer id without a token counts
// unless RequireToken.
func TestTokenAttribution(t *testing.T) {
	for _, require := range []bool{false, true} {
		v := newEnv(t, func(c *promo.Config) { c.RequireToken = require })
		v.put(t, promo.KindOffer, `{"id":"o1","slot":"s"}`)
		v.put(t, promo.KindOffer, `{"id":"o2","slot":"s"}`)
		sign := func(offer, visitor string, at time.Time) string {
			return v.e.Signer().Sign(promo.Token{Offer: offer, Slot: "s", Visitor: visitor, Time: at})
		}
		forged := mustSigner(t, "attacker-secret-0123456789").Sign(promo.Token{Offer: "o1", Slot: "s", Visitor: "a", Time: t0})
		v.react(t, "a",
			v.ev("a", signals.TypeImpression, 0, token(sign("o1", "a", t0))),
			v.ev("a", signals.TypeClick, 1, token(sign("o1", "a", t0)), offer("o2")), // the token wins over the offer field
			v.ev("a", signals.TypeConversion, 2, token(sign("o1", "a", t0))),
			v.ev("a", signals.TypeImpression, 3, token(forged)),
			v.ev("a", signals.TypeImpression, 4, token(sign("o1", "b", t0))),                       // another visitor's
			v.ev("a", signals.TypeImpression, 5, token(sign("o1", "a", t0.Add(-31*24*time.Hour)))), // expired
			v.ev("a", signals.TypeImpression, 6, offer("o2")),                                      // no token
			v.ev("a", signals.TypeView, 7, token(sign("o1", "a", t0))),                             // not an exposure event
			v.ev("a", signals.TypeImpression, 8, token(sign("gone", "a", t0))),                     // unknown offer
			v.ev("a", signals.TypeImpression, 9, token(sign("o1", "a", t0.Add(-time.Hour)))),       // issued before o1 was created (a deleted o1's)
		)
		want1 := promo.OfferStats{Impressions: 1, Clicks: 1, Conversions: 1}
		if got := v.e.Stats("o1"); got != want1 {
			t.Errorf("require=%v: o1 %+v, want %+v", require, got, want1)
		}
		want2 := promo.OfferStats{Impressions: 1}
		if require {
			want2 = promo.OfferStats{}
		}
		if got := v.e.Stats("o2"); got != want2 {
			t.Errorf("require=%v: o2 %+v, want %+v", require, got, want2)
		}
	}
}

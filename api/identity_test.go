package api

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/signals"
)

const (
	testIdentitySecret = "test-identity-secret-0123456789"
	testOldSecret      = "the-old-identity-secret-abcdef"
)

// userHash is the user_hash the site's back end computes for user.
func userHash(user string) string { return signals.UserHash([]byte(testIdentitySecret), user) }

// TestReservedVisitorPrefix: no client may name a user's state ("user:<id>")
// as its visitor, on any route that takes a visitor id.
func TestReservedVisitorPrefix(t *testing.T) {
	h := newPromoHarness(t, false, 0)
	const want = `visitor: the prefix "user:" is reserved`
	pk := []string{"Authorization", "Bearer " + testPK, "Origin", allowed}

	// POST /v1/events: per event, the others are accepted.
	body := `[{"id":"r1","type":"like","visitor":"user:alice","item":"sku-1"},` + evJSON("ok") + `]`
	w := h.do("POST", "/v1/events", body, pk...)
	res := decode[EventsResponse](t, w)
	if w.Code != 200 || res.Accepted != 1 || len(res.Rejected) != 1 || res.Rejected[0].Field != "visitor" ||
		!strings.Contains(res.Rejected[0].Reason, `the prefix "user:" is reserved`) {
		t.Fatalf("events: %d %s", w.Code, w.Body)
	}
	// A batch of such events only: 400.
	w = h.do("POST", "/v1/events", `[{"id":"r2","type":"like","visitor":"user:alice","item":"sku-1"}]`, pk...)
	if w.Code != 400 || !strings.Contains(w.Body.String(), `\"user:\" is reserved`) {
		t.Fatalf("events, all reserved: %d %s", w.Code, w.Body)
	}
	// The pixel.
	w = h.do("GET", "/v1/pixel.gif?key="+testPK+"&visitor=user%3Aalice&item=sku-1", "")
	if x := w.Header().Get("X-Kairos-Error"); w.Code != 400 || !strings.Contains(x, "visitor: the prefix") || !strings.Contains(x, "is reserved") || !bytes.Equal(w.Body.Bytes(), transparentGIF) {
		t.Fatalf("pixel: %d %q", w.Code, w.Header().Get("X-Kairos-Error"))
	}
	// POST /v1/identify (secret key): the anonymous id.
	wantError(t, h.secret("POST", "/v1/identify", `{"anonymous_id":"user:alice","user_id":"mallory"}`), 400, CodeInvalid,
		`anonymous_id: the prefix "user:" is reserved`)
	// Query parameters of the recommendation, offer and promotion routes.
	wantError(t, h.secret("GET", "/v1/recommendations?visitor=user:alice", ""), 400, CodeInvalid, want)
	wantError(t, h.do("GET", "/v1/offers?visitor=user%3Aalice&slot=hero", "", pk...), 400, CodeInvalid, want)
	wantError(t, h.do("GET", "/v1/promotions/stream?key="+testPK+"&visitor=user:alice", "", "Origin", allowed), 400, CodeInvalid, want)
	// Nothing of it reached the stream.
	for _, e := range h.pub.events() {
		if strings.HasPrefix(e.Visitor, "user:") {
			t.Errorf("published %+v", e)
		}
	}
	// A user id may look like that: its state key cannot collide.
	w = h.do("POST", "/v1/events", `[{"id":"u1","type":"identify","visitor":"v9","user":"user:7"}]`, pk...)
	if w.Code != 200 {
		t.Errorf("user id with a colon: %d %s", w.Code, w.Body)
	}
}

// TestIdentityVerificationModes runs the same events through the three
// modes, with the publishable and the secret key.
func TestIdentityVerificationModes(t *testing.T) {
	good := userHash("u-42")
	events := []struct {
		name string
		json string
	}{
		{"anonymous", `{"id":"anon","type":"like","visitor":"v1","item":"sku-1"}`},
		{"no hash", `{"id":"nohash","type":"identify","visitor":"v1","user":"u-42"}`},
		{"valid hash", `{"id":"valid","type":"identify","visitor":"v1","user":"u-42","user_hash":"` + good + `"}`},
		{"upper-case hash", `{"id":"upper","type":"like","visitor":"v1","item":"sku-1","user":"u-42","user_hash":"` + strings.ToUpper(good) + `"}`},
		{"hash of another user", `{"id":"other","type":"identify","visitor":"v1","user":"alice","user_hash":"` + good + `"}`},
		{"garbage hash", `{"id":"garbage","type":"like","visitor":"v1","item":"sku-1","user":"u-42","user_hash":"nope"}`},
		{"old secret (rotation)", `{"id":"rotated","type":"identify","visitor":"v1","user":"u-42","user_hash":"` +
			signals.UserHash([]byte(testOldSecret), "u-42") + `"}`},
	}
	var batch []string
	for _, e := range events {
		batch = append(batch, e.json)
	}
	body := "[" + strings.Join(batch, ",") + "]"
	tests := []struct {
		mode     IdentityVerification
		secrets  []string
		key      string
		accepted string // ids, in body order
		rejected string // ids rejected for user_hash
	}{
		{IdentityOff, nil, testPK, "anon,nohash,valid,upper,other,garbage,rotated", ""},
		{IdentityOptional, []string{testIdentitySecret, testOldSecret}, testPK, "anon,nohash,valid,upper,rotated", "other,garbage"},
		{IdentityRequired, []string{testIdentitySecret, testOldSecret}, testPK, "anon,valid,upper,rotated", "nohash,other,garbage"},
		{IdentityRequired, []string{testIdentitySecret}, testPK, "anon,valid,upper", "nohash,other,garbage,rotated"},
		{"", []string{testIdentitySecret}, testPK, "anon,valid,upper", "nohash,other,garbage,rotated"}, // the default with a secret
		{IdentityRequired, []string{testIdentitySecret}, testSK, "anon,nohash,valid,upper,other,garbage,rotated", ""},
	}
	for _, tt := range tests {
		name := string(tt.mode) + "/" + strings.Join(tt.secrets, "+") + "/" + tt.key[:2]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.IdentityVerification, c.IdentitySecrets = tt.mode, tt.secrets
			})
			w := h.do("POST", "/v1/events", body, "Authorization", "Bearer "+tt.key, "Origin", allowed)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			res := decode[EventsResponse](t, w)
			var rejected []string
			for _, r := range res.Rejected {
				if r.Field != "user_hash" {
					t.Errorf("rejection %+v, want field user_hash", r)
				}
				if r.ID == "nohash" && !strings.Contains(r.Reason, "missing") || r.ID != "nohash" && !strings.Contains(r.Reason, "does not match user") {
					t.Errorf("rejection %+v", r)
				}
				rejected = append(rejected, r.ID)
			}
			if got := strings.Join(res.IDs, ","); got != tt.accepted {
				t.Errorf("accepted %s, want %s", got, tt.accepted)
			}
			if got := strings.Join(rejected, ","); got != tt.rejected {
				t.Errorf("rejected %s, want %s", got, tt.rejected)
			}
			// user_hash is a credential: never published.
			pub := h.pub.events()
			if len(pub) != len(res.IDs) {
				t.Fatalf("published %d events, accepted %d", len(pub), len(res.IDs))
			}
			for _, e := range pub {
				if e.UserHash != "" {
					t.Errorf("published %s with user_hash", e.ID)
				}
			}
			if got, want := metricValue(t, h.s.metrics.rejected.WithLabelValues("user_hash")), float64(len(res.Rejected)); got != want {
				t.Errorf("kairos_events_rejected{reason=user_hash} = %v, want %v", got, want)
			}
		})
	}
}

// TestIdentityVerificationPixel: the pixel takes user_hash as a query
// parameter, with the same rules.
func TestIdentityVerificationPixel(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IdentitySecrets = []string{testIdentitySecret} })
	pixel := func(q string) (int, string) {
		w := h.do("GET", "/v1/pixel.gif?key="+testPK+"&visitor=v1&item=sku-1"+q, "")
		return w.Code, w.Header().Get("X-Kairos-Error")
	}
	if code, msg := pixel("&user=u-42"); code != 400 || !strings.Contains(msg, "user_hash: missing") {
		t.Errorf("no hash: %d %q", code, msg)
	}
	if code, msg := pixel("&user=u-42&user_hash=" + userHash("alice")); code != 400 || !strings.Contains(msg, "user_hash: does not match user") {
		t.Errorf("wrong hash: %d %q", code, msg)
	}
	if code, msg := pixel("&user=u-42&user_hash=" + userHash("u-42")); code != 200 {
		t.Errorf("valid hash: %d %q", code, msg)
	}
	if code, msg := pixel("&user_hash=" + userHash("u-42")); code != 400 || !strings.Contains(msg, "user_hash: given without user") {
		t.Errorf("hash without user: %d %q", code, msg)
	}
	evs := h.pub.events()
	if len(evs) != 1 || evs[0].User != "u-42" || evs[0].UserHash != "" {
		t.Errorf("published %+v", evs)
	}
}

// TestIdentifyNeedsNoHash: POST /v1/identify with the secret key is the
// trusted server path.
func TestIdentifyNeedsNoHash(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IdentitySecrets = []string{testIdentitySecret} })
	if w := h.secret("POST", "/v1/identify", `{"anonymous_id":"v-17","user_id":"u-42"}`); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if evs := h.pub.events(); len(evs) != 1 || evs[0].User != "u-42" {
		t.Fatalf("published %+v", evs)
	}
}

func TestIdentityConfig(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		want string // substring of the error, "" = valid
	}{
		{"off without secrets", func(c *Config) { c.IdentityVerification = IdentityOff }, ""},
		{"off with a secret", func(c *Config) { c.IdentityVerification, c.IdentitySecrets = IdentityOff, []string{testIdentitySecret} }, ""},
		{"optional without secrets", func(c *Config) { c.IdentityVerification = IdentityOptional }, "IdentityVerification optional needs IdentitySecrets"},
		{"required without secrets", func(c *Config) { c.IdentityVerification = IdentityRequired }, "IdentityVerification required needs IdentitySecrets"},
		{"unknown mode", func(c *Config) { c.IdentityVerification = "strict" }, `identity verification "strict": want off, optional or required`},
		{"short secret", func(c *Config) { c.IdentitySecrets = []string{"short"} }, "IdentitySecrets[0]: 5 bytes long, shorter than the minimum 16"},
		{"secret with a comma", func(c *Config) { c.IdentitySecrets = []string{"abcdefghijklmnop,q"} }, "IdentitySecrets[0]: only printable ASCII"},
		{"secret equal to an API key", func(c *Config) { c.IdentitySecrets = []string{testSK} }, "IdentitySecrets[0]: the same value is already in SecretKeys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.mod(&c)
			err := c.Defaults().Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	if m := (Config{IdentitySecrets: []string{testIdentitySecret}}).Defaults().IdentityVerification; m != IdentityRequired {
		t.Errorf("default with a secret: %q, want required", m)
	}
	if m := (Config{}).Defaults().IdentityVerification; m != IdentityOff {
		t.Errorf("default without a secret: %q, want off", m)
	}
	for _, s := range []string{"", "off", "optional", "required"} {
		if m, err := ParseIdentityVerification(s); err != nil || string(m) != s {
			t.Errorf("ParseIdentityVerification(%q) = %q, %v", s, m, err)
		}
	}
}

// TestReplacedTextRejected: JSON text that encoding/json would replace
// with U+FFFD, and ids with control or bidi characters, are refused on
// every JSON body, naming the field.
func TestReplacedTextRejected(t *testing.T) {
	h := newHarness(t, nil)
	pk := []string{"Authorization", "Bearer " + testPK, "Origin", allowed}
	// Two visitors that would both decode to "v\uFFFD": both rejected.
	body := "[" + `{"id":"a","type":"like","visitor":"v` + "\xff" + `","item":"sku-1"},` +
		`{"id":"b","type":"like","visitor":"v` + "\xfe" + `","item":"sku-1"},` +
		`{"id":"c","type":"like","visitor":"v\ud800","item":"sku-1"},` +
		`{"id":"d","type":"like","visitor":"v","item":"sku\u202e1"},` + evJSON("ok") + "]"
	res := decode[EventsResponse](t, h.do("POST", "/v1/events", body, pk...))
	if res.Accepted != 1 || len(res.Rejected) != 4 {
		t.Fatalf("accepted %d, rejected %+v", res.Accepted, res.Rejected)
	}
	for i, want := range []struct{ field, reason string }{
		{"visitor", "not valid UTF-8 (byte 0xff"}, {"visitor", "not valid UTF-8 (byte 0xfe"},
		{"visitor", `unpaired UTF-16 surrogate \ud800`}, {"item", "bidirectional control character U+202E"},
	} {
		if r := res.Rejected[i]; r.Field != want.field || !strings.Contains(r.Reason, want.reason) {
			t.Errorf("rejected[%d] = %+v, want %s: %s", i, r, want.field, want.reason)
		}
	}
	// Catalog items: the one id rule, and the body's text.
	wantError(t, h.secret("POST", "/v1/items", `{"id":"sku-`+"\xff"+`","title":"t"}`), 400, CodeInvalid, "id: not valid UTF-8 (byte 0xff, at byte 11 of the body)")
	wantError(t, h.secret("POST", "/v1/items", `{"id":"sku-1","title":"a\udc00"}`), 400, CodeInvalid, `title: unpaired UTF-16 surrogate \udc00`)
	// POST /v1/identify.
	wantError(t, h.secret("POST", "/v1/identify", `{"anonymous_id":"v-`+"\xc3"+`","user_id":"u"}`), 400, CodeInvalid, "anonymous_id: not valid UTF-8")
	wantError(t, h.secret("POST", "/v1/identify", `{"anonymous_id":"v","user_id":"u\u2066"}`), 400, CodeInvalid, "user_id: contains bidirectional control character U+2066")
	// Query parameters.
	for _, q := range []string{"visitor=v%E2%80%AE", "visitor=v&user=%C2%85", "visitor=v&item=%E2%81%A9"} {
		w := h.secret("GET", "/v1/recommendations?"+q, "")
		if w.Code != 400 || !strings.Contains(w.Body.String(), "control character U+") {
			t.Errorf("%s: %d %s", q, w.Code, w.Body)
		}
	}
	if evs := h.pub.events(); len(evs) != 1 || evs[0].ID != "ok" {
		t.Errorf("published %+v", evs)
	}
}

// TestOffersUserNeedsItsHash: a browser asking for a user's offers with
// the publishable key proves the user like its events do; the secret key
// (the site's back end) is trusted.
func TestOffersUserNeedsItsHash(t *testing.T) {
	h := newPromoHarnessWith(t, false, 0, func(c *Config) {
		c.IdentitySecrets = []string{testIdentitySecret}
		c.IdentityVerification = IdentityRequired
	})
	pk := []string{"Authorization", "Bearer " + testPK, "Origin", allowed}
	wantError(t, h.do("GET", "/v1/offers?visitor=v1&user=u-42&slot=hero", "", pk...), 400, CodeInvalid, "user_hash: missing")
	wantError(t, h.do("GET", "/v1/offers?visitor=v1&user=u-42&slot=hero&user_hash="+userHash("alice"), "", pk...), 400, CodeInvalid, "user_hash: does not match user")
	if w := h.do("GET", "/v1/offers?visitor=v1&user=u-42&slot=hero&user_hash="+userHash("u-42"), "", pk...); w.Code != 200 {
		t.Fatalf("with the right hash: %d %s", w.Code, w.Body)
	}
	if w := h.do("GET", "/v1/offers?visitor=v1&slot=hero", "", pk...); w.Code != 200 {
		t.Fatalf("without a user: %d %s", w.Code, w.Body)
	}
	if w := h.secret("GET", "/v1/offers?visitor=v1&user=u-42&slot=hero", ""); w.Code != 200 {
		t.Fatalf("secret key, no hash: %d %s", w.Code, w.Body)
	}
}

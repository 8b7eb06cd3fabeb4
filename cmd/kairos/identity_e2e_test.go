package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/tracker/browsertest"
)

const (
	e2eSecretKey      = "sk_test_0123456789abcdef"
	e2ePublishableKey = "pk_test_0123456789abcdef"
	e2eIdentitySecret = "e2e-identity-secret-0123456789abcdef"
)

// TestIdentitySpoofingEmbedded runs the spoofing scenario (spoofScenario)
// through kairos serve on the embedded store for every identity
// verification mode: with verification, no spoof reaches the user's
// history or recommendations while a signed identify links; without it,
// the same spoofs do poison the profile (which shows the scenario can
// tell).
func TestIdentitySpoofingEmbedded(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "identity-secret")
	if err := os.WriteFile(secretFile, []byte(e2eIdentitySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags []string
		mode  string // the effective mode
	}{
		{"default with a secret is required", []string{"--identity-secret", e2eIdentitySecret}, "required"},
		{"required, secret from a file", []string{"--identity-secret-file", secretFile, "--identity-verification", "required"}, "required"},
		{"optional", []string{"--identity-secret", e2eIdentitySecret, "--identity-verification", "optional"}, "optional"},
		{"off", []string{"--identity-verification", "off"}, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, tt.flags...)
			spoofScenario(t, srv, tt.mode)
		})
	}
}

// TestIdentitySpoofingRabbitRedis runs the scenario on RabbitMQ and Redis
// with the default (required) verification.
func TestIdentitySpoofingRabbitRedis(t *testing.T) {
	srv := startServices(t, "--identity-secret", e2eIdentitySecret)
	spoofScenario(t, srv, "required")
}

// spoofScenario: alice is a known user (linked from her phone through
// the trusted POST /v1/identify), mallory browses other items
// anonymously and then tries, with the publishable key, to link his
// device to alice (no hash, a hash of his own id), to write into her
// state as visitor "user:alice", to send events as alice with a garbage
// hash and through the pixel. mode is the server's verification mode.
// Finally alice's laptop links with a correctly signed identify.
func spoofScenario(t *testing.T, srv *testServer, mode string) {
	ctx := context.Background()
	accepted := srv.postEvents(t, clusterBatch("m", 2, 20, 8, 10, 5))["accepted"].(float64)
	// Alice: four clicks on cluster 0 from her phone, then the trusted link.
	var phone []map[string]any
	for i := range 4 {
		phone = append(phone, click(fmt.Sprintf("alice-phone-%d", i), "alice-phone", fmt.Sprintf("c0-item%d", i)))
	}
	accepted += srv.postEvents(t, phone)["accepted"].(float64)
	identifyTrusted(t, srv, "alice-phone", "alice")
	accepted++ // the identify event
	// Mallory: six clicks on cluster 1, anonymously.
	var mal []map[string]any
	for i := range 6 {
		mal = append(mal, click(fmt.Sprintf("mallory-%d", i), "mallory-dev", fmt.Sprintf("c1-item%d", i)))
	}
	accepted += srv.postEvents(t, mal)["accepted"].(float64)
	// Every event so far applied (on RabbitMQ they arrive asynchronously,
	// and any of them moves the item factors): the cluster visitors' 10
	// each, alice's 4 and the identify, mallory's 6.
	want := map[string]int{engine.UserKey("alice"): 5, "mallory-dev": 6}
	for c := range 2 {
		for v := range 20 {
			want[fmt.Sprintf("m-c%d-%d", c, v)] = 10
		}
	}
	waitFor(t, 15*time.Second, "every event applied", func() bool { return historyLens(t, srv, want) })
	// The histories are committed before the batch's item updates are
	// applied: wait for the counter, which follows them, too.
	waitFor(t, 15*time.Second, "every event counted applied", func() bool { return appliedEvents(t, srv) >= accepted })
	before := historyIDs(t, srv, engine.UserKey("alice"))
	strategy, recsBefore := srv.recommendUser(t, "probe", "alice", 8)
	if strategy != "als" || len(recsBefore) == 0 {
		t.Fatalf("alice's recommendations: %s %v, want her own (als)", strategy, recsBefore)
	}

	// The spoofs.
	wrongHash := signals.UserHash([]byte(e2eIdentitySecret), "mallory")
	spoofs := []struct {
		name   string
		event  map[string]any
		refuse map[string]string // mode → field of the rejection ("" = accepted)
	}{
		{"identify without hash", map[string]any{"id": "spoof-1", "type": "identify", "visitor": "mallory-dev", "user": "alice"},
			map[string]string{"required": "user_hash", "optional": "", "off": ""}},
		{"identify with the hash of another user", map[string]any{"id": "spoof-2", "type": "identify", "visitor": "mallory-dev", "user": "alice", "user_hash": wrongHash},
			map[string]string{"required": "user_hash", "optional": "user_hash", "off": ""}},
		{"visitor naming alice's state", map[string]any{"id": "spoof-3", "type": "click", "visitor": "user:alice", "item": "c1-item1"},
			map[string]string{"required": "visitor", "optional": "visitor", "off": "visitor"}},
		{"click as alice with a garbage hash", map[string]any{"id": "spoof-4", "type": "click", "visitor": "mallory-dev2", "user": "alice", "item": "c1-item2", "user_hash": strings.Repeat("0", 64)},
			map[string]string{"required": "user_hash", "optional": "user_hash", "off": ""}},
	}
	for _, s := range spoofs {
		want := s.refuse[mode]
		out, status := postEventsAs(t, srv, e2ePublishableKey, []map[string]any{s.event})
		rej, _ := out["rejected"].([]any)
		switch {
		case want == "" && (status != 200 || len(rej) != 0):
			t.Errorf("%s (%s): %d %v, want accepted", s.name, mode, status, out)
		case want != "" && (status != 400 || len(rej) != 1 || rej[0].(map[string]any)["field"] != want):
			t.Errorf("%s (%s): %d %v, want rejected naming %s", s.name, mode, status, out, want)
		}
	}
	pixelStatus, pixelErr := pixel(t, srv, "visitor=mallory-dev&type=click&item=c1-item3&user=alice")
	if wantPixel := map[string]int{"required": 400, "optional": 200, "off": 200}[mode]; pixelStatus != wantPixel {
		t.Errorf("pixel as alice without hash (%s): %d %q, want %d", mode, pixelStatus, pixelErr, wantPixel)
	}

	users, err := srv.app.store.(engine.LinkStore).Resolve(ctx, []string{"mallory-dev"})
	if err != nil {
		t.Fatal(err)
	}
	if mode == "required" {
		// Nothing of the spoofs reached alice: history, recommendations
		// and links are as before.
		if got := historyIDs(t, srv, engine.UserKey("alice")); !slices.Equal(got, before) {
			t.Errorf("alice's history changed: %v, was %v", got, before)
		}
		if _, recs := srv.recommendUser(t, "probe", "alice", 8); !slices.Equal(recs, recsBefore) {
			t.Errorf("alice's recommendations changed: %v, were %v", recs, recsBefore)
		}
		if users[0] != "" {
			t.Errorf("mallory-dev is linked to %q", users[0])
		}
	} else {
		// Without verification (or a hash) the browser is trusted: the
		// spoof links mallory's device and his history lands on alice.
		waitFor(t, 15*time.Second, "the unverified spoof to reach alice", func() bool {
			return slices.Contains(historyIDs(t, srv, engine.UserKey("alice")), "mallory-0")
		})
		if users[0] != "alice" {
			t.Errorf("%s: mallory-dev linked to %q, want alice (the spoof works without verification)", mode, users[0])
		}
	}

	// A correctly signed identify from alice's laptop links it, in every
	// mode.
	srv.postEvents(t, []map[string]any{click("alice-laptop-0", "alice-laptop", "c0-item5"), click("alice-laptop-1", "alice-laptop", "c0-item6")})
	signed := map[string]any{"id": "signed-1", "type": "identify", "visitor": "alice-laptop", "user": "alice",
		"user_hash": signals.UserHash([]byte(e2eIdentitySecret), "alice")}
	if out, status := postEventsAs(t, srv, e2ePublishableKey, []map[string]any{signed}); status != 200 || out["accepted"].(float64) != 1 {
		t.Fatalf("signed identify: %d %v", status, out)
	}
	waitFor(t, 15*time.Second, "the signed link", func() bool {
		h := historyIDs(t, srv, engine.UserKey("alice"))
		return slices.Contains(h, "alice-laptop-0") && slices.Contains(h, "alice-laptop-1") && slices.Contains(h, "signed-1")
	})
	if users, err := srv.app.store.(engine.LinkStore).Resolve(ctx, []string{"alice-laptop"}); err != nil || users[0] != "alice" {
		t.Errorf("alice-laptop resolves to %v (%v), want alice", users, err)
	}
	if mode == "required" {
		for _, id := range historyIDs(t, srv, engine.UserKey("alice")) {
			if strings.HasPrefix(id, "mallory") || strings.HasPrefix(id, "spoof") || strings.HasPrefix(id, "px-") {
				t.Errorf("alice's history holds %s", id)
			}
		}
	}
}

// click is a click event of a minute ago.
func click(id, visitor, item string) map[string]any {
	return clickAt(id, visitor, item, time.Now().Add(-time.Minute))
}

// clickAt is a click event at the given time.
func clickAt(id, visitor, item string, at time.Time) map[string]any {
	return map[string]any{"id": id, "type": "click", "visitor": visitor, "item": item, "ts": at.UTC().Format(time.RFC3339Nano)}
}

// identifyTrusted links anon to user through POST /v1/identify with the
// secret key.
func identifyTrusted(t *testing.T, srv *testServer, anon, user string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.base+"/v1/identify", strings.NewReader(fmt.Sprintf(`{"anonymous_id":%q,"user_id":%q}`, anon, user)))
	req.Header.Set("Authorization", "Bearer "+e2eSecretKey)
	doJSON(t, req, http.StatusOK)
}

// postEventsAs posts events with key and returns the decoded answer and
// its status.
func postEventsAs(t *testing.T, srv *testServer, key string, events []map[string]any) (map[string]any, int) {
	t.Helper()
	b, _ := json.Marshal(events)
	req, _ := http.NewRequest(http.MethodPost, srv.base+"/v1/events", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, body)
	}
	return out, resp.StatusCode
}

// pixel requests the pixel with the publishable key and query q.
func pixel(t *testing.T, srv *testServer, q string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(srv.base + "/v1/pixel.gif?key=" + e2ePublishableKey + "&" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Kairos-Error")
}

// historyIDs returns the event ids of the stored history of state key.
func historyIDs(t *testing.T, srv *testServer, key string) []string {
	t.Helper()
	vs, err := srv.app.store.Visitors(context.Background(), []string{key})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range vs[0].History {
		ids = append(ids, h.ID)
	}
	return ids
}

// historyLens reports whether every state key of want holds want[key]
// history events.
func historyLens(t *testing.T, srv *testServer, want map[string]int) bool {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	vs, err := srv.app.store.Visitors(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if len(v.History) != want[keys[i]] {
			return false
		}
	}
	return true
}

// TestIdentityFlags checks the identity verification settings of kairos
// serve.
func TestIdentityFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	loose := filepath.Join(dir, "loose")
	empty := filepath.Join(dir, "empty")
	for _, f := range []struct {
		path, body string
		mode       os.FileMode
	}{{good, "secret-one-0123456789\r\nsecret-two-0123456789\n", 0o600}, {loose, e2eIdentitySecret, 0o644}, {empty, "\n\n", 0o600}} {
		if err := os.WriteFile(f.path, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.path, f.mode); err != nil { // despite the umask
			t.Fatal(err)
		}
	}
	tests := []struct {
		args    []string
		secrets []string
		mode    string
		err     string
	}{
		{nil, nil, "", ""},
		{[]string{"--identity-secret", "a-secret-0123456789,b-secret-0123456789"}, []string{"a-secret-0123456789", "b-secret-0123456789"}, "", ""},
		{[]string{"--identity-secret-file", good, "--identity-verification", "optional"}, []string{"secret-one-0123456789", "secret-two-0123456789"}, "optional", ""},
		{[]string{"--identity-secret-file", loose}, nil, "", "has mode -rw-r--r--: others may read the identity secret; run chmod 600"},
		{[]string{"--identity-secret-file", empty}, nil, "", "holds no secret"},
		{[]string{"--identity-secret-file", filepath.Join(dir, "missing")}, nil, "", "no such file"},
		{[]string{"--identity-secret", "x-secret-0123456789", "--identity-secret-file", good}, nil, "", "not both"},
		{[]string{"--identity-verification", "required"}, nil, "", "--identity-verification required needs --identity-secret"},
		{[]string{"--identity-verification", "strict"}, nil, "", `want off, optional or required`},
	}
	for _, tt := range tests {
		c, err := parseServeConfig(append([]string{"--data-dir", dir}, tt.args...), io.Discard)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: err %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(c.IdentitySecrets, tt.secrets) || string(c.IdentityVerification) != tt.mode {
			t.Errorf("%v: %v %q, %v", tt.args, c.IdentitySecrets, c.IdentityVerification, err)
		}
	}
	t.Setenv("KAIROS_IDENTITY_SECRET", "env-secret-0123456789")
	t.Setenv("KAIROS_IDENTITY_VERIFICATION", "optional")
	c, err := parseServeConfig([]string{"--data-dir", dir}, io.Discard)
	if err != nil || !slices.Equal(c.IdentitySecrets, []string{"env-secret-0123456789"}) || c.IdentityVerification != "optional" {
		t.Errorf("from the environment: %v %q, %v", c.IdentitySecrets, c.IdentityVerification, err)
	}
	// A secret too short for the API is refused at start.
	c, err = parseServeConfig([]string{"--data-dir", dir, "--amqp-url", "", "--redis-url", "", "--identity-secret", "short",
		"--secret-key", e2eSecretKey, "--publishable-key", e2ePublishableKey}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newApp(context.Background(), c, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "IdentitySecrets[0]: 5 bytes long") {
		t.Errorf("short secret: %v", err)
	}
}

// TestIdentifyFromBrowser closes the loop in a real headless Chromium: a
// site page loads the tracker from kairos serve (required verification)
// and calls kairos.identify(userId, userHash). A hash the back end did not
// sign is rejected (naming user_hash) and links nothing; the signed one
// links the browser's visitor id to the user.
func TestIdentifyFromBrowser(t *testing.T) {
	var kairosBase string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>site</title></head><body>
<p>account page</p><script src="%s/tracker.js" data-key="%s" data-promotions="off" async></script></body></html>`, kairosBase, e2ePublishableKey)
	}))
	defer site.Close()
	b := browsertest.Start(t, browsertest.Options{})
	srv := startServer(t, "--identity-secret", e2eIdentitySecret, "--allowed-origins", site.URL)
	kairosBase = srv.base
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Navigate(ctx, site.URL+"/account"); err != nil {
		t.Fatal(err)
	}
	raw, err := b.WaitFor(ctx, `return window.kairos && window.kairos.version && kairos.visitor()`)
	if err != nil {
		t.Fatal(err)
	}
	var visitor string
	if err := json.Unmarshal(raw, &visitor); err != nil || visitor == "" {
		t.Fatalf("visitor id %s: %v", raw, err)
	}
	links := srv.app.store.(engine.LinkStore)
	linked := func() string {
		users, err := links.Resolve(ctx, []string{visitor})
		if err != nil {
			t.Fatal(err)
		}
		return users[0]
	}
	// A hash signed for another user.
	forged := signals.UserHash([]byte(e2eIdentitySecret), "mallory")
	if _, err := b.Execute(ctx, `kairos.identify('alice', arguments[0]); kairos.flush()`, forged); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the forged identify to be rejected", func() bool { return metric(t, srv, `kairos_events_rejected_total{reason="user_hash"}`) == 1 })
	if u := linked(); u != "" {
		t.Fatalf("a forged hash linked %s to %q", visitor, u)
	}
	// The hash the site's back end signed.
	signed := signals.UserHash([]byte(e2eIdentitySecret), "alice")
	if _, err := b.Execute(ctx, `kairos.identify('alice', arguments[0]); kairos.flush()`, signed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the signed identify to link the browser's visitor", func() bool { return linked() == "alice" })
	if n := metric(t, srv, `kairos_events_rejected_total{reason="user_hash"}`); n != 1 {
		t.Errorf("%v user_hash rejections, want 1", n)
	}
}

// metric returns the value of the series named exactly name (with its
// labels) on /metrics, 0 when absent.
func metric(t *testing.T, srv *testServer, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrapeMetricsAs(t, srv.base, e2eSecretKey), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// TestUpgradeVisitor: replay turns an archived visitor naming a user's
// state into the user (the broker refuses the reserved prefix) and leaves
// everything else alone.
func TestUpgradeVisitor(t *testing.T) {
	for _, tt := range []struct{ visitor, user, want string }{
		{"user:alice", "alice", "alice"},
		{"user:alice", "", "user:alice"}, // not an exposure: left for the broker to refuse, loudly
		{"user:alice", "bob", "user:alice"},
		{"v-17", "alice", "v-17"},
	} {
		ev := upgradeVisitor(signals.Event{ID: "x", Visitor: tt.visitor, User: tt.user})
		if ev.Visitor != tt.want || ev.User != tt.user {
			t.Errorf("upgradeVisitor(%q, %q) = %q, %q", tt.visitor, tt.user, ev.Visitor, ev.User)
		}
	}
}

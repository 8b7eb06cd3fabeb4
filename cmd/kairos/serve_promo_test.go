package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPromotionsEmbedded runs kairos serve (embedded): rules and offers
// written through the API fire a promotion on the visitor's stream; after
// a restart on the same data dir the definitions, the promotion log and
// the rule's cooldown are still there.
func TestPromotionsEmbedded(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--data-dir", dir)
	secret := func(method, path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer sk_test_0123456789abcdef")
		doJSON(t, req, want)
	}
	secret("POST", "/v1/offers", `{"id":"o1","title":"Stay!","slot":"exit"}`, http.StatusCreated)
	secret("POST", "/v1/rules", `{"id":"r1","cooldown":"1h","when":{"exit":{}},"then":{"offer":"o1"}}`, http.StatusCreated)

	open := func(srv *testServer, lastID string) (<-chan map[string]any, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.base+"/v1/promotions/stream?visitor=v1&key=pk_test_0123456789abcdef", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			cancel()
			t.Fatalf("stream: %v %v", resp, err)
		}
		ch := make(chan map[string]any, 10)
		go func() {
			defer resp.Body.Close()
			defer close(ch)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					var m map[string]any
					json.Unmarshal([]byte(d), &m)
					ch <- m
				}
			}
		}()
		return ch, cancel
	}
	next := func(ch <-chan map[string]any) map[string]any {
		t.Helper()
		select {
		case m := <-ch:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no promotion")
		}
		return nil
	}
	events, stop := open(srv, "")
	srv.postEvents(t, []map[string]any{{"id": "x1", "type": "exit", "visitor": "v1"}})
	p := next(events)
	if p["rule"] != "r1" || p["offer"].(map[string]any)["title"] != "Stay!" || p["token"] == "" {
		t.Fatalf("promotion %v", p)
	}
	stop()
	srv.stop(t)

	srv2 := startServer(t, "--data-dir", dir)
	events, stop = open(srv2, "")
	defer stop()
	if again := next(events); again["id"] != p["id"] {
		t.Fatalf("replayed %v, want %v", again["id"], p["id"])
	}
	srv2.postEvents(t, []map[string]any{{"id": "x2", "type": "exit", "visitor": "v1"}})
	select {
	case m := <-events:
		t.Fatalf("fired during the cooldown after a restart: %v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

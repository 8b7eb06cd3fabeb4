package promo_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/internal/testutil/backends"
	"github.com/kairoshq/kairos/signals"
)

const (
	itSK     = "sk_integration_secret_0001"
	itPK     = "pk_integration_public_0001"
	itOrigin = "https://shop.example"
)

// TestIntegration runs events through the HTTP API, the in-process bus
// and a running engine with the promo engine as a Reactor: a rule fires,
// its promotion arrives on the visitor's server-sent event stream and on
// signals.TopicPromotions, the impression carrying its token counts for
// the offer, and re-sent events fire nothing. With the embedded store and
// with Redis.
func TestIntegration(t *testing.T) {
	backends.Each(t, testIntegration)
}

func testIntegration(t *testing.T, store engine.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	eng, bus := backends.NewEngine(ctx, t, store)
	p, err := promo.New(ctx, promo.Config{Factors: 8}, promo.Deps{Store: promo.NewStore(store), Profiles: eng, Model: eng, Broadcaster: bus})
	if err != nil {
		t.Fatal(err)
	}
	eng.AddReactor(p)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := eng.Run(ctx); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	wg.Go(func() { p.Run(ctx) })
	srv, err := api.New(api.Config{SecretKeys: []string{itSK}, PublishableKeys: []string{itPK}, AllowedOrigins: []string{itOrigin},
		Registry: prometheus.NewRegistry()},
		api.Deps{Publisher: bus, Recommender: eng, Catalog: eng, Checker: eng, Offers: p, Definitions: p, Promotions: p, Subscriber: bus})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	var busMu sync.Mutex
	var onBus []promo.Promotion
	wg.Go(func() {
		bus.Subscribe(ctx, signals.TopicPromotions, func(msg []byte) {
			var pr promo.Promotion
			if err := json.Unmarshal(msg, &pr); err != nil {
				t.Errorf("bus message %s: %v", msg, err)
			}
			busMu.Lock()
			onBus = append(onBus, pr)
			busMu.Unlock()
		})
	})
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		hs.Close()
		cancel()
		wg.Wait()
	})

	call := func(method, path, key, body string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Origin", itOrigin)
		resp, err := hs.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, d := range []struct{ path, body string }{
		{"/v1/offers", `{"id":"o1","title":"Before you go","link":"https://shop.example/sale","items":["sku-1"],"slot":"exit","cap":{"max":3,"per":"24h"}}`},
		{"/v1/rules", `{"id":"exit-after-views","cooldown":"1h","when":{"all":[{"count":{"type":"view","min":2}},{"exit":{}}]},"then":{"offer":"o1"}}`},
	} {
		if code, body := call("POST", d.path, itSK, d.body); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", d.path, code, body)
		}
	}

	// The visitor's page opens its stream.
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	r, _ := http.NewRequestWithContext(sctx, "GET", hs.URL+"/v1/promotions/stream?visitor=v1&key="+itPK, nil)
	r.Header.Set("Origin", itOrigin)
	resp, err := hs.Client().Do(r)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan string, 10)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- d
			}
		}
	}()

	now := time.Now().UTC()
	ev := func(id, typ string, extra string) string {
		return fmt.Sprintf(`{"id":%q,"type":%q,"visitor":"v1","item":"sku-1","ts":%q%s}`, id, typ, now.Format(time.RFC3339Nano), extra)
	}
	batch := "[" + ev("e1", "view", "") + "," + ev("e2", "view", "") + "]"
	if code, body := call("POST", "/v1/events", itPK, batch); code != 200 {
		t.Fatalf("events: %d %s", code, body)
	}
	exit := "[" + ev("e3", "exit", "") + "]"
	sent := time.Now()
	if code, body := call("POST", "/v1/events", itPK, exit); code != 200 {
		t.Fatalf("events: %d %s", code, body)
	}
	var got promo.Promotion
	select {
	case d := <-events:
		t.Logf("exit event to promotion on the stream: %v", time.Since(sent))
		if err := json.Unmarshal([]byte(d), &got); err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no promotion on the stream")
	}
	if got.Offer.ID != "o1" || got.Slot != "exit" || got.Rule != "exit-after-views" || got.Visitor != "v1" || got.Token == "" {
		t.Errorf("promotion %+v", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		busMu.Lock()
		n := len(onBus)
		busMu.Unlock()
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("%d promotions on %s, want 1", n, signals.TopicPromotions)
		}
		time.Sleep(10 * time.Millisecond)
	}
	busMu.Lock()
	if onBus[0].ID != got.ID {
		t.Errorf("bus promotion %s, stream promotion %s", onBus[0].ID, got.ID)
	}
	busMu.Unlock()

	// The page renders it: the impression with its token counts.
	imp := "[" + ev("e4", "impression", fmt.Sprintf(`,"offer":"o1","token":%q`, got.Token)) + "]"
	if code, body := call("POST", "/v1/events", itPK, imp); code != 200 {
		t.Fatalf("impression: %d %s", code, body)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p.Stats("o1").Impressions == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("impression not counted: %+v", p.Stats("o1"))
		}
	}
	if caps, err := promo.NewStore(store).OfferCaps(context.Background(), "v1", []string{"o1"}, time.Now()); err != nil || caps[0] != 1 {
		t.Errorf("cap count %v, %v", caps, err)
	}

	// Re-sent events (same ids) change nothing and fire nothing.
	call("POST", "/v1/events", itPK, batch)
	call("POST", "/v1/events", itPK, exit)
	call("POST", "/v1/events", itPK, imp)
	select {
	case d := <-events:
		t.Fatalf("a redelivery fired %s", d)
	case <-time.After(500 * time.Millisecond):
	}
	if st := p.Stats("o1"); st.Impressions != 1 {
		t.Errorf("redelivered impression counted: %+v", st)
	}
	logged, _ := promo.NewStore(store).Promotions(context.Background(), "v1", 0, 10)
	if len(logged) != 1 || !slices.ContainsFunc(logged, func(x promo.Promotion) bool { return x.ID == got.ID }) {
		t.Errorf("log %+v", logged)
	}
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer answers POST /v1/events with the statuses in plan (then 200),
// recording every batch's ids.
type fakeServer struct {
	mu      sync.Mutex
	plan    []int
	batches [][]string
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var evs []Event
	if err := json.NewDecoder(r.Body).Decode(&evs); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	f.mu.Lock()
	f.batches = append(f.batches, ids)
	status := 200
	if len(f.plan) > 0 {
		status, f.plan = f.plan[0], f.plan[1:]
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if status != 200 {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":"unavailable","message":"try again"}}`)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"accepted": len(ids), "ids": ids, "rejected": []any{}})
}

func newTestClient(t *testing.T, h http.Handler, o Options) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Millisecond
	}
	c, err := New(srv.URL, "sk_test", o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendEventsBatchesAndRetriesWithTheSameIDs(t *testing.T) {
	f := &fakeServer{plan: []int{503, 429, 200, 503}}
	c := newTestClient(t, f, Options{})
	evs := make([]Event, 1200)
	for i := range evs {
		evs[i] = Event{Type: "view", Visitor: "v1", Item: fmt.Sprintf("i%d", i)}
	}
	evs[0].ID = "mine"
	res, err := c.SendEvents(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1200 || len(res.IDs) != 1200 || res.IDs[0] != "mine" {
		t.Fatalf("accepted %d, %d ids, first %q", res.Accepted, len(res.IDs), res.IDs[0])
	}
	// 503, 429, 200 for the first batch; 503, 200 for the second; 200.
	sizes := []int{}
	for _, b := range f.batches {
		sizes = append(sizes, len(b))
	}
	if fmt.Sprint(sizes) != "[500 500 500 500 500 200]" {
		t.Fatalf("batch sizes %v", sizes)
	}
	for i := 1; i < 3; i++ {
		if fmt.Sprint(f.batches[i]) != fmt.Sprint(f.batches[0]) {
			t.Fatalf("try %d of the first batch sent other ids", i+1)
		}
	}
	if evs[1].ID == "" || evs[1].ID == evs[2].ID {
		t.Fatalf("ids given: %q %q", evs[1].ID, evs[2].ID)
	}
}

func TestRetriesEndAndDeadline(t *testing.T) {
	f := &fakeServer{plan: []int{503, 503, 503}}
	c := newTestClient(t, f, Options{Retries: 2})
	_, err := c.SendEvents(context.Background(), []Event{{Type: "view", Visitor: "v"}})
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 || e.Code != "unavailable" || len(f.batches) != 3 {
		t.Fatalf("err %v after %d tries; want the 503 after 3", err, len(f.batches))
	}

	// Retry-After beyond the deadline: no waiting in vain.
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(429)
		fmt.Fprint(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
	})
	c = newTestClient(t, slow, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = c.Recommendations(ctx, RecQuery{Visitor: "v"})
	if !errors.As(err, &e) || e.Status != 429 || e.RetryAfter != 30*time.Second || ctx.Err() != nil {
		t.Fatalf("err %v (ctx %v); want the 429 with Retry-After 30 s before the deadline", err, ctx.Err())
	}

	// Not retryable: 400 at once; a batch rejected whole is a result.
	n := 0
	bad := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.WriteHeader(400)
		fmt.Fprint(w, `{"accepted":0,"ids":[],"rejected":[{"index":0,"id":"e1","field":"type","reason":"missing"}],"error":{"code":"invalid","message":"every event was rejected"}}`)
	})
	c = newTestClient(t, bad, Options{})
	res, err := c.SendEvents(context.Background(), []Event{{ID: "e1", Visitor: "v"}})
	if err != nil || n != 1 || len(res.Rejected) != 1 || res.Rejected[0].Field != "type" {
		t.Fatalf("res %+v, err %v, %d tries", res, err, n)
	}
	if _, err := c.GetItem(context.Background(), "x"); !IsInvalid(err) || n != 2 {
		t.Fatalf("GetItem: %v after %d tries", err, n)
	}
}

func TestPromotionsResumeWithLastEventID(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		conn := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 10\n\n: ping\n\n")
		from := 1
		if conn > 1 {
			from = 3
		}
		for seq := from; seq < from+2; seq++ {
			fmt.Fprintf(w, "id: %d\nevent: promotion\ndata: {\"id\":\"%d\",\"seq\":%d,\"visitor\":\"v\",\"offer\":{\"id\":\"o1\"},\"slot\":\"exit\",\"token\":\"t\"}\n\n", seq, seq, seq)
		}
	})
	c := newTestClient(t, h, Options{})
	var got []uint64
	err := c.Promotions(context.Background(), "v", "", func(p Promotion) error {
		got = append(got, p.Seq)
		if len(got) == 4 {
			return ErrStop
		}
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[1 2 3 4]" || fmt.Sprint(lastIDs) != "[ 2]" {
		t.Fatalf("err %v, got %v, Last-Event-IDs %q", err, got, lastIDs)
	}
	boom := errors.New("boom")
	err = c.Promotions(context.Background(), "v", "9", func(Promotion) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(fmt.Sprint(lastIDs), "9") {
		t.Fatalf("err %v, Last-Event-IDs %q", err, lastIDs)
	}
}

func TestNewChecksItsArguments(t *testing.T) {
	for _, c := range []struct{ url, key string }{{"localhost:8080", "sk"}, {"http://localhost:8080", ""}, {"ftp://x", "sk"}} {
		if _, err := New(c.url, c.key); err == nil {
			t.Errorf("New(%q, %q): no error", c.url, c.key)
		}
	}
}

func TestBatcher(t *testing.T) {
	f := &fakeServer{plan: []int{503}}
	c := newTestClient(t, f, Options{})
	var mu sync.Mutex
	accepted := 0
	b := c.NewBatcher(time.Hour, func(r EventsResult, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("batch: %v", err)
		}
		accepted += r.Accepted
	})
	ids := map[string]bool{}
	for i := range 620 { // a full batch of 500 leaves at once; 120 wait
		ids[b.Add(Event{Type: "view", Visitor: "v", Item: fmt.Sprint(i)})] = true
	}
	if len(ids) != 620 {
		t.Fatalf("%d distinct ids", len(ids))
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.Add(Event{Type: "like", Visitor: "v"})
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if id := b.Add(Event{Type: "view", Visitor: "v"}); id != "" {
		t.Fatalf("Add after Close: %q", id)
	}
	// The full batch and the flushed one go out concurrently: whichever
	// came first was answered 503 and sent again with the same ids.
	sizes := map[int]int{}
	repeated := 0
	for i, batch := range f.batches {
		sizes[len(batch)]++
		for _, other := range f.batches[:i] {
			if fmt.Sprint(other) == fmt.Sprint(batch) {
				repeated++
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if accepted != 621 || len(f.batches) != 4 || sizes[1] != 1 || sizes[500]+sizes[120] != 3 || repeated != 1 {
		t.Fatalf("accepted %d, batch sizes %v, %d repeated", accepted, sizes, repeated)
	}

	// Delay: a lone event leaves on its own.
	f2 := &fakeServer{}
	done := make(chan int, 1)
	b = newTestClient(t, f2, Options{}).NewBatcher(10*time.Millisecond, func(r EventsResult, err error) { done <- r.Accepted })
	defer b.Close(context.Background())
	b.Add(Event{Type: "view", Visitor: "v"})
	select {
	case n := <-done:
		if n != 1 {
			t.Fatalf("accepted %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed batch never left")
	}
}

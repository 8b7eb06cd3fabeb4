package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kairoshq/kairos/signals"
)

// fakeRetrier records what Retry is given.
type fakeRetrier struct {
	mu    sync.Mutex
	calls []retryCall
	err   error
}

type retryCall struct {
	key     string
	ids     []string
	attempt int
}

func (f *fakeRetrier) Retry(_ context.Context, key string, events []signals.Event, attempt int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	c := retryCall{key: key, attempt: attempt}
	for _, ev := range events {
		c.ids = append(c.ids, ev.ID)
	}
	f.calls = append(f.calls, c)
	return nil
}

// dispatched is what one tenant's server was handed.
type dispatched struct {
	ids    []string
	routes []signals.Route
}

func TestRouteKey(t *testing.T) {
	for _, tc := range []struct {
		k       string
		id, key string
		ok      bool
	}{
		{RouteKey("shop-a", "v1"), "shop-a", "v1", true},
		{RouteKey("shop-a", "user:u/1"), "shop-a", "user:u/1", true},
		{"v1", "", "", false},
		{"Shop/v1", "", "", false},
		{"shop-a/", "", "", false},
		{"/v1", "", "", false},
	} {
		id, key, ok := SplitRouteKey(tc.k)
		if id != tc.id || key != tc.key || ok != tc.ok {
			t.Errorf("SplitRouteKey(%q) = %q, %q, %v; want %q, %q, %v", tc.k, id, key, ok, tc.id, tc.key, tc.ok)
		}
	}
}

// TestDispatcher: a batch of the shared partitions reaches each tenant's
// server with its own events and keys, in order; a failing tenant's
// events are sent back (the others are not held up), unless the shared
// parts fail too; events of no tenant are dropped.
func TestDispatcher(t *testing.T) {
	f := newFixture(t, 0)
	f.create(t, `{"id":"shop-a"}`)
	f.create(t, `{"id":"shop-b"}`)
	var (
		mu      sync.Mutex
		got     = map[string]*dispatched{}
		failing = map[string]bool{}
	)
	f.loader.consume = func(id string, ctx context.Context, batch []signals.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if failing[id] {
			return fmt.Errorf("%s is broken", id)
		}
		d := got[id]
		if d == nil {
			d = &dispatched{}
			got[id] = d
		}
		for _, ev := range batch {
			d.ids = append(d.ids, ev.ID)
		}
		d.routes = append(d.routes, signals.RoutesOf(ctx)...)
		return nil
	}
	ret := &fakeRetrier{}
	var healthy error
	d, err := f.r.Dispatcher(DispatcherConfig{Retrier: ret, MaxAttempts: 3, Healthy: func(context.Context) error { return healthy }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(keys ...string) (context.Context, []signals.Event) {
		var evs []signals.Event
		var rs []signals.Route
		for i, k := range keys {
			evs = append(evs, signals.Event{ID: fmt.Sprintf("e%d", i), Visitor: "v"})
			rs = append(rs, signals.Route{Key: k})
		}
		return signals.WithRoutes(context.Background(), rs), evs
	}
	reset := func() {
		mu.Lock()
		clear(got)
		mu.Unlock()
		ret.calls = nil
	}

	t.Run("split", func(t *testing.T) {
		reset()
		ctx, evs := batch("shop-a/v1", "shop-b/v1", "shop-a/user:u", "nobody/v1", "no-tenant", "shop-a/v1")
		if err := d.Handle(ctx, evs); err != nil {
			t.Fatal(err)
		}
		a, b := got["shop-a"], got["shop-b"]
		if a == nil || b == nil {
			t.Fatalf("dispatched %v, want shop-a and shop-b", got)
		}
		if !slices.Equal(a.ids, []string{"e0", "e2", "e5"}) || !slices.Equal(b.ids, []string{"e1"}) {
			t.Errorf("shop-a got %v, shop-b %v; want [e0 e2 e5] and [e1]", a.ids, b.ids)
		}
		var keys []string
		for _, r := range a.routes {
			keys = append(keys, r.Key)
		}
		if !slices.Equal(keys, []string{"v1", "user:u", "v1"}) {
			t.Errorf("shop-a's routes %v, want its own keys [v1 user:u v1]", keys)
		}
		if len(ret.calls) != 0 {
			t.Errorf("retried %v", ret.calls)
		}
	})

	t.Run("failing tenant sent back", func(t *testing.T) {
		reset()
		failing["shop-a"] = true
		defer delete(failing, "shop-a")
		ctx, evs := batch("shop-a/v1", "shop-b/v1", "shop-a/v2", "shop-a/v1")
		if err := d.Handle(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if b := got["shop-b"]; b == nil || !slices.Equal(b.ids, []string{"e1"}) {
			t.Errorf("shop-b got %v, want [e1] despite shop-a failing", b)
		}
		want := []retryCall{{key: "shop-a/v1", ids: []string{"e0", "e3"}, attempt: 1}, {key: "shop-a/v2", ids: []string{"e2"}, attempt: 1}}
		if fmt.Sprint(ret.calls) != fmt.Sprint(want) {
			t.Errorf("retried %v, want %v", ret.calls, want)
		}
	})

	t.Run("attempts counted, then given up", func(t *testing.T) {
		reset()
		failing["shop-a"] = true
		defer delete(failing, "shop-a")
		evs := []signals.Event{{ID: "r1", Visitor: "v"}, {ID: "r2", Visitor: "w"}}
		ctx := signals.WithRoutes(context.Background(), []signals.Route{{Key: "shop-a/v", Forwarded: true, Attempt: 2}, {Key: "shop-a/w", Forwarded: true, Attempt: 3}})
		if err := d.Handle(ctx, evs); err != nil {
			t.Fatal(err)
		}
		want := []retryCall{{key: "shop-a/v", ids: []string{"r1"}, attempt: 3}}
		if fmt.Sprint(ret.calls) != fmt.Sprint(want) {
			t.Errorf("retried %v, want %v (r2 given up after 3 attempts)", ret.calls, want)
		}
	})

	t.Run("shared parts failing", func(t *testing.T) {
		reset()
		failing["shop-a"] = true
		healthy = errors.New("store down")
		defer func() { delete(failing, "shop-a"); healthy = nil }()
		ctx, evs := batch("shop-a/v1", "shop-b/v1")
		if err := d.Handle(ctx, evs); err == nil {
			t.Error("the batch succeeded with a failing tenant and the shared store down")
		}
		if len(ret.calls) != 0 {
			t.Errorf("retried %v: want the whole batch delivered again", ret.calls)
		}
	})

	t.Run("retry queue failing", func(t *testing.T) {
		reset()
		failing["shop-a"] = true
		ret.err = errors.New("broker down")
		defer func() { delete(failing, "shop-a"); ret.err = nil }()
		ctx, evs := batch("shop-a/v1")
		if err := d.Handle(ctx, evs); err == nil {
			t.Error("the batch succeeded though its failed events could not be sent back")
		}
	})

	t.Run("no routes", func(t *testing.T) {
		if err := d.Handle(context.Background(), []signals.Event{{ID: "x"}}); err == nil {
			t.Error("a batch without routes succeeded")
		}
	})
}

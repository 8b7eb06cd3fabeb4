package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// fakeLinks is a LinkStore of fixed links that counts Resolve calls.
type fakeLinks struct {
	LinkStore
	mu    sync.Mutex
	links map[string]string
	calls int
	fail  error
}

func (f *fakeLinks) Resolve(_ context.Context, ids []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return nil, f.fail
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = f.links[id]
	}
	return out, nil
}

func TestRouterKeys(t *testing.T) {
	links := &fakeLinks{links: map[string]string{"phone": "zoe"}}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	r := NewRouter(links, nil)
	r.Now = func() time.Time { return now }
	ctx := context.Background()
	ev := func(visitor, user string) signals.Event { return signals.Event{Visitor: visitor, User: user} }
	got := r.RouteKeys(ctx, []signals.Event{
		ev("phone", ""),     // linked in the store
		ev("laptop", ""),    // linked by a later event of this call
		ev("laptop", "zoe"), // names its user
		ev("tablet", ""),    // not linked
		ev("user:max", ""),  // a user's state key already
		ev("max", "max"),    // visitor is the user
	})
	want := []string{"user:zoe", "user:zoe", "user:zoe", "tablet", "user:max", "user:max"}
	if !slices.Equal(got, want) {
		t.Fatalf("RouteKeys = %v, want %v", got, want)
	}
	if links.calls != 1 {
		t.Fatalf("%d Resolve calls, want 1 (one per call, for the unknown visitors)", links.calls)
	}
	// Cached: no store call within the TTLs.
	r.RouteKeys(ctx, []signals.Event{ev("phone", ""), ev("tablet", "")})
	if links.calls != 1 {
		t.Errorf("cached visitors resolved again (%d calls)", links.calls)
	}
	// A link made elsewhere is seen once the negative entry expires.
	links.mu.Lock()
	links.links["tablet"] = "zoe"
	links.mu.Unlock()
	if got := r.RouteKeys(ctx, []signals.Event{ev("tablet", "")}); got[0] != "tablet" {
		t.Errorf("within the negative TTL: %v, want the cached visitor key", got)
	}
	now = now.Add(r.NegativeTTL + time.Millisecond)
	if got := r.RouteKeys(ctx, []signals.Event{ev("tablet", ""), ev("phone", "")}); !slices.Equal(got, []string{"user:zoe", "user:zoe"}) {
		t.Errorf("after the negative TTL: %v, want [user:zoe user:zoe]", got)
	}
	if links.calls != 2 {
		t.Errorf("%d Resolve calls, want 2 (phone still cached)", links.calls)
	}
	// A store failure routes by visitor id and caches nothing.
	links.fail = errors.New("store down")
	now = now.Add(r.PositiveTTL + time.Second)
	if got := r.RouteKeys(ctx, []signals.Event{ev("phone", "")}); got[0] != "phone" {
		t.Errorf("store down: %v, want the visitor id", got)
	}
	links.fail = nil
	if got := r.RouteKeys(ctx, []signals.Event{ev("phone", "")}); got[0] != "user:zoe" {
		t.Errorf("store back: %v, want user:zoe", got)
	}
}

func TestRouterCacheBounded(t *testing.T) {
	links := &fakeLinks{links: map[string]string{}}
	r := NewRouter(links, nil)
	r.Size = 10
	for i := range 25 {
		r.RouteKeys(context.Background(), []signals.Event{{Visitor: string(rune('a' + i))}})
		if n := len(r.cache); n > r.Size {
			t.Fatalf("cache holds %d entries, want at most %d", n, r.Size)
		}
	}
}

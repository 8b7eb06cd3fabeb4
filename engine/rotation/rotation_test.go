package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/rotation"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

// t0 is now: the Redis and embedded backends expire maps by their own clocks.
var t0 = time.Now().Truncate(time.Millisecond)

func TestFade(t *testing.T) {
	const r = 30 * time.Minute
	tests := []struct {
		age, r time.Duration
		want   float64
	}{
		{0, r, 0}, {-time.Second, r, 0}, {r / 4, r, 0.25}, {r / 2, r, 0.5}, {r * 3 / 4, r, 0.75},
		{r, r, 1}, {2 * r, r, 1}, {time.Minute, 0, 1}, {0, -time.Second, 1},
	}
	for _, tt := range tests {
		if got := rotation.Fade(tt.age, tt.r); got != tt.want {
			t.Errorf("Fade(%v, %v) = %v, want %v", tt.age, tt.r, got, tt.want)
		}
	}
	// Rising: a later age never fades more.
	prev := -1.0
	for age := time.Duration(0); age <= r; age += time.Minute {
		f := rotation.Fade(age, r)
		if f < prev {
			t.Fatalf("Fade falls from %v to %v at %v", prev, f, age)
		}
		prev = f
	}
}

// recs returns items i0..i(n-1) with descending (possibly negative) scores.
func recs(n int) []engine.Rec {
	out := make([]engine.Rec, n)
	for i := range out {
		out[i] = engine.Rec{Item: fmt.Sprintf("i%d", i), Score: float32(5 - i)}
	}
	return out
}

func items(rs []engine.Rec) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Item
	}
	return out
}

// pager returns a function that serves one request through r with f's
// ranking and returns the items, failing the test on an error.
func pager(t *testing.T, r *rotation.Rotation, f *ranker) func(rotation.Request) []string {
	return func(req rotation.Request) []string {
		t.Helper()
		resp, err := r.Serve(context.Background(), req, f.rank)
		if err != nil {
			t.Fatal(err)
		}
		return items(resp.Items)
	}
}

func TestRerank(t *testing.T) {
	const r = 30 * time.Minute
	list := recs(10)
	// Nothing shown: the ranker's order.
	if got := items(rotation.Rerank(list, nil, r, nil)); !slices.Equal(got, items(list)) {
		t.Errorf("no ages: %v", got)
	}
	// i0 just shown: last; i1 shown half the rotation ago: utility 0.9·0.5
	// = 0.45, between i5 (0.5) and i6 (0.4); i2 shown a rotation ago: not
	// demoted.
	ages := map[string]time.Duration{"i0": 0, "i1": r / 2, "i2": r}
	got := items(rotation.Rerank(list, ages, r, nil))
	want := []string{"i2", "i3", "i4", "i5", "i1", "i6", "i7", "i8", "i9", "i0"}
	if !slices.Equal(got, want) {
		t.Errorf("faded order %v, want %v", got, want)
	}
	// Later in the fade, i1 climbs back: at 0.9 of the rotation, 0.81,
	// above i2's 0.8.
	ages["i1"] = r * 9 / 10
	if got := items(rotation.Rerank(list, ages, r, nil)); got[0] != "i1" || got[1] != "i2" {
		t.Errorf("i1 at 90 %% of the rotation: %v, want it first again", got)
	}
	// Skipped items are left out.
	got = items(rotation.Rerank(list, nil, r, func(it string) bool { return it == "i3" || it == "i7" }))
	if len(got) != 8 || slices.Contains(got, "i3") || slices.Contains(got, "i7") {
		t.Errorf("skip: %v", got)
	}
}

// ranker is a fake engine ranking of total items.
type ranker struct {
	total int
	asked []int
}

func (f *ranker) rank(_ context.Context, n int) (engine.RecResponse, error) {
	f.asked = append(f.asked, n)
	return engine.RecResponse{Visitor: "v", Strategy: engine.StrategyALS, Items: recs(min(n, f.total))}, nil
}

func mustNew(tb testing.TB, m storage.Maps, clock *testutil.Clock, cfg rotation.Config) *rotation.Rotation {
	tb.Helper()
	if cfg.Secret == nil {
		cfg.Secret = []byte("0123456789abcdef-secret")
	}
	cfg.Now = clock.Now
	r, err := rotation.New(m, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestServeRotates(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, open func(tb testing.TB) storage.Backend) {
		ctx := context.Background()
		clock := testutil.NewClock(t0)
		r := mustNew(t, open(t), clock, rotation.Config{Default: 30 * time.Minute})
		f := &ranker{total: 50}
		page := pager(t, r, f)
		first := page(rotation.Request{Visitor: "v", N: 3, Rotation: -1})
		if !slices.Equal(first, []string{"i0", "i1", "i2"}) {
			t.Fatalf("first request %v", first)
		}
		// Served a minute ago: demoted below the next items; the ranker was
		// asked for 3 + the 3 demoted + 1 (whether a page follows).
		clock.Add(time.Minute)
		second := page(rotation.Request{Visitor: "v", N: 3, Rotation: -1})
		if !slices.Equal(second, []string{"i3", "i4", "i5"}) || f.asked[len(f.asked)-1] != 7 {
			t.Fatalf("a minute later: %v (asked %v), want i3 i4 i5 from 7 candidates", second, f.asked)
		}
		// Both pages served 31 and 30 minutes ago: the rotation is over for both.
		clock.Add(30 * time.Minute)
		if third := page(rotation.Request{Visitor: "v", N: 3, Rotation: -1}); !slices.Equal(third, first) {
			t.Fatalf("after the rotation time: %v, want %v back", third, first)
		}
		// rotation=0 asks for the ranker's order whatever was served.
		if got := page(rotation.Request{Visitor: "v", N: 3, Rotation: 0}); !slices.Equal(got, first) {
			t.Errorf("rotation 0: %v", got)
		}
		// An impression marks an item seen: i0 was seen now, it drops.
		clock.Add(time.Hour)
		r.React(ctx, []engine.VisitorChange{{Visitor: engine.Visitor{ID: "v"}, Fresh: []signals.Event{
			{Type: signals.TypeImpression, Visitor: "v", Item: "i0", Time: signals.Timestamp{Time: clock.Now()}}}}})
		if got := page(rotation.Request{Visitor: "v", N: 3, Rotation: 10 * time.Minute}); !slices.Equal(got, []string{"i1", "i2", "i3"}) {
			t.Errorf("after an impression of i0: %v, want i1 i2 i3", got)
		}
		if err := r.ForgetVisitor(ctx, "v"); err != nil {
			t.Fatal(err)
		}
		if got := page(rotation.Request{Visitor: "v", N: 3, Rotation: 10 * time.Minute}); !slices.Equal(got, first) {
			t.Errorf("after ForgetVisitor: %v, want %v", got, first)
		}
	})
}

func TestPaging(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock(t0)
	for _, rot := range []time.Duration{0, 30 * time.Minute} {
		t.Run(fmt.Sprint("rotation ", rot), func(t *testing.T) {
			r := mustNew(t, storagetest.NewMem(nil), clock, rotation.Config{MaxCandidates: 100})
			f := &ranker{total: 23}
			seen := map[string]bool{}
			var tok string
			pages := 0
			for {
				resp, err := r.Serve(ctx, rotation.Request{Visitor: "pager", N: 5, Rotation: rot, Page: tok}, f.rank)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, it := range items(resp.Items) {
					if seen[it] {
						t.Fatalf("page %d repeats %s", pages, it)
					}
					seen[it] = true
				}
				if resp.Next == "" {
					break
				}
				if pages > 10 {
					t.Fatal("paging does not end")
				}
				tok = resp.Next
				clock.Add(time.Second)
			}
			if len(seen) != 23 || pages != 5 {
				t.Errorf("%d pages, %d items, want 5 pages of the 23 items", pages, len(seen))
			}
		})
	}
	t.Run("a last full page has no next", func(t *testing.T) {
		r := mustNew(t, storagetest.NewMem(nil), clock, rotation.Config{MaxCandidates: 100})
		f := &ranker{total: 10}
		resp, _ := r.Serve(ctx, rotation.Request{Visitor: "full", N: 5, Rotation: 0}, f.rank)
		resp, err := r.Serve(ctx, rotation.Request{Visitor: "full", N: 5, Rotation: 0, Page: resp.Next}, f.rank)
		if err != nil || len(resp.Items) != 5 || resp.Next != "" {
			t.Errorf("second page of 10 candidates: %v, %v next %q; want 5 items, no next", items(resp.Items), err, resp.Next)
		}
	})
	t.Run("ends at MaxCandidates", func(t *testing.T) {
		r := mustNew(t, storagetest.NewMem(nil), clock, rotation.Config{MaxCandidates: 8})
		f := &ranker{total: 50}
		resp, _ := r.Serve(ctx, rotation.Request{Visitor: "v", N: 5, Rotation: 0}, f.rank)
		resp, err := r.Serve(ctx, rotation.Request{Visitor: "v", N: 5, Rotation: 0, Page: resp.Next}, f.rank)
		if err != nil || len(resp.Items) != 3 || resp.Next != "" {
			t.Errorf("second page of 8 candidates: %v, %v next %q; want 3 items, no next", items(resp.Items), err, resp.Next)
		}
	})
}

func TestBadTokens(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock(t0)
	r := mustNew(t, storagetest.NewMem(nil), clock, rotation.Config{})
	f := &ranker{total: 50}
	resp, err := r.Serve(ctx, rotation.Request{Visitor: "v", N: 2, Rotation: 0}, f.rank)
	if err != nil || resp.Next == "" {
		t.Fatal(err, resp)
	}
	other := mustNew(t, storagetest.NewMem(nil), clock, rotation.Config{Secret: []byte("another secret, 16+ bytes")})
	forged, _ := other.Serve(ctx, rotation.Request{Visitor: "v", N: 2, Rotation: 0}, f.rank)
	p, s, _ := strings.Cut(resp.Next, ".")
	tests := []struct {
		name, visitor, page, want string
	}{
		{"garbage", "v", "hello", "page: not a valid page token"},
		{"altered", "v", p + "A." + s, "altered, or made by another server"},
		{"another server's", "v", forged.Next, "altered, or made by another server"},
		{"another visitor", "w", resp.Next, "made for another visitor"},
		{"too long", "v", strings.Repeat("A", 5000) + "." + s, "not a valid page token"},
	}
	for _, tt := range tests {
		_, err := r.Serve(ctx, rotation.Request{Visitor: tt.visitor, N: 2, Page: tt.page}, f.rank)
		if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want invalid %q", tt.name, err, tt.want)
		}
	}
	clock.Add(2 * time.Hour)
	if _, err := r.Serve(ctx, rotation.Request{Visitor: "v", N: 2, Page: resp.Next}, f.rank); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a token of 2 h ago: %v, want expired", err)
	}
	if _, err := r.Serve(ctx, rotation.Request{Visitor: "v", N: 2, Rotation: 48 * time.Hour}, f.rank); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("rotation 48h: %v, want invalid", err)
	}
}

func FuzzToken(f *testing.F) {
	clock := testutil.NewClock(t0)
	r := mustNew(f, storagetest.NewMem(nil), clock, rotation.Config{})
	fr := &ranker{total: 50}
	resp, _ := r.Serve(context.Background(), rotation.Request{Visitor: "v", N: 2, Rotation: 0}, fr.rank)
	f.Add(resp.Next)
	f.Add("x.y")
	f.Fuzz(func(t *testing.T, tok string) {
		_, err := r.Serve(context.Background(), rotation.Request{Visitor: "v", N: 2, Page: tok}, fr.rank)
		if err != nil && !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("token %q: %v (want nil or invalid)", tok, err)
		}
	})
}

// BenchmarkServe is the layer's cost over the ranker for a page of 10
// with 20 demoted items and a next token, on the in-memory backend (the
// store's round trips come on top on Redis).
func BenchmarkServe(b *testing.B) {
	ctx := context.Background()
	clock := testutil.NewClock(t0)
	r := mustNew(b, storagetest.NewMem(clock.Now), clock, rotation.Config{Default: 30 * time.Minute})
	f := &ranker{total: 100}
	for range 2 {
		if _, err := r.Serve(ctx, rotation.Request{Visitor: "v", N: 10, Rotation: -1}, f.rank); err != nil {
			b.Fatal(err)
		}
		clock.Add(time.Second)
	}
	b.ReportAllocs()
	for b.Loop() {
		f.asked = f.asked[:0]
		if _, err := r.Serve(ctx, rotation.Request{Visitor: "v", N: 10, Rotation: -1}, f.rank); err != nil {
			b.Fatal(err)
		}
	}
}

// bobsDevices returns a clock, a Rotation on an in-memory store whose
// state keys link the devices "phone" and "laptop" to the user bob, and a
// pager over a ranker of 50 items.
func bobsDevices(t *testing.T) (*testutil.Clock, *rotation.Rotation, func(rotation.Request) []string) {
	clock := testutil.NewClock(t0)
	stateKey := linkedStateKey(map[string]string{"phone": "bob", "laptop": "bob"})
	r := mustNew(t, storagetest.NewMem(clock.Now), clock, rotation.Config{Default: 30 * time.Minute, StateKey: stateKey})
	return clock, r, pager(t, r, &ranker{total: 50})
}

// linkedStateKey is a Config.StateKey for devices linked to users
// (device → user).
func linkedStateKey(users map[string]string) func(ctx context.Context, visitor, user string) (string, error) {
	return func(_ context.Context, visitor, user string) (string, error) {
		if user == "" {
			user = users[visitor]
		}
		if user == "" {
			return visitor, nil
		}
		return engine.UserKey(user), nil
	}
}

// With Config.StateKey a user's devices share one record: what one device
// was served or saw is demoted on the other, and erasing the user forgets
// it.
func TestUserDevicesShareTheRecord(t *testing.T) {
	ctx := context.Background()
	clock, r, page := bobsDevices(t)
	if got := page(rotation.Request{Visitor: "phone", N: 3, Rotation: -1}); !slices.Equal(got, []string{"i0", "i1", "i2"}) {
		t.Fatalf("phone: %v", got)
	}
	clock.Add(time.Minute)
	if got := page(rotation.Request{Visitor: "laptop", N: 3, Rotation: -1}); !slices.Equal(got, []string{"i3", "i4", "i5"}) {
		t.Fatalf("laptop a minute after the phone was served i0-i2: %v, want i3 i4 i5", got)
	}
	// Another visitor's record is its own.
	if got := page(rotation.Request{Visitor: "tablet", N: 3, Rotation: -1}); !slices.Equal(got, []string{"i0", "i1", "i2"}) {
		t.Fatalf("an unlinked visitor: %v", got)
	}
	// An impression committed to the user's state (from the phone) counts
	// on the laptop.
	clock.Add(time.Hour)
	r.React(ctx, []engine.VisitorChange{{Visitor: engine.Visitor{ID: engine.UserKey("bob")}, Fresh: []signals.Event{
		{Type: signals.TypeImpression, Visitor: "phone", Item: "i0", Time: signals.Timestamp{Time: clock.Now()}}}}})
	if got := page(rotation.Request{Visitor: "laptop", N: 3, Rotation: 10 * time.Minute}); !slices.Equal(got, []string{"i1", "i2", "i3"}) {
		t.Fatalf("after the phone saw i0: laptop gets %v, want i1 i2 i3", got)
	}
	if err := r.ForgetVisitor(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := page(rotation.Request{Visitor: "phone", N: 3, Rotation: 10 * time.Minute}); !slices.Equal(got, []string{"i0", "i1", "i2"}) {
		t.Fatalf("after erasing bob: %v", got)
	}
}

// Erasing a device linked to a user removes what was shown on it from the
// user's record; what other devices were shown stays demoted.
func TestForgetDeviceKeepsOtherDevicesShowings(t *testing.T) {
	ctx := context.Background()
	clock, r, page := bobsDevices(t)
	page(rotation.Request{Visitor: "phone", N: 3, Rotation: -1})  // i0 i1 i2 on the phone
	page(rotation.Request{Visitor: "laptop", N: 3, Rotation: -1}) // i3 i4 i5 on the laptop
	// The phone saw i6 (an impression committed to bob's state).
	r.React(ctx, []engine.VisitorChange{{Visitor: engine.Visitor{ID: engine.UserKey("bob")}, Fresh: []signals.Event{
		{Type: signals.TypeImpression, Visitor: "phone", Item: "i6", Time: signals.Timestamp{Time: clock.Now()}}}}})
	clock.Add(time.Minute)
	if err := r.ForgetVisitor(ctx, "phone"); err != nil {
		t.Fatal(err)
	}
	// The laptop's showings stay demoted; the phone's are forgotten.
	if got := page(rotation.Request{Visitor: "laptop", N: 5, Rotation: 10 * time.Minute}); !slices.Equal(got, []string{"i0", "i1", "i2", "i6", "i7"}) {
		t.Fatalf("after erasing the phone, the laptop gets %v, want i0 i1 i2 i6 i7 (i3-i5 still demoted)", got)
	}
}

// TestPeekRecordsNothing: a page served with Peek (a HEAD request) is not
// recorded as shown, so the next request gets the same page.
func TestPeekRecordsNothing(t *testing.T) {
	clock := testutil.NewClock(t0)
	r := mustNew(t, storagetest.NewMem(nil), clock, rotation.Config{Default: 30 * time.Minute})
	page := pager(t, r, &ranker{total: 50})
	peeked := page(rotation.Request{Visitor: "v", N: 3, Rotation: -1, Peek: true})
	clock.Add(time.Minute)
	if got := page(rotation.Request{Visitor: "v", N: 3, Rotation: -1}); !slices.Equal(got, peeked) {
		t.Fatalf("after a peek: %v, want %v again", got, peeked)
	}
	clock.Add(time.Minute)
	if got := page(rotation.Request{Visitor: "v", N: 3, Rotation: -1}); slices.Equal(got, peeked) {
		t.Fatalf("after a served page: %v again", got)
	}
}

package attention_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
	"github.com/kairoshq/kairos/signals"
)

func TestMemContract(t *testing.T) {
	attentiontest.Run(t, func(t *testing.T) attention.Store { return &attentiontest.Mem{} })
}

func TestPageKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://Shop.Example/p/42?utm_source=x#top", "https://shop.example/p/42"},
		{"HTTPS://shop.example:443/p/42", "https://shop.example/p/42"},
		{"http://shop.example:80/", "http://shop.example/"},
		{"http://shop.example:8080/a/", "http://shop.example:8080/a/"},
		{"https://shop.example:80/a", "https://shop.example:80/a"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/"},
		{"http://[::1]:80/x", "http://[::1]/x"},
		{"http://[::1]:8080/x", "http://[::1]:8080/x"},
		{"https://user:pw@shop.example/p", "https://shop.example/p"},
		{"https://shop.example/a%20b/c%2Fd", "https://shop.example/a%20b/c%2Fd"},
		{"  /p/42?x=1  ", "/p/42"},
		{"p/42", ""},
		{"", ""},
		{"mailto:x@shop.example", ""},
		{"https://", ""},
		{"://bad", ""},
	} {
		if got := attention.PageKey(tt.in); got != tt.want {
			t.Errorf("PageKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestElementOfAndParse(t *testing.T) {
	for _, tt := range []struct {
		ev              signals.Event
		el, item, offer string
	}{
		{signals.Event{Element: "item:42", Item: "42"}, "item:42", "42", ""},
		{signals.Event{Element: "hero-banner", Offer: "o1"}, "hero-banner", "", ""},
		{signals.Event{Offer: "o1", Item: "42"}, "offer:o1", "", "o1"},
		{signals.Event{Item: "a:b"}, "item:a:b", "a:b", ""},
		{signals.Event{}, "", "", ""},
	} {
		el := attention.ElementOf(&tt.ev)
		item, offer := attention.ParseElement(el)
		if el != tt.el || item != tt.item || offer != tt.offer {
			t.Errorf("%+v: element %q (item %q, offer %q), want %q (%q, %q)", tt.ev, el, item, offer, tt.el, tt.item, tt.offer)
		}
	}
}

func dwell(page, el string, ms float64) signals.Event {
	return signals.Event{Type: signals.TypeDwell, Visitor: "v", Page: page, Element: el, Value: ms}
}

func TestReactAndHeat(t *testing.T) {
	store := &attentiontest.Mem{}
	a, err := attention.New(store, attention.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const p = "https://shop.example/p/42"
	ctx := context.Background()
	a.React(ctx, []engine.VisitorChange{
		{Fresh: []signals.Event{
			dwell(p+"?a=1", "item:42", 600.4),
			dwell(p+"#x", "item:7", 300),
			{Type: signals.TypeClick, Visitor: "v", Page: p, Element: "item:42", Value: 999}, // not a dwell
			dwell("", "item:42", 500), // no page: skipped
			dwell(p, "", 500),         // no element: skipped
			dwell(p, "item:0", 0),     // no dwell: skipped
			dwell("https://shop.example/", "offer:o1", 100),
		}},
		{Fresh: []signals.Event{
			dwell(p, "offer:o1", 300),
			{Type: signals.TypeDwell, Visitor: "w", Page: p, Item: "9", Value: 100}, // server-side: element from the item
		}},
	})
	a.React(ctx, []engine.VisitorChange{{Fresh: []signals.Event{dwell(p, "item:42", 0.4), dwell(p, "item:42", 600)}}})

	h, err := a.Heat(ctx, "https://SHOP.example:443/p/42?utm=1", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := attention.Heat{Page: p, TotalMs: 1900, Count: 4, Elements: []attention.ElementHeat{
		{Element: "item:42", Item: "42", DwellMs: 1200, Share: 0.6316, Rank: 1},
		{Element: "item:7", Item: "7", DwellMs: 300, Share: 0.1579, Rank: 2},
		{Element: "offer:o1", Offer: "o1", DwellMs: 300, Share: 0.1579, Rank: 2},
		{Element: "item:9", Item: "9", DwellMs: 100, Share: 0.0526, Rank: 4},
	}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("heat\n got %+v\nwant %+v", h, want)
	}
	top, err := a.Heat(ctx, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Elements) != 2 || top.Count != 4 || top.TotalMs != 1900 {
		t.Fatalf("n=2: %+v", top)
	}
	empty, err := a.Heat(ctx, "https://shop.example/none", 5)
	if err != nil || empty.TotalMs != 0 || len(empty.Elements) != 0 || empty.Elements == nil {
		t.Fatalf("unknown page: %+v, %v (want no elements, an empty list)", empty, err)
	}
}

func TestHeatOther(t *testing.T) {
	store := &attentiontest.Mem{}
	a, err := attention.New(store, attention.Config{MaxElements: 2})
	if err != nil {
		t.Fatal(err)
	}
	a.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{
		dwell("/p", "a", 100), dwell("/p", "b", 300), dwell("/p", "c", 600),
	}}})
	h, err := a.Heat(context.Background(), "/p", 10)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalMs != 1000 || h.OtherMs != 600 || len(h.Elements) != 2 || h.Elements[0].Element != "b" || h.Elements[0].Share != 0.3 {
		t.Fatalf("heat %+v: want total 1000, other 600 (c, past the bound), b first with 0.3", h)
	}
}

func TestTTL(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := &attentiontest.Mem{Now: clock}
	a, err := attention.New(store, attention.Config{TTL: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a.React(ctx, []engine.VisitorChange{{Fresh: []signals.Event{dwell("/p", "a", 100)}}})
	now = now.Add(59 * time.Minute)
	a.React(ctx, []engine.VisitorChange{{Fresh: []signals.Event{dwell("/p", "a", 100)}}}) // renews the expiry
	now = now.Add(59 * time.Minute)
	if h, _ := a.Heat(ctx, "/p", 1); h.TotalMs != 200 {
		t.Fatalf("after 1h58m with a dwell at 59m: total %d, want 200", h.TotalMs)
	}
	now = now.Add(2 * time.Minute)
	if h, _ := a.Heat(ctx, "/p", 1); h.TotalMs != 0 {
		t.Fatalf("an hour after the last dwell: total %d, want 0 (expired)", h.TotalMs)
	}
}

func TestHeatInvalid(t *testing.T) {
	a, err := attention.New(&attentiontest.Mem{}, attention.Config{MaxResults: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		page string
		n    int
		name string
	}{
		{"relative/page", 10, "page"},
		{"", 10, "page"},
		{"/p", 0, "n"},
		{"/p", 51, "n"},
	} {
		_, err := a.Heat(context.Background(), tt.page, tt.n)
		if !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("Heat(%q, %d) = %v, want engine.ErrInvalid", tt.page, tt.n, err)
		}
	}
}

// failing is a Store whose writes fail.
type failing struct{ attentiontest.Mem }

func (f *failing) AddDwell(context.Context, attention.Write) error { return engine.ErrUnavailable }

func TestWriteFailureIsContained(t *testing.T) {
	a, err := attention.New(&failing{}, attention.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{dwell("/p", "a", 100)}}})
	if h, err := a.Heat(context.Background(), "/p", 1); err != nil || h.TotalMs != 0 {
		t.Fatalf("heat after a failed write: %+v, %v", h, err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := attention.Config{MaxElements: -1, MaxResults: -1, TTL: time.Millisecond, WriteTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, s := range []string{"MaxElements", "MaxResults", "TTL", "WriteTimeout"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%v does not name %s", err, s)
		}
	}
	if _, err := attention.New(nil, attention.Config{}); err == nil {
		t.Error("nil store accepted")
	}
}

func BenchmarkReact(b *testing.B) {
	a, err := attention.New(&attentiontest.Mem{}, attention.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var evs []signals.Event
	for i := range 256 {
		evs = append(evs, dwell("https://shop.example/p/"+string(rune('a'+i%20)), "item:"+string(rune('a'+i%7)), 500))
	}
	changes := []engine.VisitorChange{{Fresh: evs}}
	b.ReportAllocs()
	for b.Loop() {
		a.React(context.Background(), changes)
	}
}

func TestEverySourceCounts(t *testing.T) {
	a, err := attention.New(&attentiontest.Mem{}, attention.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const p = "https://shop.example/m"
	ctx := context.Background()
	var fresh []signals.Event
	for i, src := range []string{"", signals.SourceMouse, signals.SourceTouch, signals.SourceViewport} {
		ev := dwell(p, "item:"+strconv.Itoa(i), float64(100*(i+1)))
		ev.Source = src
		fresh = append(fresh, ev)
	}
	a.React(ctx, []engine.VisitorChange{{Fresh: fresh}})
	h, err := a.Heat(ctx, p, 10)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalMs != 1000 || h.Count != 4 || h.Elements[0].Element != "item:3" {
		t.Fatalf("heat of dwell from every source: %+v, want 1000 ms over 4 elements, the viewport one first", h)
	}
}

// With FlushEvery the dwell of many batches is written together: not in
// React, but when Heat asks, or once the period has passed.
func TestCoalescedDwell(t *testing.T) {
	store := &attentiontest.Mem{}
	a, err := attention.New(store, attention.Config{FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const p = "https://shop.example/p/42"
	ctx := context.Background()
	for range 3 {
		a.React(ctx, []engine.VisitorChange{{Fresh: []signals.Event{dwell(p, "item:42", 200)}}})
	}
	if els, err := store.PageDwell(ctx, p); err != nil || len(els) != 0 {
		t.Fatalf("written in React: %v, %v", els, err)
	}
	h, err := a.Heat(ctx, p, 5)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalMs != 600 || len(h.Elements) != 1 || h.Elements[0].DwellMs != 600 {
		t.Fatalf("heat after three batches: %+v, want item:42 at 600 ms", h)
	}

	timed, err := attention.New(store, attention.Config{FlushEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	timed.React(ctx, []engine.VisitorChange{{Fresh: []signals.Event{dwell(p, "item:7", 100)}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		els, err := store.PageDwell(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(els) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dwell was not written within 5 s of a 20 ms period: %v", els)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

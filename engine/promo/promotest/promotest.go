// Package promotest is the contract test suite of the promo.Store port:
// it runs on promo.NewStore over the in-memory reference backend
// (storagetest.Mem, NewMem) and over engine/embedded and
// engine/redisstore, so that every store keeps the same guarantees.
//
// Run checks, each in its own subtest on a fresh store:
//
//   - definitions (Store.Definitions: the engine/defstore collections
//     of offers, campaigns and rules): Put creates and replaces, All
//     lists one kind in ascending id order, Delete removes
//     (engine.ErrNotFound after), kinds are separate, create of an
//     existing id is errs.Conflict and replace of a missing one
//     errs.NotFound, of concurrent Upserts of a new id exactly one
//     creates it, and the collections' versions change with every write;
//   - counters: AddOfferCounts adds offer counters and factor deltas (several
//     calls, and concurrent calls, add up exactly); OfferCounts returns
//     them;
//   - caps: a cap window starts at the first increment and lasts its
//     period; Caps reports the count inside the window and 0 after it,
//     in the order asked, per visitor and offer;
//   - cooldowns: TryRuleCooldown starts one, refuses while it runs (returning
//     its end), starts again after it; rules and visitors are separate;
//     of concurrent callers exactly one wins;
//   - promotion log: Seq is the larger of the last Seq + 1 and the
//     creation time in µs, ID its decimal form; Promotions returns those
//     after a Seq in order, up to a limit; the log keeps the newest keep;
//     every field round-trips; concurrent appends get distinct Seqs;
//   - ForgetVisitor erases one visitor's caps, cooldowns and log only;
//   - Secret is stable and at least 16 bytes;
//   - a cancelled context fails every call.
//
// RunPersistence checks that all of it survives a Close and a reopen.
// Stores may drop cap windows, cooldowns and promotion logs that have
// expired by their own clock (so that test uses the real time).
//
// Times are compared at millisecond precision (the stores keep caps and
// cooldowns in Unix ms).
package promotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Run runs the contract suite as subtests of t. open returns a new, empty
// store for each subtest and registers its cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) promo.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s promo.Store)
	}{
		{"Docs", testDocs},
		{"DocsModes", testDocsModes},
		{"DocsUpsertConcurrent", testDocsUpsertConcurrent},
		{"DocsVersion", testDocsVersion},
		{"Counts", testCounts},
		{"CountsConcurrent", testCountsConcurrent},
		{"Caps", testCaps},
		{"Cooldown", testCooldown},
		{"CooldownConcurrent", testCooldownConcurrent},
		{"PromotionLog", testPromotionLog},
		{"PromotionSeq", testPromotionSeq},
		{"PromotionConcurrent", testPromotionConcurrent},
		{"ForgetVisitor", testForget},
		{"Secret", testSecret},
		{"Cancelled", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// Closer is a store that can be closed (for RunPersistence).
type Closer interface {
	promo.Store
	io.Closer
}

// RunPersistence writes one of everything, closes the store, opens it
// again on the same backing data and checks that everything is there.
// newBacking creates new backing data and returns its opener.
func RunPersistence(t *testing.T, newBacking func(t *testing.T) (open func(t *testing.T) Closer)) {
	t.Run("Reopen", func(t *testing.T) {
		open := newBacking(t)
		// The store's clock may prune expired state when it persists:
		// this test's times are the real ones.
		base := time.Now().UTC().Truncate(time.Millisecond)
		s := open(t)
		ctx := ctxT(t)
		secret := must(s.PromoSecret(ctx))(t)
		defs := defsOf(t, s)
		mustDo(t, put(ctx, defs, promo.KindOffer, "o1", `{"id":"o1"}`))
		mustDo(t, put(ctx, defs, promo.KindRule, "r1", `{"id":"r1"}`))
		mustDo(t, put(ctx, defs, promo.KindRule, "r2", `{"id":"r2"}`))
		mustDo(t, defs.Collection(promo.KindRule).Delete(ctx, "r2"))
		version := must(defs.Collection(promo.KindRule).Version(ctx))(t)
		mustDo(t, s.AddOfferCounts(ctx, promo.Counts{Now: base,
			Stats:   map[string]promo.OfferStats{"o1": {Impressions: 7, Clicks: 2, Conversions: 1}},
			Factors: map[string][]float32{"o1": {0.5, -0.25}},
			Caps:    []promo.CapIncrement{{Visitor: "v1", Offer: "o1", Period: time.Hour}, {Visitor: "v1", Offer: "o1", Period: time.Hour}},
		}))
		must2(s.TryRuleCooldown(ctx, "v1", "r1", base, time.Hour))(t)
		p := must(s.AppendPromotion(ctx, samplePromotion("v1", base), 10, time.Hour))(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s = open(t)
		defer s.Close()
		if got := must(s.PromoSecret(ctx))(t); !slices.Equal(got, secret) {
			t.Errorf("secret changed across a reopen")
		}
		defs = defsOf(t, s)
		docs := must(defs.Collection(promo.KindRule).All(ctx))(t)
		if len(docs) != 1 || docs[0].ID != "r1" || string(docs[0].JSON) != `{"id":"r1"}` {
			t.Errorf("rules after reopen = %v, want r1 only", docIDs(docs))
		}
		if v := must(defs.Collection(promo.KindRule).Version(ctx))(t); v != version {
			t.Errorf("rules' version after reopen = %d, want %d", v, version)
		}
		oc := must(s.OfferCounts(ctx))(t)
		if st := oc.Stats["o1"]; st != (promo.OfferStats{Impressions: 7, Clicks: 2, Conversions: 1}) {
			t.Errorf("stats after reopen = %+v", st)
		}
		if f := oc.Factors["o1"]; !slices.Equal(f, []float32{0.5, -0.25}) {
			t.Errorf("factors after reopen = %v", f)
		}
		if caps := must(s.OfferCaps(ctx, "v1", []string{"o1"}, base.Add(time.Minute)))(t); caps[0] != 2 {
			t.Errorf("cap count after reopen = %d, want 2", caps[0])
		}
		if ok, _ := must2(s.TryRuleCooldown(ctx, "v1", "r1", base.Add(time.Minute), time.Hour))(t); ok {
			t.Errorf("cooldown lost across a reopen")
		}
		ps := must(s.Promotions(ctx, "v1", 0, 10))(t)
		if len(ps) != 1 || !reflect.DeepEqual(ps[0], p) {
			t.Errorf("promotions after reopen = %+v, want [%+v]", ps, p)
		}
		q := must(s.AppendPromotion(ctx, samplePromotion("v1", base), 10, time.Hour))(t)
		if q.Seq != p.Seq+1 {
			t.Errorf("Seq after reopen = %d, want %d", q.Seq, p.Seq+1)
		}
	})
}

// base is the suite's clock: whole milliseconds, UTC.
var base = time.Date(2025, 6, 1, 10, 0, 0, 123_000_000, time.UTC)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// must returns v, failing t on err: must(f())(t).
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func must2[A, B any](a A, b B, err error) func(*testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func docIDs(ds []storage.Doc) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

// defsOf returns the definitions of s.
func defsOf(t *testing.T, s promo.Store) *promo.Definitions {
	t.Helper()
	d := s.Definitions()
	return d
}

// put upserts the JSON doc as the definition id of kind.
func put(ctx context.Context, d *promo.Definitions, kind promo.Kind, id, doc string) error {
	return d.Collection(kind).Put(ctx, id, json.RawMessage(doc), storage.Upsert)
}

func testDocs(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	d := defsOf(t, s)
	all := func(kind promo.Kind) []storage.Doc {
		t.Helper()
		return must(d.Collection(kind).All(ctx))(t)
	}
	for _, id := range []string{"b", "a:1", "c", "a"} {
		mustDo(t, put(ctx, d, promo.KindOffer, id, `{"id":"`+id+`"}`))
	}
	mustDo(t, put(ctx, d, promo.KindRule, "a", `{"rule":true}`))
	mustDo(t, put(ctx, d, promo.KindOffer, "b", `{"id":"b","v":2}`))
	docs := all(promo.KindOffer)
	if ids := docIDs(docs); !slices.Equal(ids, []string{"a", "a:1", "b", "c"}) {
		t.Fatalf("offer ids = %v, want [a a:1 b c]", ids)
	}
	if string(docs[2].JSON) != `{"id":"b","v":2}` {
		t.Errorf("replaced doc = %s", docs[2].JSON)
	}
	rules := all(promo.KindRule)
	if len(rules) != 1 || string(rules[0].JSON) != `{"rule":true}` {
		t.Errorf("rules = %v, want the one rule (kinds are separate)", docIDs(rules))
	}
	if cs := all(promo.KindCampaign); len(cs) != 0 {
		t.Errorf("campaigns = %v, want none", docIDs(cs))
	}
	offers := d.Collection(promo.KindOffer)
	mustDo(t, offers.Delete(ctx, "a:1"))
	if err := offers.Delete(ctx, "a:1"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if err := d.Collection(promo.KindCampaign).Delete(ctx, "a"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Delete of another kind's id = %v, want ErrNotFound", err)
	}
	if ids := docIDs(all(promo.KindOffer)); !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Errorf("offer ids after delete = %v", ids)
	}
}

func testDocsModes(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	rules := defsOf(t, s).Collection(promo.KindRule)
	if err := rules.Put(ctx, "r", json.RawMessage(`{"v":1}`), storage.Replace); !errors.Is(err, errs.NotFound) {
		t.Errorf("replace of a missing rule = %v, want NotFound", err)
	}
	mustDo(t, rules.Put(ctx, "r", json.RawMessage(`{"v":1}`), storage.Create))
	if err := rules.Put(ctx, "r", json.RawMessage(`{"v":2}`), storage.Create); !errors.Is(err, errs.Conflict) {
		t.Errorf("create of an existing rule = %v, want Conflict", err)
	}
	mustDo(t, rules.Put(ctx, "r", json.RawMessage(`{"v":3}`), storage.Replace))
	var got struct{ V int }
	mustDo(t, rules.Get(ctx, "r", &got))
	if got.V != 3 {
		t.Errorf("rule after create, failed create and replace = %+v, want v 3", got)
	}
}

func testDocsUpsertConcurrent(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	offers := defsOf(t, s).Collection(promo.KindOffer)
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range n {
		wg.Go(func() {
			c, err := offers.Upsert(ctx, "o", func(old []byte) (any, error) {
				return map[string]int{"writer": i}, nil
			})
			if err != nil {
				t.Error(err)
			}
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d of %d concurrent Upserts of a new offer created it, want exactly 1", created, n)
	}
}

func testDocsVersion(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	d := defsOf(t, s)
	vs := d.Versions()
	cur, _, err := vs.Poll(ctx)
	mustDo(t, err)
	vs.Mark(cur)
	step := func(what string, err error) {
		t.Helper()
		mustDo(t, err)
		cur, changed, err := vs.Poll(ctx)
		mustDo(t, err)
		if !changed {
			t.Errorf("versions after %s = %v, unchanged", what, cur)
		}
		vs.Mark(cur)
	}
	step("put", put(ctx, d, promo.KindOffer, "o", `{}`))
	step("replace", put(ctx, d, promo.KindOffer, "o", `{"x":1}`))
	step("put rule", put(ctx, d, promo.KindRule, "r", `{}`))
	step("put campaign", put(ctx, d, promo.KindCampaign, "c", `{}`))
	step("delete", d.Collection(promo.KindOffer).Delete(ctx, "o"))
	if cur, changed, err := vs.Poll(ctx); err != nil || changed {
		t.Errorf("versions changed without a write: %v, %v", cur, err)
	}
}

func testCounts(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	if oc := must(s.OfferCounts(ctx))(t); len(oc.Stats) != 0 || len(oc.Factors) != 0 {
		t.Fatalf("empty store has counts %+v", oc)
	}
	k := 64
	d1, d2 := make([]float32, k), make([]float32, k)
	for i := range k {
		d1[i] = float32(i) * 0.125
		d2[i] = -float32(i) * 0.0625
	}
	mustDo(t, s.AddOfferCounts(ctx, promo.Counts{Now: base,
		Stats:   map[string]promo.OfferStats{"o1": {Impressions: 3, Clicks: 1}, "o:2": {Conversions: 2}},
		Factors: map[string][]float32{"o1": d1},
	}))
	mustDo(t, s.AddOfferCounts(ctx, promo.Counts{Now: base,
		Stats:   map[string]promo.OfferStats{"o1": {Impressions: 2, Clicks: 1, Conversions: 1}},
		Factors: map[string][]float32{"o1": d2, "o:2": d2},
	}))
	mustDo(t, s.AddOfferCounts(ctx, promo.Counts{Now: base})) // empty
	oc := must(s.OfferCounts(ctx))(t)
	want := map[string]promo.OfferStats{"o1": {Impressions: 5, Clicks: 2, Conversions: 1}, "o:2": {Conversions: 2}}
	if !reflect.DeepEqual(oc.Stats, want) {
		t.Errorf("stats = %+v, want %+v", oc.Stats, want)
	}
	for i := range k {
		if got, w := oc.Factors["o1"][i], d1[i]+d2[i]; got != w {
			t.Fatalf("o1 factor %d = %v, want %v", i, got, w)
		}
		if got := oc.Factors["o:2"][i]; got != d2[i] {
			t.Fatalf("o:2 factor %d = %v, want %v", i, got, d2[i])
		}
	}
	// A deleted offer's counters and factors go; the others' stay.
	mustDo(t, s.ForgetOfferCounts(ctx, "o1", k))
	oc = must(s.OfferCounts(ctx))(t)
	if _, ok := oc.Stats["o1"]; ok || oc.Factors["o1"] != nil || oc.Stats["o:2"] != want["o:2"] || len(oc.Factors["o:2"]) != k {
		t.Errorf("after ForgetOfferCounts(o1): stats %+v, factors of o1 %v, of o:2 %d", oc.Stats, oc.Factors["o1"], len(oc.Factors["o:2"]))
	}
}

func testCountsConcurrent(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	const workers, each = 8, 25
	var g errgroup.Group
	for range workers {
		g.Go(func() error {
			for range each {
				err := s.AddOfferCounts(ctx, promo.Counts{Now: base,
					Stats:   map[string]promo.OfferStats{"o": {Impressions: 2, Clicks: 1}},
					Factors: map[string][]float32{"o": {1, 0.5}},
					Caps:    []promo.CapIncrement{{Visitor: "v", Offer: "o", Period: time.Hour}},
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	oc := must(s.OfferCounts(ctx))(t)
	if st := oc.Stats["o"]; st.Impressions != 2*workers*each || st.Clicks != workers*each {
		t.Errorf("stats = %+v, want %d impressions, %d clicks", st, 2*workers*each, workers*each)
	}
	if f := oc.Factors["o"]; len(f) != 2 || f[0] != workers*each || f[1] != workers*each/2.0 {
		t.Errorf("factors = %v, want [%d %v]", f, workers*each, workers*each/2.0)
	}
	if caps := must(s.OfferCaps(ctx, "v", []string{"o"}, base))(t); caps[0] != workers*each {
		t.Errorf("cap count = %d, want %d", caps[0], workers*each)
	}
}

func testCaps(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	inc := func(at time.Time, visitor, offer string, period time.Duration) {
		t.Helper()
		mustDo(t, s.AddOfferCounts(ctx, promo.Counts{Now: at, Caps: []promo.CapIncrement{{Visitor: visitor, Offer: offer, Period: period}}}))
	}
	caps := func(at time.Time, visitor string, offers ...string) []int {
		t.Helper()
		return must(s.OfferCaps(ctx, visitor, offers, at))(t)
	}
	if got := caps(base, "v1", "a", "b"); !slices.Equal(got, []int{0, 0}) {
		t.Fatalf("caps of a new visitor = %v, want [0 0]", got)
	}
	inc(base, "v1", "a", time.Hour)
	inc(base.Add(10*time.Minute), "v1", "a", time.Hour)
	inc(base.Add(20*time.Minute), "v1", "b", 24*time.Hour)
	inc(base, "v2", "a", time.Hour)
	tests := []struct {
		at      time.Duration
		visitor string
		offers  []string
		want    []int
	}{
		{30 * time.Minute, "v1", []string{"b", "a", "zz"}, []int{1, 2, 0}},
		{59*time.Minute + 59*time.Second, "v1", []string{"a"}, []int{2}},
		{time.Hour, "v1", []string{"a", "b"}, []int{0, 1}}, // the window of a ends at base+1h
		{30 * time.Minute, "v2", []string{"a", "b"}, []int{1, 0}},
	}
	for _, tt := range tests {
		if got := caps(base.Add(tt.at), tt.visitor, tt.offers...); !slices.Equal(got, tt.want) {
			t.Errorf("OfferCaps(%s, %v) at +%v = %v, want %v", tt.visitor, tt.offers, tt.at, got, tt.want)
		}
	}
	// A new window starts with the first impression after the end.
	inc(base.Add(90*time.Minute), "v1", "a", time.Hour)
	if got := caps(base.Add(100*time.Minute), "v1", "a"); !slices.Equal(got, []int{1}) {
		t.Errorf("count in the new window = %v, want [1]", got)
	}
	if got := caps(base.Add(150*time.Minute), "v1", "a"); !slices.Equal(got, []int{0}) {
		t.Errorf("count after the new window = %v, want [0]", got)
	}
}

func testCooldown(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	try := func(at time.Duration, visitor, rule string, d time.Duration) (bool, time.Time) {
		t.Helper()
		return must2(s.TryRuleCooldown(ctx, visitor, rule, base.Add(at), d))(t)
	}
	if ok, until := try(0, "v1", "r1", time.Hour); !ok || !until.Equal(base.Add(time.Hour)) {
		t.Fatalf("first TryRuleCooldown = %v, %v; want true, %v", ok, until, base.Add(time.Hour))
	}
	if ok, until := try(30*time.Minute, "v1", "r1", time.Hour); ok || !until.Equal(base.Add(time.Hour)) {
		t.Errorf("TryRuleCooldown while running = %v, %v; want false, %v", ok, until, base.Add(time.Hour))
	}
	if ok, _ := try(30*time.Minute, "v1", "r2", time.Hour); !ok {
		t.Errorf("another rule of the visitor is cooling down")
	}
	if ok, _ := try(30*time.Minute, "v2", "r1", time.Hour); !ok {
		t.Errorf("another visitor is cooling down")
	}
	if ok, until := try(time.Hour, "v1", "r1", 2*time.Hour); !ok || !until.Equal(base.Add(3*time.Hour)) {
		t.Errorf("TryRuleCooldown at the end = %v, %v; want true, %v", ok, until, base.Add(3*time.Hour))
	}
	if ok, _ := try(0, "v3", "r1", 0); !ok {
		t.Errorf("zero cooldown refused")
	}
	if ok, _ := try(0, "v3", "r1", 0); !ok {
		t.Errorf("a zero cooldown is running")
	}
	// RuleCooldown reads without starting one.
	for _, c := range []struct {
		at            time.Duration
		visitor, rule string
		running       bool
	}{{2 * time.Hour, "v1", "r1", true}, {3 * time.Hour, "v1", "r1", false}, {0, "v9", "r1", false}, {0, "v9", "r1", false}} {
		until, running, err := s.RuleCooldown(ctx, c.visitor, c.rule, base.Add(c.at))
		if err != nil || running != c.running || (running && !until.Equal(base.Add(3*time.Hour))) {
			t.Errorf("RuleCooldown(%s, %s) at +%v = %v, %v, %v; want running %v", c.visitor, c.rule, c.at, until, running, err, c.running)
		}
	}
}

func testCooldownConcurrent(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	const n = 16
	var wg sync.WaitGroup
	wins := make(chan bool, n)
	for range n {
		wg.Go(func() {
			ok, _, err := s.TryRuleCooldown(ctx, "v", "r", base, time.Minute)
			if err != nil {
				t.Error(err)
			}
			wins <- ok
		})
	}
	wg.Wait()
	close(wins)
	won := 0
	for ok := range wins {
		if ok {
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent TryRuleCooldown calls won, want exactly 1", won, n)
	}
}

func samplePromotion(visitor string, at time.Time) promo.Promotion {
	return promo.Promotion{
		Visitor: visitor,
		Offer:   promo.OfferView{ID: "o1", Title: "10% off — ünïcode", Body: "Today only", Image: "https://cdn.example/a.png", Link: "https://shop.example/sale?a=1&b=2", Item: "sku-1"},
		Slot:    "exit", Token: "tok-" + visitor, Rule: "r1",
		Created: at, Expires: at.Add(10 * time.Minute),
	}
}

func testPromotionLog(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	if ps := must(s.Promotions(ctx, "nobody", 0, 10))(t); len(ps) != 0 {
		t.Fatalf("log of an unknown visitor = %+v", ps)
	}
	var all []promo.Promotion
	for i := range 8 {
		p := samplePromotion("v1", base.Add(time.Duration(i)*time.Second))
		p.Rule = "r" + strconv.Itoa(i)
		got := must(s.AppendPromotion(ctx, p, 5, time.Hour))(t)
		wantSeq := uint64(p.Created.UnixMicro())
		if got.Seq != wantSeq || got.ID != strconv.FormatUint(wantSeq, 10) {
			t.Fatalf("promotion %d: Seq %d ID %q, want %d", i, got.Seq, got.ID, wantSeq)
		}
		p.Seq, p.ID = got.Seq, got.ID
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("AppendPromotion returned %+v, want %+v", got, p)
		}
		all = append(all, got)
	}
	must(s.AppendPromotion(ctx, samplePromotion("v2", base), 5, time.Hour))(t)
	ps := must(s.Promotions(ctx, "v1", 0, 100))(t)
	if !reflect.DeepEqual(ps, all[3:]) {
		t.Fatalf("log (keep 5) = %v, want the newest 5 %v", seqs(ps), seqs(all[3:]))
	}
	if ps := must(s.Promotions(ctx, "v1", all[5].Seq, 100))(t); !reflect.DeepEqual(ps, all[6:]) {
		t.Errorf("after %d: %v, want %v", all[5].Seq, seqs(ps), seqs(all[6:]))
	}
	if ps := must(s.Promotions(ctx, "v1", all[3].Seq-1, 2))(t); !reflect.DeepEqual(ps, all[3:5]) {
		t.Errorf("limit 2: %v, want %v", seqs(ps), seqs(all[3:5]))
	}
	if ps := must(s.Promotions(ctx, "v1", all[7].Seq, 10))(t); len(ps) != 0 {
		t.Errorf("after the last: %v, want none", seqs(ps))
	}
	if ps := must(s.Promotions(ctx, "v2", 0, 10))(t); len(ps) != 1 || ps[0].Token != "tok-v2" {
		t.Errorf("v2's log = %+v", ps)
	}
}

func seqs(ps []promo.Promotion) []uint64 {
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = p.Seq
	}
	return out
}

func testPromotionSeq(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	a := must(s.AppendPromotion(ctx, samplePromotion("v", base), 10, time.Hour))(t)
	// Created at the same time, and earlier (a clock step back): Seq
	// still increases by one.
	b := must(s.AppendPromotion(ctx, samplePromotion("v", base), 10, time.Hour))(t)
	c := must(s.AppendPromotion(ctx, samplePromotion("v", base.Add(-time.Hour)), 10, time.Hour))(t)
	if b.Seq != a.Seq+1 || c.Seq != a.Seq+2 {
		t.Errorf("Seqs %d %d %d, want consecutive", a.Seq, b.Seq, c.Seq)
	}
	if !c.Created.Equal(base.Add(-time.Hour)) {
		t.Errorf("Created rewritten: %v", c.Created)
	}
}

func testPromotionConcurrent(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]bool{}
	for i := range n {
		wg.Go(func() {
			p := samplePromotion("v", base)
			p.Rule = fmt.Sprint(i)
			q, err := s.AppendPromotion(ctx, p, 100, time.Hour)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[q.Seq] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(got) != n {
		t.Errorf("%d distinct Seqs for %d concurrent appends", len(got), n)
	}
	ps := must(s.Promotions(ctx, "v", 0, 100))(t)
	if len(ps) != n || !slices.IsSortedFunc(ps, func(a, b promo.Promotion) int { return int(a.Seq - b.Seq) }) {
		t.Errorf("log has %d promotions (want %d), in order: %v", len(ps), n, seqs(ps))
	}
}

func testForget(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	for _, v := range []string{"v1", "v2"} {
		mustDo(t, s.AddOfferCounts(ctx, promo.Counts{Now: base, Caps: []promo.CapIncrement{{Visitor: v, Offer: "o", Period: time.Hour}}}))
		must2(s.TryRuleCooldown(ctx, v, "r", base, time.Hour))(t)
		must(s.AppendPromotion(ctx, samplePromotion(v, base), 10, time.Hour))(t)
	}
	mustDo(t, s.ForgetPromoVisitor(ctx, "v1"))
	mustDo(t, s.ForgetPromoVisitor(ctx, "never-seen"))
	if c := must(s.OfferCaps(ctx, "v1", []string{"o"}, base))(t); c[0] != 0 {
		t.Errorf("v1's cap survived: %v", c)
	}
	if ok, _ := must2(s.TryRuleCooldown(ctx, "v1", "r", base, time.Hour))(t); !ok {
		t.Errorf("v1's cooldown survived")
	}
	if ps := must(s.Promotions(ctx, "v1", 0, 10))(t); len(ps) != 0 {
		t.Errorf("v1's log survived: %v", seqs(ps))
	}
	if c := must(s.OfferCaps(ctx, "v2", []string{"o"}, base))(t); c[0] != 1 {
		t.Errorf("v2's cap = %v, want [1]", c)
	}
	if ok, _ := must2(s.TryRuleCooldown(ctx, "v2", "r", base, time.Hour))(t); ok {
		t.Errorf("v2's cooldown was erased")
	}
	if ps := must(s.Promotions(ctx, "v2", 0, 10))(t); len(ps) != 1 {
		t.Errorf("v2's log = %v, want one", seqs(ps))
	}
}

func testSecret(t *testing.T, s promo.Store) {
	ctx := ctxT(t)
	a := must(s.PromoSecret(ctx))(t)
	b := must(s.PromoSecret(ctx))(t)
	if len(a) < 16 || !slices.Equal(a, b) {
		t.Errorf("secrets %x and %x: want one of at least 16 bytes", a, b)
	}
	if slices.Equal(a, make([]byte, len(a))) {
		t.Errorf("secret is all zeros")
	}
}

func testCancelled(t *testing.T, s promo.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]error{
		"PutDefinition":   put(ctx, defsOf(t, s), promo.KindOffer, "o", `{}`),
		"AddOfferCounts":  s.AddOfferCounts(ctx, promo.Counts{Now: base, Stats: map[string]promo.OfferStats{"o": {Clicks: 1}}}),
		"ForgetVisitor":   s.ForgetPromoVisitor(ctx, "v"),
		"DocsVersion":     second(defsOf(t, s).Collection(promo.KindOffer).Version(ctx)),
		"OfferCounts":     second(s.OfferCounts(ctx)),
		"Promotions":      second(s.Promotions(ctx, "v", 0, 1)),
		"AppendPromotion": second(s.AppendPromotion(ctx, samplePromotion("v", base), 1, time.Hour)),
	}
	for name, err := range calls {
		if err == nil {
			t.Errorf("%s with a cancelled context succeeded", name)
		}
	}
	if oc, err := s.OfferCounts(t.Context()); err != nil || oc.Stats["o"].Clicks != 0 {
		t.Errorf("a cancelled AddOfferCounts counted: %+v, %v", oc.Stats, err)
	}
}

func second[T any](_ T, err error) error { return err }

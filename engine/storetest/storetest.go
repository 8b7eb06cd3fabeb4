// Package storetest is the contract test suite of the engine.Store port:
// every implementation (engine/redisstore, engine/embedded) runs it from
// its own tests, so both keep the same guarantees.
//
// Run checks, each in its own subtest on a fresh store:
//
//   - visitors: an unknown id loads as a Visitor with only ID set; Commit
//     appends history in order (within and across commits, and when a
//     visitor appears twice in one Commit), trims it to HistoryLimit by
//     dropping the oldest events, replaces factors only when the update's
//     factors are non-nil, and always replaces the session; every field
//     round-trips (times in UTC);
//   - de-duplication: Seen reports exactly the ids of successful Commits;
//     a Commit whose context is cancelled before it starts records nothing
//     (neither ids nor visitor changes);
//   - DeleteVisitor, then ErrNotFound; the catalog's CRUD, ErrNotFound and
//     ascending-id paging; ErrInvalid for malformed requests;
//   - ItemRows: dense rows from 0, stable across calls, and consistent
//     under concurrent callers; RowIDs in row order;
//   - item states: round trip, overwrite by row;
//   - concurrent Commits lose nothing;
//   - large values: a history of HistoryLimit events, 1000 item states of
//     64 factors;
//   - blobs: round trip, replace, ErrNotFound, names with '/' and dots,
//     an empty and an 8 MiB value;
//   - Ping, and Close twice.
//
// RunPersistence checks that everything acknowledged survives a Close and
// a new open on the same backing data (a directory, a Redis prefix).
//
// Stores given to the suite must be configured with the history limit
// HistoryLimit (the adapters' default) and a de-duplication window of at
// least a minute.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// HistoryLimit is the history limit the stores under test must have.
const HistoryLimit = 500

// Run runs the contract suite as subtests of t. open returns a new, empty
// store for each subtest and registers its Close with t.Cleanup (the
// suite may also close it: Close must be idempotent).
func Run(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store)
	}{
		{"UnknownVisitors", testUnknownVisitors},
		{"CommitAppendsHistoryInOrder", testHistoryOrder},
		{"HistoryTrimmedToLimit", testHistoryLimit},
		{"FactorsReplacedOnlyWhenNonNil", testFactors},
		{"SessionReplaced", testSession},
		{"SeenExactlyCommittedIDs", testSeen},
		{"SeenUnderTheirVisitors", testSeenUnderVisitors},
		{"CancelledCommitRecordsNothing", testCancelledCommit},
		{"InvalidCommit", testInvalidCommit},
		{"DeleteVisitor", testDeleteVisitor},
		{"ReplaceVisitor", testReplaceVisitor},
		{"CommitReplacesHistory", testCommitReplace},
		{"CommitRefusesLinkedVisitor", testCommitLinked},
		{"CatalogCRUD", func(t *testing.T, s engine.Store) { testCatalogCRUD(t, engine.ItemsOn(s)) }},
		{"CatalogPaging", func(t *testing.T, s engine.Store) { testCatalogPaging(t, engine.ItemsOn(s)) }},
		{"ItemRowsDenseAndStable", testItemRows},
		{"ItemRowsConcurrent", testItemRowsConcurrent},
		{"ItemStates", testItemStates},
		{"ConcurrentCommits", testConcurrentCommits},
		{"LargeValues", testLargeValues},
		{"Blobs", testBlobs},
		{"PingAndClose", testPingClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// RunCatalog runs the catalog checks of Run on a CatalogStore (such as
// engine.ItemStore) as subtests of t; open returns a new, empty one.
func RunCatalog(t *testing.T, open func(t *testing.T) engine.CatalogStore) {
	t.Run("CatalogCRUD", func(t *testing.T) { testCatalogCRUD(t, open(t)) })
	t.Run("CatalogPaging", func(t *testing.T) { testCatalogPaging(t, open(t)) })
}

// RunPersistence runs the persistence checks as subtests of t. newBacking
// creates new, empty backing data (and its cleanup) and returns a func
// that opens a store on it; the suite opens, writes, closes and opens
// again, one store at a time.
func RunPersistence(t *testing.T, newBacking func(t *testing.T) (open func(t *testing.T) engine.Store)) {
	t.Run("Reopen", func(t *testing.T) { testReopen(t, newBacking(t)) })
	t.Run("ReopenEmpty", func(t *testing.T) { testReopenEmpty(t, newBacking(t)) })
}

// ctxT returns a context bounded by the suite's timeout.
func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// base is the time of the suite's events: UTC with nanoseconds, so that
// the round trip of times is exact.
var base = time.Date(2025, 6, 1, 10, 0, 0, 123456789, time.UTC)

// Event returns a history event with every field set, derived from n.
func Event(prefix string, n int) engine.HistoryEvent {
	types := []signals.Type{signals.TypeView, signals.TypeClick, signals.TypeDwell, signals.TypeLike, signals.TypeConversion, "custom"}
	e := engine.HistoryEvent{
		ID:     fmt.Sprintf("%s-e%d", prefix, n),
		Type:   types[n%len(types)],
		Item:   fmt.Sprintf("item-%d", n%37),
		Page:   fmt.Sprintf("https://shop.example/p/%d?q=ü", n),
		Weight: float32(n%5) * 0.5,
		Value:  float64(n) * -1.25,
		Time:   base.Add(time.Duration(n) * time.Second),
	}
	if n%3 == 0 {
		e.Offer = fmt.Sprintf("offer-%d", n%4)
	}
	if n%4 == 1 {
		e.Device = fmt.Sprintf("device-%d", n%3)
	}
	return e
}

// Events returns the events Event(prefix, from) … Event(prefix, to-1).
func Events(prefix string, from, to int) []engine.HistoryEvent {
	out := make([]engine.HistoryEvent, 0, to-from)
	for n := from; n < to; n++ {
		out = append(out, Event(prefix, n))
	}
	return out
}

// MarkVisitor is the visitor of the marks of Marks.
const MarkVisitor = "marks"

// Marks returns de-duplication marks of ids under MarkVisitor.
func Marks(ids ...string) []engine.EventRef {
	return MarksOf(MarkVisitor, ids...)
}

// MarksOf returns de-duplication marks of ids under visitor.
func MarksOf(visitor string, ids ...string) []engine.EventRef {
	out := make([]engine.EventRef, len(ids))
	for i, id := range ids {
		out[i] = engine.EventRef{Visitor: visitor, ID: id}
	}
	return out
}

// Factors returns k deterministic factors derived from seed.
func Factors(seed uint64, k int) []float32 {
	r := rand.New(rand.NewPCG(seed, 42))
	f := make([]float32, k)
	for i := range f {
		f[i] = float32(r.NormFloat64())
	}
	return f
}

// Unique returns s with a random suffix, for ids that must not collide
// with those of other tests sharing a backing store.
func Unique(s string) string {
	return fmt.Sprintf("%s-%08x", s, rand.Uint32())
}

func mustCommit(t *testing.T, s engine.Store, c engine.Commit) {
	t.Helper()
	if err := s.Commit(ctxT(t), c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func mustVisitors(t *testing.T, s engine.Store, ids ...string) []engine.Visitor {
	t.Helper()
	vs, err := s.Visitors(ctxT(t), ids)
	if err != nil {
		t.Fatalf("Visitors: %v", err)
	}
	if len(vs) != len(ids) {
		t.Fatalf("Visitors(%d ids) returned %d visitors", len(ids), len(vs))
	}
	for i, v := range vs {
		if v.ID != ids[i] {
			t.Fatalf("Visitors: visitor %d has ID %q, want %q", i, v.ID, ids[i])
		}
	}
	return vs
}

func mustVisitor(t *testing.T, s engine.Store, id string) engine.Visitor {
	t.Helper()
	return mustVisitors(t, s, id)[0]
}

func mustSeen(t *testing.T, s engine.Store, ids ...string) []bool {
	t.Helper()
	seen, err := s.Seen(ctxT(t), Marks(ids...))
	if err != nil {
		t.Fatalf("Seen: %v", err)
	}
	if len(seen) != len(ids) {
		t.Fatalf("Seen(%d ids) returned %d answers", len(ids), len(seen))
	}
	return seen
}

// seenOf reports whether the event id is seen under visitor.
func seenOf(t *testing.T, s engine.Store, visitor, id string) bool {
	t.Helper()
	seen, err := s.Seen(ctxT(t), MarksOf(visitor, id))
	if err != nil || len(seen) != 1 {
		t.Fatalf("Seen(%s/%s): %v, %d answers", visitor, id, err, len(seen))
	}
	return seen[0]
}

// equal compares got and want with reflect.DeepEqual and fails with both
// when they differ.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, short(got), short(want))
	}
}

// equalSlices is equal, except that nil and empty slices are equal.
func equalSlices[E any](t *testing.T, what string, got, want []E) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	equal(t, what, got, want)
}

func short(v any) string {
	s := fmt.Sprintf("%+v", v)
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}

func wantHistory(t *testing.T, v engine.Visitor, want []engine.HistoryEvent) {
	t.Helper()
	if len(v.History) != len(want) {
		t.Fatalf("visitor %s: history has %d events, want %d", v.ID, len(v.History), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(v.History[i], want[i]) {
			t.Fatalf("visitor %s: history[%d]:\n got %+v\nwant %+v", v.ID, i, v.History[i], want[i])
		}
	}
}

func testUnknownVisitors(t *testing.T, s engine.Store) {
	vs := mustVisitors(t, s, "nobody", "nobody-else", "nobody")
	for _, v := range vs {
		equal(t, "unknown visitor", v, engine.Visitor{ID: v.ID})
	}
	vs = mustVisitors(t, s)
	if len(vs) != 0 {
		t.Fatalf("Visitors(no ids) = %v", vs)
	}
}

func testHistoryOrder(t *testing.T, s engine.Store) {
	// Two visitors, interleaved over three commits; v1 twice in the second.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "v1", Append: Events("a", 0, 3)},
		{ID: "v2", Append: Events("b", 0, 1)},
	}})
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "v1", Append: Events("a", 3, 5)},
		{ID: "v2", Append: Events("b", 1, 4)},
		{ID: "v1", Append: Events("a", 5, 6)},
	}})
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "v3"}, // nothing appended: the visitor exists with an empty history
		{ID: "v1", Append: Events("a", 6, 10)},
	}})
	vs := mustVisitors(t, s, "v2", "v1", "v3", "v0")
	wantHistory(t, vs[0], Events("b", 0, 4))
	wantHistory(t, vs[1], Events("a", 0, 10))
	wantHistory(t, vs[2], nil)
	equal(t, "v0", vs[3], engine.Visitor{ID: "v0"})
	if vs[1].Factors != nil {
		t.Fatalf("v1 has factors %v without ever committing any", vs[1].Factors)
	}
}

func testHistoryLimit(t *testing.T, s engine.Store) {
	// 3 commits of 200: the last 500 of 600 events remain.
	for i := range 3 {
		mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
			{ID: "long", Append: Events("l", 200*i, 200*(i+1))},
		}})
	}
	wantHistory(t, mustVisitor(t, s, "long"), Events("l", 600-HistoryLimit, 600))
	// One commit larger than the limit keeps its newest events.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "burst", Append: Events("b", 0, HistoryLimit+7)},
	}})
	wantHistory(t, mustVisitor(t, s, "burst"), Events("b", 7, HistoryLimit+7))
	// The same visitor twice in one commit, together over the limit.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "twice", Append: Events("t", 0, 300)},
		{ID: "twice", Append: Events("t", 300, 600)},
	}})
	wantHistory(t, mustVisitor(t, s, "twice"), Events("t", 100, 600))
}

func testCommitReplace(t *testing.T, s engine.Store) {
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "rep", Append: Events("a", 0, 5), Factors: Factors(1, 8)}}})
	// Replace makes Append the whole history; nil factors keep the stored.
	mustCommit(t, s, engine.Commit{Events: MarksOf("rep", "rep-m1"), Visitors: []engine.VisitorUpdate{
		{ID: "rep", Append: append(Events("a", 0, 2), Events("b", 0, 1)...), Replace: true},
	}})
	v := mustVisitor(t, s, "rep")
	wantHistory(t, v, append(Events("a", 0, 2), Events("b", 0, 1)...))
	equalSlices(t, "factors after a replace without factors", v.Factors, Factors(1, 8))
	equal(t, "seen after a replace", seenOf(t, s, "rep", "rep-m1"), true)
	// Appends after a replace in the same commit follow it; a replace
	// after an append in the same commit discards the append.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "rep", Append: Events("c", 0, 3)},
		{ID: "rep", Append: Events("d", 0, 2), Replace: true},
		{ID: "rep", Append: Events("e", 0, 1)},
	}})
	wantHistory(t, mustVisitor(t, s, "rep"), append(Events("d", 0, 2), Events("e", 0, 1)...))
	// A replace longer than the limit keeps its newest events, and later
	// appends count from there.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "rep", Append: Events("f", 0, HistoryLimit+9), Replace: true}}})
	wantHistory(t, mustVisitor(t, s, "rep"), Events("f", 9, HistoryLimit+9))
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "rep", Append: Events("g", 0, HistoryLimit/2)}}})
	wantHistory(t, mustVisitor(t, s, "rep"), append(Events("f", 9+HistoryLimit/2, HistoryLimit+9), Events("g", 0, HistoryLimit/2)...))
	// An empty replace empties the history.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "rep", Replace: true}}})
	wantHistory(t, mustVisitor(t, s, "rep"), nil)
}

func testCommitLinked(t *testing.T, s engine.Store) {
	ctx := ctxT(t)
	anon, user := Unique("anon"), Unique("u")
	mustCommit(t, s, engine.Commit{Events: MarksOf(anon, "lk-1"), Visitors: []engine.VisitorUpdate{{ID: anon, Append: Events("lk", 0, 1)}}})
	if err := s.Link(ctx, anon, user); err != nil {
		t.Fatal(err)
	}
	err := s.Commit(ctx, engine.Commit{Events: MarksOf(anon, "lk-2"), Visitors: []engine.VisitorUpdate{{ID: anon, Append: Events("lk", 1, 2)}}})
	if !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("commit to a linked anonymous visitor: err %v, want ErrConflict", err)
	}
	wantHistory(t, mustVisitor(t, s, anon), Events("lk", 0, 1))
	equal(t, "seen of the refused commit's event", seenOf(t, s, anon, "lk-2"), false)
	// The user's state and marks-only commits are not refused.
	mustCommit(t, s, engine.Commit{Events: MarksOf(engine.UserKey(user), "lk-3"),
		Visitors: []engine.VisitorUpdate{{ID: engine.UserKey(user), Append: Events("lk", 2, 3)}}})
	mustCommit(t, s, engine.Commit{Events: MarksOf(anon, "lk-4")})
	equal(t, "seen of a marks-only commit", seenOf(t, s, anon, "lk-4"), true)
	wantHistory(t, mustVisitor(t, s, engine.UserKey(user)), Events("lk", 2, 3))
	// After the link is gone, the visitor's state takes commits again.
	if err := s.UnlinkDevice(ctx, anon); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: anon, Append: Events("lk", 4, 5)}}})
	wantHistory(t, mustVisitor(t, s, anon), append(Events("lk", 0, 1), Events("lk", 4, 5)...))
}

func testFactors(t *testing.T, s engine.Store) {
	f1, f2 := Factors(1, 64), Factors(2, 8)
	steps := []struct {
		name    string
		factors []float32
		want    []float32
	}{
		{"first factors", f1, f1},
		{"nil keeps", nil, f1},
		{"replace with another length", f2, f2},
		{"nil keeps again", nil, f2},
	}
	for i, st := range steps {
		mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
			{ID: "fv", Append: Events("f", i, i+1), Factors: st.factors},
		}})
		equal(t, st.name, mustVisitor(t, s, "fv").Factors, st.want)
	}
	// A factors-only update (the engine's refold) keeps the history.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "fv", Factors: f1}}})
	v := mustVisitor(t, s, "fv")
	equal(t, "factors of a factors-only update", v.Factors, f1)
	wantHistory(t, v, Events("f", 0, len(steps)))
	// Within one commit the last non-nil factors win.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "fw", Factors: f2},
		{ID: "fw", Factors: f1},
		{ID: "fw"},
	}})
	equal(t, "last non-nil factors of a commit", mustVisitor(t, s, "fw").Factors, f1)
}

func testSession(t *testing.T, s engine.Store) {
	s1 := engine.Session{ID: "s1", Start: base, Last: base.Add(time.Minute), Events: 3}
	s2 := engine.Session{ID: "s2", Start: base.Add(time.Hour), Last: base.Add(time.Hour + time.Nanosecond), Events: 1}
	for _, st := range []struct {
		name string
		s    engine.Session
	}{{"first", s1}, {"replaced", s2}, {"replaced by zero", engine.Session{}}, {"again", s1}} {
		mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "sv", Session: st.s}}})
		equal(t, "session "+st.name, mustVisitor(t, s, "sv").Session, st.s)
	}
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "sw", Session: s1}, {ID: "sw", Session: s2}}})
	equal(t, "last session of a commit", mustVisitor(t, s, "sw").Session, s2)
}

func testSeen(t *testing.T, s engine.Store) {
	equal(t, "Seen(no ids)", len(mustSeen(t, s)), 0)
	equal(t, "Seen before any commit", mustSeen(t, s, "e1", "e2"), []bool{false, false})
	// A commit with only event ids (events that taught nothing).
	mustCommit(t, s, engine.Commit{Events: Marks("e1", "e3")})
	mustCommit(t, s, engine.Commit{Events: Marks("e4"), Visitors: []engine.VisitorUpdate{
		{ID: "v", Append: Events("x", 0, 1)},
	}})
	// Committing an id again is harmless.
	mustCommit(t, s, engine.Commit{Events: Marks("e3", "e3")})
	equal(t, "Seen", mustSeen(t, s, "e0", "e1", "e2", "e3", "e4", "e1", "E1", ""),
		[]bool{false, true, false, true, true, true, false, false})
	// Many ids in one commit.
	var ids []string
	for i := range 1000 {
		ids = append(ids, fmt.Sprintf("bulk-%d", i))
	}
	mustCommit(t, s, engine.Commit{Events: Marks(ids[:500]...)})
	seen := mustSeen(t, s, ids...)
	for i, b := range seen {
		if b != (i < 500) {
			t.Fatalf("Seen(%s) = %v, want %v", ids[i], b, i < 500)
		}
	}
}

// testSeenUnderVisitors commits marks under the visitors their events
// changed (as the engine does), many visitors in one commit, with ids and
// visitors that hold hash-tag characters, and finds exactly them.
func testSeenUnderVisitors(t *testing.T, s engine.Store) {
	var c engine.Commit
	var refs []engine.EventRef
	visitors := []string{"a", "u:bob", "{x}", "}y{", "a}b", "v-42"}
	for i := range 60 {
		v := visitors[i%len(visitors)] + fmt.Sprint(i/len(visitors))
		evs := Events(v, 0, 2)
		c.Visitors = append(c.Visitors, engine.VisitorUpdate{ID: v, Append: evs, Session: engine.Session{ID: "s", Events: 2}})
		for _, e := range evs {
			c.Events = append(c.Events, engine.EventRef{Visitor: v, ID: e.ID})
		}
		refs = append(refs, c.Events[len(c.Events)-2:]...)
		refs = append(refs, engine.EventRef{Visitor: v, ID: "never-" + v})
	}
	mustCommit(t, s, c)
	seen, err := s.Seen(ctxT(t), refs)
	if err != nil {
		t.Fatalf("Seen: %v", err)
	}
	for i, b := range seen {
		if want := !strings.HasPrefix(refs[i].ID, "never-"); b != want {
			t.Fatalf("Seen(%+v) = %v, want %v", refs[i], b, want)
		}
	}
	for _, u := range c.Visitors {
		wantHistory(t, mustVisitor(t, s, u.ID), u.Append)
	}
	// An id is de-duplicated per visitor: another visitor's event with
	// the same id is not seen (both are applied).
	other, err := s.Seen(ctxT(t), []engine.EventRef{{Visitor: "someone-else", ID: c.Events[0].ID}})
	if err != nil || other[0] {
		t.Fatalf("Seen of %q under another visitor = %v, %v; want false", c.Events[0].ID, other, err)
	}
}

func testCancelledCommit(t *testing.T, s engine.Store) {
	mustCommit(t, s, engine.Commit{Events: Marks("before"), Visitors: []engine.VisitorUpdate{
		{ID: "cv", Append: Events("c", 0, 2), Factors: Factors(3, 4), Session: engine.Session{ID: "s"}},
	}})
	before := mustVisitor(t, s, "cv")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Commit(ctx, engine.Commit{Events: Marks("during-1", "during-2"), Visitors: []engine.VisitorUpdate{
		{ID: "cv", Append: Events("c", 2, 4), Factors: Factors(4, 4), Session: engine.Session{ID: "s2"}},
		{ID: "cw", Append: Events("w", 0, 1)},
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context: err %v, want context.Canceled", err)
	}
	equal(t, "visitor after a cancelled commit", mustVisitor(t, s, "cv"), before)
	equal(t, "new visitor of a cancelled commit", mustVisitor(t, s, "cw"), engine.Visitor{ID: "cw"})
	equal(t, "ids of a cancelled commit", mustSeen(t, s, "before", "during-1", "during-2"), []bool{true, false, false})
}

func testInvalidCommit(t *testing.T, s engine.Store) {
	for _, c := range []engine.Commit{
		{Events: Marks("ok-id"), Visitors: []engine.VisitorUpdate{{ID: "", Append: Events("i", 0, 1)}}},
	} {
		if err := s.Commit(ctxT(t), c); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("Commit with an empty visitor id: err %v, want ErrInvalid", err)
		}
	}
	equal(t, "ids of an invalid commit", mustSeen(t, s, "ok-id"), []bool{false})
	// An empty commit is valid and does nothing.
	mustCommit(t, s, engine.Commit{})
}

func testDeleteVisitor(t *testing.T, s engine.Store) {
	if err := s.DeleteVisitor(ctxT(t), "ghost"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("DeleteVisitor(unknown): err %v, want ErrNotFound", err)
	}
	mustCommit(t, s, engine.Commit{Events: Marks("d1"), Visitors: []engine.VisitorUpdate{
		{ID: "dv", Append: Events("d", 0, 3), Factors: Factors(5, 16), Session: engine.Session{ID: "s", Events: 3}},
		{ID: "keep", Append: Events("k", 0, 1)},
	}})
	if err := s.DeleteVisitor(ctxT(t), "dv"); err != nil {
		t.Fatalf("DeleteVisitor: %v", err)
	}
	equal(t, "deleted visitor", mustVisitor(t, s, "dv"), engine.Visitor{ID: "dv"})
	if err := s.DeleteVisitor(ctxT(t), "dv"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("DeleteVisitor twice: err %v, want ErrNotFound", err)
	}
	wantHistory(t, mustVisitor(t, s, "keep"), Events("k", 0, 1))
	// A deleted visitor starts afresh.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "dv", Append: Events("d", 10, 11)}}})
	v := mustVisitor(t, s, "dv")
	wantHistory(t, v, Events("d", 10, 11))
	if v.Factors != nil || v.Session != (engine.Session{}) {
		t.Fatalf("recreated visitor kept old state: %+v", v)
	}
	// Even a visitor with only factors or only a session can be deleted.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "fonly", Factors: Factors(6, 2)}}})
	if err := s.DeleteVisitor(ctxT(t), "fonly"); err != nil {
		t.Fatalf("DeleteVisitor(factors only): %v", err)
	}
}

func testReplaceVisitor(t *testing.T, s engine.Store) {
	sess := engine.Session{ID: "s2", Start: base, Last: base.Add(time.Minute), Events: 2}
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{
		{ID: "rv", Append: Events("r", 0, 6), Factors: Factors(1, 8), Session: engine.Session{ID: "s1", Events: 6}},
	}})
	kept := append(Events("r", 0, 2), Events("r", 4, 6)...)
	if err := s.ReplaceVisitor(ctxT(t), engine.Visitor{ID: "rv", History: kept, Factors: Factors(2, 8), Session: sess}); err != nil {
		t.Fatalf("ReplaceVisitor: %v", err)
	}
	equal(t, "replaced visitor", mustVisitor(t, s, "rv"), engine.Visitor{ID: "rv", History: kept, Factors: Factors(2, 8), Session: sess})
	// Later commits append to the replaced history.
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "rv", Append: Events("r", 9, 10), Session: sess}}})
	wantHistory(t, mustVisitor(t, s, "rv"), append(slices.Clone(kept), Events("r", 9, 10)...))
	// Replacing with no factors and no history leaves only the session.
	if err := s.ReplaceVisitor(ctxT(t), engine.Visitor{ID: "rv", Session: sess}); err != nil {
		t.Fatalf("ReplaceVisitor(empty): %v", err)
	}
	equal(t, "emptied visitor", mustVisitor(t, s, "rv"), engine.Visitor{ID: "rv", Session: sess})
	// A history longer than the limit keeps its newest events.
	long := Events("l", 0, HistoryLimit+7)
	if err := s.ReplaceVisitor(ctxT(t), engine.Visitor{ID: "rl", History: long}); err != nil {
		t.Fatalf("ReplaceVisitor(long): %v", err)
	}
	wantHistory(t, mustVisitor(t, s, "rl"), long[7:])
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "rl", Append: Events("l", 1000, 1001)}}})
	wantHistory(t, mustVisitor(t, s, "rl"), append(slices.Clone(long[8:]), Events("l", 1000, 1001)...))
	if err := s.ReplaceVisitor(ctxT(t), engine.Visitor{}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("ReplaceVisitor(no id): err %v, want ErrInvalid", err)
	}
}

// Item returns a catalog item with every field set, derived from id.
func Item(id string, n int) engine.Item {
	return engine.Item{
		ID:       id,
		Title:    fmt.Sprintf("Title «%d»", n),
		Category: fmt.Sprintf("cat-%d", n%3),
		Tags:     []string{"t1", fmt.Sprintf("t%d", n)},
		Attrs:    map[string]string{"color": "red", "n": fmt.Sprint(n)},
		Active:   n%2 == 0,
		Created:  base.Add(time.Duration(n) * time.Hour),
		Updated:  base.Add(time.Duration(n)*time.Hour + time.Millisecond),
	}
}

func testCatalogCRUD(t *testing.T, s engine.CatalogStore) {
	ctx := ctxT(t)
	if _, err := s.Item(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Item(unknown): err %v, want ErrNotFound", err)
	}
	if err := s.DeleteItem(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("DeleteItem(unknown): err %v, want ErrNotFound", err)
	}
	it := Item("sku-1", 1)
	bare := engine.Item{ID: "bare"}
	for _, x := range []engine.Item{it, bare} {
		if err := s.PutItem(ctx, x); err != nil {
			t.Fatalf("PutItem(%s): %v", x.ID, err)
		}
		got, err := s.Item(ctx, x.ID)
		if err != nil {
			t.Fatalf("Item(%s): %v", x.ID, err)
		}
		equal(t, "item round trip", got, x)
	}
	it2 := Item("sku-1", 2)
	it2.Tags, it2.Attrs = nil, nil
	if err := s.PutItem(ctx, it2); err != nil {
		t.Fatal(err)
	}
	got, err := s.Item(ctx, "sku-1")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "replaced item", got, it2)
	if err := s.DeleteItem(ctx, "sku-1"); err != nil {
		t.Fatalf("DeleteItem: %v", err)
	}
	if _, err := s.Item(ctx, "sku-1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Item(deleted): err %v, want ErrNotFound", err)
	}
	if err := s.DeleteItem(ctx, "sku-1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("DeleteItem twice: err %v, want ErrNotFound", err)
	}
	items, err := s.Items(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "items after deletes", items, []engine.Item{bare})
	if err := s.PutItem(ctx, engine.Item{Title: "no id"}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("PutItem(no id): err %v, want ErrInvalid", err)
	}
	if _, err := s.Items(ctx, "", 0); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("Items(limit 0): err %v, want ErrInvalid", err)
	}
}

func testCatalogPaging(t *testing.T, s engine.CatalogStore) {
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(7, 7))
	var ids []string
	for i := range 53 {
		// Varied lengths and bytes, including ids that are prefixes of others.
		id := fmt.Sprintf("i%d", r.IntN(1000))
		if i%5 == 0 {
			id += "/é"
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	ids = append(ids, "i", "i1", "i10", "I", "0", "~")
	for i, id := range ids {
		if err := s.PutItem(ctx, Item(id, i)); err != nil {
			t.Fatal(err)
		}
	}
	want := slices.Clone(ids)
	sort.Strings(want)
	for _, limit := range []int{1, 7, len(ids), len(ids) + 5} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(ids)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := s.Items(ctx, after, limit)
			if err != nil {
				t.Fatalf("Items(%q, %d): %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("Items(%q, %d) returned %d items", after, limit, len(page))
			}
			for _, it := range page {
				got = append(got, it.ID)
				if want := Item(it.ID, slices.Index(ids, it.ID)); !reflect.DeepEqual(it, want) {
					t.Fatalf("paged item %+v, want %+v", it, want)
				}
			}
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].ID
		}
		equal(t, fmt.Sprintf("ids paged by %d", limit), got, want)
	}
	// after need not be an existing id.
	page, err := s.Items(ctx, "i1", 3)
	if err != nil {
		t.Fatal(err)
	}
	var wantAfter []string
	for _, id := range want {
		if id > "i1" && len(wantAfter) < 3 {
			wantAfter = append(wantAfter, id)
		}
	}
	var gotAfter []string
	for _, it := range page {
		gotAfter = append(gotAfter, it.ID)
	}
	equal(t, "Items(after i1)", gotAfter, wantAfter)
	page, err = s.Items(ctx, "~~", 3)
	if err != nil || len(page) != 0 {
		t.Fatalf("Items(after the last) = %v, %v; want none", page, err)
	}
}

func mustItemRows(t *testing.T, s engine.Store, ids ...string) []int32 {
	t.Helper()
	rows, err := s.ItemRows(ctxT(t), ids)
	if err != nil {
		t.Fatalf("ItemRows: %v", err)
	}
	if len(rows) != len(ids) {
		t.Fatalf("ItemRows(%d ids) returned %d rows", len(ids), len(rows))
	}
	return rows
}

func mustRowIDs(t *testing.T, s engine.Store) []string {
	t.Helper()
	ids, err := s.RowIDs(ctxT(t))
	if err != nil {
		t.Fatalf("RowIDs: %v", err)
	}
	return ids
}

func testItemRows(t *testing.T, s engine.Store) {
	equal(t, "RowIDs of an empty store", len(mustRowIDs(t, s)), 0)
	equal(t, "ItemRows(no ids)", len(mustItemRows(t, s)), 0)
	equal(t, "first rows", mustItemRows(t, s, "a", "b", "c"), []int32{0, 1, 2})
	equal(t, "mixed", mustItemRows(t, s, "c", "d", "a", "d", "e"), []int32{2, 3, 0, 3, 4})
	equal(t, "stable", mustItemRows(t, s, "e", "d", "c", "b", "a"), []int32{4, 3, 2, 1, 0})
	equal(t, "RowIDs", mustRowIDs(t, s), []string{"a", "b", "c", "d", "e"})
	if _, err := s.ItemRows(ctxT(t), []string{"f", ""}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("ItemRows with an empty id: err %v, want ErrInvalid", err)
	}
	equal(t, "RowIDs after an invalid call", mustRowIDs(t, s), []string{"a", "b", "c", "d", "e"})
}

func testItemRowsConcurrent(t *testing.T, s engine.Store) {
	const workers, calls, universe = 8, 20, 300
	results := make([]map[string]int32, workers)
	var g errgroup.Group
	for w := range workers {
		results[w] = map[string]int32{}
		g.Go(func() error {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for range calls {
				ids := make([]string, 1+r.IntN(40))
				for i := range ids {
					ids[i] = fmt.Sprintf("item-%d", r.IntN(universe))
				}
				rows, err := s.ItemRows(context.Background(), ids)
				if err != nil {
					return err
				}
				for i, id := range ids {
					if prev, ok := results[w][id]; ok && prev != rows[i] {
						return fmt.Errorf("worker %d: %s got rows %d and %d", w, id, prev, rows[i])
					}
					results[w][id] = rows[i]
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	all := map[string]int32{}
	byRow := map[int32]string{}
	for _, res := range results {
		for id, row := range res {
			if prev, ok := all[id]; ok && prev != row {
				t.Fatalf("%s has rows %d and %d", id, prev, row)
			}
			if other, ok := byRow[row]; ok && other != id {
				t.Fatalf("row %d given to %s and %s", row, other, id)
			}
			all[id], byRow[row] = row, id
		}
	}
	ids := mustRowIDs(t, s)
	if len(ids) != len(all) {
		t.Fatalf("RowIDs has %d ids, %d were assigned", len(ids), len(all))
	}
	for row, id := range ids {
		if all[id] != int32(row) {
			t.Fatalf("RowIDs[%d] = %s, which was given row %d", row, id, all[id])
		}
	}
}

func sortStates(st []engine.ItemState) []engine.ItemState {
	st = slices.Clone(st)
	slices.SortFunc(st, func(a, b engine.ItemState) int { return int(a.Row) - int(b.Row) })
	return st
}

// mustItemStates returns ItemStates in row order, after checking that
// ScanItemStates gives the same states (each row once).
func mustItemStates(t *testing.T, s engine.Store) []engine.ItemState {
	t.Helper()
	st, err := s.ItemStates(ctxT(t))
	if err != nil {
		t.Fatalf("ItemStates: %v", err)
	}
	st = sortStates(st)
	var scanned []engine.ItemState
	err = s.ScanItemStates(ctxT(t), func(batch []engine.ItemState) error {
		for _, x := range batch {
			x.Factors, x.Curv = slices.Clone(x.Factors), slices.Clone(x.Curv)
			scanned = append(scanned, x)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanItemStates: %v", err)
	}
	equalSlices(t, "ScanItemStates (as ItemStates)", sortStates(scanned), st)
	stop := errors.New("stop")
	if err := s.ScanItemStates(ctxT(t), func([]engine.ItemState) error { return stop }); len(st) > 0 && !errors.Is(err, stop) {
		t.Fatalf("ScanItemStates whose fn fails: err %v, want fn's error", err)
	}
	return st
}

func testItemStates(t *testing.T, s engine.Store) {
	equal(t, "ItemStates of an empty store", len(mustItemStates(t, s)), 0)
	st := []engine.ItemState{
		{Row: 0, Factors: Factors(1, 4), Curv: Factors(2, 4), Count: 3},
		{Row: 2, Factors: Factors(3, 4), Count: 1},
		{Row: 1, Factors: Factors(4, 4), Curv: Factors(5, 2)},
	}
	if err := s.SaveItemStates(ctxT(t), st); err != nil {
		t.Fatalf("SaveItemStates: %v", err)
	}
	equal(t, "item states", mustItemStates(t, s), sortStates(st))
	upd := []engine.ItemState{{Row: 2, Factors: Factors(6, 8), Curv: Factors(7, 8), Count: 9}, {Row: 3, Count: 1}}
	if err := s.SaveItemStates(ctxT(t), upd); err != nil {
		t.Fatalf("SaveItemStates: %v", err)
	}
	equal(t, "overwritten item states", mustItemStates(t, s), []engine.ItemState{st[0], st[2], upd[0], upd[1]})
	if err := s.SaveItemStates(ctxT(t), nil); err != nil {
		t.Fatalf("SaveItemStates(nil): %v", err)
	}
	if err := s.SaveItemStates(ctxT(t), []engine.ItemState{{Row: 9}, {Row: -1}}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("SaveItemStates(row -1): err %v, want ErrInvalid", err)
	}
	equal(t, "item states after an invalid save", mustItemStates(t, s), []engine.ItemState{st[0], st[2], upd[0], upd[1]})
}

func testConcurrentCommits(t *testing.T, s engine.Store) {
	const workers, commits = 6, 15
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for c := range commits {
				err := s.Commit(context.Background(), engine.Commit{
					Events: Marks(fmt.Sprintf("cc-%d-%d", w, c)),
					Visitors: []engine.VisitorUpdate{
						{ID: fmt.Sprintf("own-%d", w), Append: Events(fmt.Sprintf("o%d", w), 2*c, 2*c+2)},
						{ID: "shared", Append: []engine.HistoryEvent{Event(fmt.Sprintf("s%d", w), c)}},
					},
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
	var ids []string
	for w := range workers {
		wantHistory(t, mustVisitor(t, s, fmt.Sprintf("own-%d", w)), Events(fmt.Sprintf("o%d", w), 0, 2*commits))
		for c := range commits {
			ids = append(ids, fmt.Sprintf("cc-%d-%d", w, c))
		}
	}
	for i, b := range mustSeen(t, s, ids...) {
		if !b {
			t.Fatalf("%s not seen", ids[i])
		}
	}
	// The shared visitor has every event once, each worker's in order.
	shared := mustVisitor(t, s, "shared").History
	if len(shared) != workers*commits {
		t.Fatalf("shared history has %d events, want %d", len(shared), workers*commits)
	}
	next := map[string]int{}
	for _, e := range shared {
		w := strings.SplitN(e.ID, "-", 2)[0]
		if want := Event(w, next[w]); !reflect.DeepEqual(e, want) {
			t.Fatalf("shared history: got %+v, want %+v", e, want)
		}
		next[w]++
	}
}

func testLargeValues(t *testing.T, s engine.Store) {
	hist := Events("big", 0, HistoryLimit)
	for i := range hist {
		hist[i].Page += strings.Repeat("/segment", 10)
	}
	f := Factors(11, 64)
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "big", Append: hist, Factors: f}}})
	v := mustVisitor(t, s, "big")
	wantHistory(t, v, hist)
	equal(t, "factors", v.Factors, f)

	states := make([]engine.ItemState, 1000)
	for i := range states {
		states[i] = engine.ItemState{Row: int32(i), Factors: Factors(uint64(i), 64), Curv: Factors(uint64(i)+5000, 64), Count: int32(i * 3)}
	}
	if err := s.SaveItemStates(ctxT(t), states); err != nil {
		t.Fatalf("SaveItemStates(1000): %v", err)
	}
	got := mustItemStates(t, s)
	if len(got) != len(states) {
		t.Fatalf("ItemStates returned %d states, want %d", len(got), len(states))
	}
	for i := range states {
		if !reflect.DeepEqual(got[i], states[i]) {
			t.Fatalf("state %d:\n got %+v\nwant %+v", i, got[i], states[i])
		}
	}
}

func testBlobs(t *testing.T, s engine.Store) {
	ctx := ctxT(t)
	if _, err := s.Blob(ctx, "engine/none"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Blob(unknown): err %v, want ErrNotFound", err)
	}
	big := make([]byte, 8<<20)
	r := rand.New(rand.NewPCG(3, 3))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	values := map[string][]byte{
		"engine/xtx":    []byte("first"),
		"..":            []byte("dots"),
		".hidden/../x":  []byte("path-like"),
		"model/huge":    big,
		"empty":         {},
		"spaces & é %2": {0, 1, 2},
	}
	for name, v := range values {
		if err := s.PutBlob(ctx, name, v); err != nil {
			t.Fatalf("PutBlob(%q): %v", name, err)
		}
	}
	if err := s.PutBlob(ctx, "engine/xtx", []byte("second")); err != nil {
		t.Fatal(err)
	}
	values["engine/xtx"] = []byte("second")
	// A large blob replaced by a larger one, and another by a small one
	// (a store may keep large blobs in parts).
	bigger := append(slices.Clone(big[:5<<20]), big...)
	for _, put := range []struct {
		name string
		v    []byte
	}{{"model/huge", bigger}, {"model/was-huge", big}, {"model/was-huge", []byte("now small")}} {
		if err := s.PutBlob(ctx, put.name, put.v); err != nil {
			t.Fatalf("PutBlob(%q): %v", put.name, err)
		}
	}
	values["model/huge"], values["model/was-huge"] = bigger, []byte("now small")
	for name, want := range values {
		got, err := s.Blob(ctx, name)
		if err != nil {
			t.Fatalf("Blob(%q): %v", name, err)
		}
		equalSlices(t, "blob "+name, got, want)
	}
	if err := s.PutBlob(ctx, "", []byte("x")); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("PutBlob(no name): err %v, want ErrInvalid", err)
	}
}

func testPingClose(t *testing.T, s engine.Store) {
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// fixture is what testReopen writes, then checks after each reopen.
type fixture struct {
	visitors map[string]engine.Visitor
	seen     []string
	unseen   []string
	items    []engine.Item
	rowIDs   []string
	states   []engine.ItemState
	blobs    map[string][]byte
}

func (f *fixture) check(t *testing.T, s engine.Store, when string) {
	t.Helper()
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range f.visitors {
			if !yield(id) {
				return
			}
		}
	})
	vs := mustVisitors(t, s, ids...)
	for i, id := range ids {
		equal(t, when+": visitor "+id, vs[i], f.visitors[id])
	}
	for i, b := range mustSeen(t, s, append(slices.Clone(f.seen), f.unseen...)...) {
		if b != (i < len(f.seen)) {
			t.Fatalf("%s: Seen[%d] = %v", when, i, b)
		}
	}
	items, err := engine.ItemsOn(s).Items(ctxT(t), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	equalSlices(t, when+": items", items, f.items)
	equalSlices(t, when+": row ids", mustRowIDs(t, s), f.rowIDs)
	equalSlices(t, when+": item states", mustItemStates(t, s), f.states)
	for name, want := range f.blobs {
		got, err := s.Blob(ctxT(t), name)
		if err != nil {
			t.Fatalf("%s: Blob(%q): %v", when, name, err)
		}
		equal(t, when+": blob "+name, got, want)
	}
}

func testReopen(t *testing.T, open func(t *testing.T) engine.Store) {
	s := open(t)
	ctx := ctxT(t)
	f := fixture{visitors: map[string]engine.Visitor{}}
	sess := engine.Session{ID: "sess", Start: base, Last: base.Add(time.Minute), Events: 4}
	mustCommit(t, s, engine.Commit{Events: Marks("p1", "p2"), Visitors: []engine.VisitorUpdate{
		{ID: "pa", Append: Events("pa", 0, 3), Factors: Factors(1, 32), Session: sess},
		{ID: "pb", Append: Events("pb", 0, 1)},
		{ID: "pgone", Append: Events("pg", 0, 1)},
	}})
	mustCommit(t, s, engine.Commit{Events: Marks("p3"), Visitors: []engine.VisitorUpdate{
		{ID: "pa", Append: Events("pa", 3, 4), Session: sess},
		{ID: "plong", Append: Events("pl", 0, HistoryLimit+10), Factors: Factors(2, 32)},
	}})
	if err := s.DeleteVisitor(ctx, "pgone"); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "prep", Append: Events("pr", 0, 5), Factors: Factors(3, 32)}}})
	if err := s.ReplaceVisitor(ctx, engine.Visitor{ID: "prep", History: Events("pr", 2, 4), Session: sess}); err != nil {
		t.Fatal(err)
	}
	f.visitors["prep"] = engine.Visitor{ID: "prep", History: Events("pr", 2, 4), Session: sess}
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "prepl", Append: Events("rp", 0, 4), Factors: Factors(4, 32)}}})
	mustCommit(t, s, engine.Commit{Visitors: []engine.VisitorUpdate{{ID: "prepl", Append: Events("rq", 0, 2), Replace: true, Session: sess}}})
	f.visitors["prepl"] = engine.Visitor{ID: "prepl", History: Events("rq", 0, 2), Factors: Factors(4, 32), Session: sess}
	f.visitors["pa"] = engine.Visitor{ID: "pa", History: Events("pa", 0, 4), Factors: Factors(1, 32), Session: sess}
	f.visitors["pb"] = engine.Visitor{ID: "pb", History: Events("pb", 0, 1)}
	f.visitors["plong"] = engine.Visitor{ID: "plong", History: Events("pl", 10, HistoryLimit+10), Factors: Factors(2, 32)}
	f.visitors["pgone"] = engine.Visitor{ID: "pgone"}
	f.seen = []string{"p1", "p2", "p3"}
	f.unseen = []string{"p4"}
	for i, id := range []string{"b", "a", "c"} {
		if err := engine.ItemsOn(s).PutItem(ctx, Item(id, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := engine.ItemsOn(s).DeleteItem(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	f.items = []engine.Item{Item("a", 1), Item("b", 0)}
	mustItemRows(t, s, "x", "y")
	mustItemRows(t, s, "z", "x")
	f.rowIDs = []string{"x", "y", "z"}
	f.states = []engine.ItemState{{Row: 0, Factors: Factors(5, 16), Curv: Factors(6, 16), Count: 2}, {Row: 1, Factors: Factors(7, 16), Count: 1}}
	if err := s.SaveItemStates(ctx, []engine.ItemState{{Row: 0, Count: 99}, f.states[1]}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveItemStates(ctx, f.states[:1]); err != nil {
		t.Fatal(err)
	}
	f.blobs = map[string][]byte{"engine/xtx": []byte("xtx-2"), "engine/trending": []byte(`{"a":1}`)}
	for _, b := range []struct{ name, v string }{{"engine/xtx", "xtx-1"}, {"engine/trending", `{"a":1}`}, {"engine/xtx", "xtx-2"}} {
		if err := s.PutBlob(ctx, b.name, []byte(b.v)); err != nil {
			t.Fatal(err)
		}
	}
	f.check(t, s, "before close")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t)
	f.check(t, s, "after reopen")
	// Writes after a reopen land on top of the reloaded state.
	mustCommit(t, s, engine.Commit{Events: Marks("p4"), Visitors: []engine.VisitorUpdate{
		{ID: "pb", Append: Events("pb", 1, 2), Factors: Factors(9, 32)},
	}})
	f.visitors["pb"] = engine.Visitor{ID: "pb", History: Events("pb", 0, 2), Factors: Factors(9, 32)}
	f.seen = append(f.seen, "p4")
	f.unseen = []string{"p5"}
	if err := engine.ItemsOn(s).DeleteItem(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	f.items = f.items[1:]
	equal(t, "rows after reopen", mustItemRows(t, s, "w", "y"), []int32{3, 1})
	f.rowIDs = append(f.rowIDs, "w")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t)
	f.check(t, s, "after second reopen")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func testReopenEmpty(t *testing.T, open func(t *testing.T) engine.Store) {
	s := open(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t)
	f := fixture{visitors: map[string]engine.Visitor{"x": {ID: "x"}}, unseen: []string{"e"}}
	f.check(t, s, "reopened empty store")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

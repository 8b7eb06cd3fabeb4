// Package experimentstest is the contract test suite of the
// experiments.Store port. RunBackend runs it on experiments.BackendStore
// (the store written once on the storage primitives) over a given
// storage.Backend — storagetest.Mem here, and the embedded and Redis
// backends — together with the checks of the atomic definition writes.
// Run runs it on any experiments.Store.
//
// Run checks, each in its own subtest on a fresh store:
//
//   - definitions: PutExperimentDoc creates and replaces, ExperimentDocs
//     lists in ascending id order, the version changes with every write,
//     DeleteExperiment removes the definition and every assignment, unit,
//     count, weight and look of that experiment only (engine.ErrNotFound
//     when there is no definition);
//   - assignments: AssignSubject sets once (later calls get the first
//     assignment, created false), every field round-trips (At at ms
//     precision), experiments are separate, UnassignSubject removes only
//     the named variant's; of concurrent callers exactly one creates;
//   - units: records round-trip (aliases, keys with ':' and spaces),
//     absent ones are zero; UpdateExperimentUnits applies writes and
//     count deltas (every field, revenue-square limbs included) together,
//     refuses a stale write with ErrStaleUnits and then applies nothing;
//     concurrent read-modify-write loops lose no update;
//   - weights: SetBanditWeights stores only the next version;
//   - looks: the first look at a time wins, looks come back in time order;
//   - ForgetExperimentSubjects removes those subjects' assignments and
//     units in every defined experiment, and nothing else;
//   - malformed updates fail with engine.ErrInvalid; a cancelled context
//     fails every call.
//
// RunPersistence checks that all of it survives a Close and a reopen.
package experimentstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/testutil"
)

// Run runs the contract suite as subtests of t. open returns a new, empty
// store for each subtest and registers its cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) experiments.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s experiments.Store)
	}{
		{"Docs", testDocs},
		{"DeleteCascades", testDeleteCascades},
		{"Assign", testAssign},
		{"AssignConcurrent", testAssignConcurrent},
		{"Units", testUnits},
		{"UnitsStale", testUnitsStale},
		{"UnitsConcurrent", testUnitsConcurrent},
		{"Weights", testWeights},
		{"Looks", testLooks},
		{"Forget", testForget},
		{"Invalid", testInvalid},
		{"Cancelled", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// Closer is a store that can be closed (for RunPersistence).
type Closer interface {
	experiments.Store
	io.Closer
}

var ctx = context.Background()

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ms is a time at millisecond precision.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

var base = time.Date(2026, 11, 23, 10, 0, 0, 123_000_000, time.UTC)

// SampleCounts returns counts with every field set (derived from n).
func SampleCounts(n int64) experiments.Counts {
	return experiments.Counts{N: n, Expected: 500_000 * n, Clicks: n / 2, Carts: n / 3, Conversions: n / 4, Revenue: 1999 * n,
		RevenueSq: [4]int64{n, 2 * n, 3 * n, 4 * n}}
}

func testDocs(t *testing.T, s experiments.Store) {
	v0 := must(s.ExperimentDocsVersion(ctx))(t)
	mustDo(t, s.PutExperimentDoc(ctx, "b", []byte(`{"id":"b"}`)))
	mustDo(t, s.PutExperimentDoc(ctx, "a", []byte(`{"id":"a"}`)))
	v1 := must(s.ExperimentDocsVersion(ctx))(t)
	mustDo(t, s.PutExperimentDoc(ctx, "a", []byte(`{"id":"a","name":"x"}`)))
	v2 := must(s.ExperimentDocsVersion(ctx))(t)
	if v1 == v0 || v2 == v1 {
		t.Errorf("versions %d, %d, %d: want a change with every write", v0, v1, v2)
	}
	docs := must(s.ExperimentDocs(ctx))(t)
	if len(docs) != 2 || docs[0].ID != "a" || docs[1].ID != "b" || string(docs[0].JSON) != `{"id":"a","name":"x"}` {
		t.Errorf("docs = %v", docs)
	}
	mustDo(t, s.DeleteExperiment(ctx, "a"))
	if v3 := must(s.ExperimentDocsVersion(ctx))(t); v3 == v2 {
		t.Errorf("version unchanged by a delete")
	}
	if err := s.DeleteExperiment(ctx, "a"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if docs := must(s.ExperimentDocs(ctx))(t); len(docs) != 1 || docs[0].ID != "b" {
		t.Errorf("docs after delete = %v", docs)
	}
}

// fill writes one of everything for experiment exp.
func fill(t *testing.T, s experiments.Store, exp string) {
	t.Helper()
	mustDo(t, s.PutExperimentDoc(ctx, exp, []byte(`{"id":"`+exp+`"}`)))
	if _, _, err := s.AssignSubject(ctx, exp, "a:v1", experiments.Assignment{Variant: "B", At: base, Propensity: 0.5}); err != nil {
		t.Fatal(err)
	}
	mustDo(t, s.UpdateExperimentUnits(ctx, experiments.Update{
		Units:  []experiments.UnitWrite{{UnitKey: experiments.UnitKey{Exp: exp, Key: "a:v1"}, New: experiments.Unit{Variant: "B", Exposed: ms(base), Propensity: 0.5}}},
		Counts: []experiments.CountDelta{{Exp: exp, Variant: "B", Counts: SampleCounts(3)}},
	}))
	if _, err := s.SetBanditWeights(ctx, exp, experiments.Weights{Version: 1, At: base, Weights: map[string]float64{"A": 0.3, "B": 0.7}}); err != nil {
		t.Fatal(err)
	}
	mustDo(t, s.AddExperimentLook(ctx, exp, experiments.Look{At: base, Counts: map[string]experiments.Counts{"B": SampleCounts(3)}}))
}

func testDeleteCascades(t *testing.T, s experiments.Store) {
	fill(t, s, "x1")
	fill(t, s, "x2")
	mustDo(t, s.DeleteExperiment(ctx, "x1"))
	for _, tc := range []struct {
		exp   string
		empty bool
	}{{"x1", true}, {"x2", false}} {
		as := must(s.SubjectAssignments(ctx, tc.exp, []string{"a:v1"}))(t)
		us := must(s.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: tc.exp, Key: "a:v1"}}))(t)
		cs := must(s.ExperimentCounts(ctx, tc.exp))(t)
		w := must(s.BanditWeights(ctx, tc.exp))(t)
		ls := must(s.ExperimentLooks(ctx, tc.exp))(t)
		got := []bool{as[0].Variant == "", !us[0].Exists(), len(cs) == 0, w.Version == 0, len(ls) == 0}
		for i, g := range got {
			if g != tc.empty {
				t.Errorf("%s: part %d (assignment, unit, counts, weights, looks) empty = %v, want %v", tc.exp, i, g, tc.empty)
			}
		}
	}
}

func testAssign(t *testing.T, s experiments.Store) {
	a := experiments.Assignment{Variant: "B", At: base, Propensity: 0.25}
	got, created := must2(s.AssignSubject(ctx, "x", "u:alice", a))(t)
	if !created || !reflect.DeepEqual(got, experiments.Assignment{Variant: "B", At: ms(base), Propensity: 0.25}) {
		t.Errorf("first assign = %+v, %v", got, created)
	}
	got, created = must2(s.AssignSubject(ctx, "x", "u:alice", experiments.Assignment{Variant: "A", At: base.Add(time.Hour), Propensity: 0.75}))(t)
	if created || got.Variant != "B" || !got.At.Equal(ms(base)) || got.Propensity != 0.25 {
		t.Errorf("second assign = %+v, %v: want the first one kept", got, created)
	}
	if _, created := must2(s.AssignSubject(ctx, "y", "u:alice", experiments.Assignment{Variant: "A", At: base, Propensity: 1}))(t); !created {
		t.Errorf("another experiment shares the assignment")
	}
	as := must(s.SubjectAssignments(ctx, "x", []string{"a:nobody", "u:alice", "a:with space:and colon"}))(t)
	if len(as) != 3 || as[0].Variant != "" || as[1].Variant != "B" || as[2].Variant != "" {
		t.Errorf("assignments = %+v", as)
	}
	mustDo(t, s.UnassignSubject(ctx, "x", "u:alice", "A"))
	if as := must(s.SubjectAssignments(ctx, "x", []string{"u:alice"}))(t); as[0].Variant != "B" {
		t.Errorf("unassign of another variant removed it: %+v", as)
	}
	mustDo(t, s.UnassignSubject(ctx, "x", "u:alice", "B"))
	mustDo(t, s.UnassignSubject(ctx, "x", "u:nobody", "B"))
	if as := must(s.SubjectAssignments(ctx, "x", []string{"u:alice"}))(t); as[0].Variant != "" {
		t.Errorf("after unassign: %+v", as)
	}
	if _, created := must2(s.AssignSubject(ctx, "x", "a:with space:and colon", a))(t); !created {
		t.Errorf("odd subject not assigned")
	}
	if as := must(s.SubjectAssignments(ctx, "x", []string{"a:with space:and colon"}))(t); as[0].Variant != "B" {
		t.Errorf("odd subject: %+v", as)
	}
}

func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func testAssignConcurrent(t *testing.T, s experiments.Store) {
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	got := map[string]int{}
	for i := range n {
		wg.Go(func() {
			a, c, err := s.AssignSubject(ctx, "x", "a:v", experiments.Assignment{Variant: fmt.Sprintf("V%d", i), At: base, Propensity: 0.5})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			got[a.Variant]++
			if c {
				created++
			}
		})
	}
	wg.Wait()
	if created != 1 || len(got) != 1 {
		t.Errorf("%d callers created, variants returned %v: want one creator and one variant for all", created, got)
	}
}

func testUnits(t *testing.T, s experiments.Store) {
	k1 := experiments.UnitKey{Exp: "x", Key: "a:v:1 with space"}
	k2 := experiments.UnitKey{Exp: "x", Key: "u:alice"}
	k3 := experiments.UnitKey{Exp: "y", Key: "a:v:1 with space"}
	u1 := experiments.Unit{Variant: "B", Exposed: ms(base), Propensity: 0.123456, Clicked: true, Converted: true, Revenue: 1_234_567}
	u2 := experiments.Unit{Alias: k1.Key}
	mustDo(t, s.UpdateExperimentUnits(ctx, experiments.Update{
		Units: []experiments.UnitWrite{{UnitKey: k1, New: u1}, {UnitKey: k2, New: u2}},
		Counts: []experiments.CountDelta{{Exp: "x", Variant: "B", Counts: SampleCounts(4)}, {Exp: "x", Variant: "A", Counts: SampleCounts(1)},
			{Exp: "x", Variant: "B", Counts: SampleCounts(2)}},
	}))
	us := must(s.ExperimentUnits(ctx, []experiments.UnitKey{k1, k2, k3}))(t)
	if !us[0].Equal(u1) || !us[1].Equal(u2) || us[2].Exists() {
		t.Errorf("units = %+v, want %+v, %+v and none", us, u1, u2)
	}
	cs := must(s.ExperimentCounts(ctx, "x"))(t)
	wantB := SampleCounts(4)
	wantB.Add(SampleCounts(2))
	if !reflect.DeepEqual(cs, map[string]experiments.Counts{"A": SampleCounts(1), "B": wantB}) {
		t.Errorf("counts = %+v", cs)
	}
	// A second update adds; a write to the zero Unit deletes.
	u1b := u1
	u1b.Carted, u1b.Revenue = true, u1.Revenue+1
	mustDo(t, s.UpdateExperimentUnits(ctx, experiments.Update{
		Units:  []experiments.UnitWrite{{UnitKey: k1, Old: u1, New: u1b}, {UnitKey: k2, Old: u2}},
		Counts: []experiments.CountDelta{{Exp: "x", Variant: "B", Counts: experiments.Counts{Carts: 1, RevenueSq: [4]int64{1 << 31, 0, 0, 0}}}},
	}))
	us = must(s.ExperimentUnits(ctx, []experiments.UnitKey{k1, k2}))(t)
	if !us[0].Equal(u1b) || us[1].Exists() {
		t.Errorf("after update: %+v", us)
	}
	cs = must(s.ExperimentCounts(ctx, "x"))(t)
	wantB.Carts++
	wantB.RevenueSq[0] += 1 << 31
	if cs["B"] != wantB {
		t.Errorf("B = %+v, want %+v", cs["B"], wantB)
	}
	if cs := must(s.ExperimentCounts(ctx, "nope"))(t); len(cs) != 0 {
		t.Errorf("counts of an unknown experiment = %v", cs)
	}
}

func testUnitsStale(t *testing.T, s experiments.Store) {
	k := experiments.UnitKey{Exp: "x", Key: "a:v"}
	u := experiments.Unit{Variant: "A", Exposed: ms(base), Propensity: 0.5}
	mustDo(t, s.UpdateExperimentUnits(ctx, experiments.Update{Units: []experiments.UnitWrite{{UnitKey: k, New: u}}}))
	other := experiments.UnitKey{Exp: "x", Key: "a:w"}
	for name, old := range map[string]experiments.Unit{"absent expected": {}, "other value": {Variant: "B", Exposed: ms(base), Propensity: 0.5}} {
		err := s.UpdateExperimentUnits(ctx, experiments.Update{
			Units:  []experiments.UnitWrite{{UnitKey: other, New: u}, {UnitKey: k, Old: old, New: experiments.Unit{Variant: "A", Exposed: ms(base), Propensity: 0.5, Clicked: true}}},
			Counts: []experiments.CountDelta{{Exp: "x", Variant: "A", Counts: experiments.Counts{N: 1}}},
		})
		if !errors.Is(err, experiments.ErrStaleUnits) {
			t.Errorf("%s: %v, want ErrStaleUnits", name, err)
		}
	}
	us := must(s.ExperimentUnits(ctx, []experiments.UnitKey{k, other}))(t)
	if !us[0].Equal(u) || us[1].Exists() {
		t.Errorf("a refused update changed units: %+v", us)
	}
	if cs := must(s.ExperimentCounts(ctx, "x"))(t); len(cs) != 0 {
		t.Errorf("a refused update changed counts: %+v", cs)
	}
}

func testUnitsConcurrent(t *testing.T, s experiments.Store) {
	const workers, each = 4, 10
	k := experiments.UnitKey{Exp: "x", Key: "a:shared"}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					cur := must(s.ExperimentUnits(ctx, []experiments.UnitKey{k}))(t)[0]
					next := cur
					next.Variant, next.Exposed, next.Propensity = "A", ms(base), 1
					next.Revenue++
					err := s.UpdateExperimentUnits(ctx, experiments.Update{
						Units:  []experiments.UnitWrite{{UnitKey: k, Old: cur, New: next}},
						Counts: []experiments.CountDelta{{Exp: "x", Variant: "A", Counts: experiments.Counts{Revenue: 1}}},
					})
					if err == nil {
						break
					}
					if !errors.Is(err, experiments.ErrStaleUnits) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	u := must(s.ExperimentUnits(ctx, []experiments.UnitKey{k}))(t)[0]
	cs := must(s.ExperimentCounts(ctx, "x"))(t)
	if u.Revenue != workers*each || cs["A"].Revenue != workers*each {
		t.Errorf("unit revenue %d, counts %d: want %d (no lost update)", u.Revenue, cs["A"].Revenue, workers*each)
	}
}

func testWeights(t *testing.T, s experiments.Store) {
	if w := must(s.BanditWeights(ctx, "x"))(t); w.Version != 0 || len(w.Weights) != 0 {
		t.Errorf("initial weights %+v", w)
	}
	w1 := experiments.Weights{Version: 1, At: base, Weights: map[string]float64{"A": 0.2, "B": 0.8}}
	if ok := must(s.SetBanditWeights(ctx, "x", experiments.Weights{Version: 2, At: base, Weights: w1.Weights}))(t); ok {
		t.Errorf("version 2 stored over none")
	}
	if ok := must(s.SetBanditWeights(ctx, "x", w1))(t); !ok {
		t.Fatal("version 1 refused")
	}
	if ok := must(s.SetBanditWeights(ctx, "x", w1))(t); ok {
		t.Errorf("version 1 stored twice")
	}
	got := must(s.BanditWeights(ctx, "x"))(t)
	if got.Version != 1 || !got.At.Equal(ms(base)) || !maps.Equal(got.Weights, w1.Weights) {
		t.Errorf("weights = %+v, want %+v", got, w1)
	}
	w2 := experiments.Weights{Version: 2, At: base.Add(time.Minute), Weights: map[string]float64{"A": 0.01, "B": 0.99}}
	if ok := must(s.SetBanditWeights(ctx, "x", w2))(t); !ok {
		t.Errorf("version 2 refused after 1")
	}
	if got := must(s.BanditWeights(ctx, "y"))(t); got.Version != 0 {
		t.Errorf("another experiment has weights %+v", got)
	}
}

func testLooks(t *testing.T, s experiments.Store) {
	l2 := experiments.Look{At: base.Add(15 * time.Minute), Counts: map[string]experiments.Counts{"A": SampleCounts(5), "B": SampleCounts(6)}}
	l1 := experiments.Look{At: base, Counts: map[string]experiments.Counts{"A": SampleCounts(1)}}
	mustDo(t, s.AddExperimentLook(ctx, "x", l2))
	mustDo(t, s.AddExperimentLook(ctx, "x", l1))
	mustDo(t, s.AddExperimentLook(ctx, "x", experiments.Look{At: base, Counts: map[string]experiments.Counts{"A": SampleCounts(9)}}))
	ls := must(s.ExperimentLooks(ctx, "x"))(t)
	if len(ls) != 2 || !ls[0].At.Equal(ms(base)) || !ls[1].At.Equal(ms(l2.At)) ||
		!reflect.DeepEqual(ls[0].Counts, l1.Counts) || !reflect.DeepEqual(ls[1].Counts, l2.Counts) {
		t.Errorf("looks = %+v", ls)
	}
	if ls := must(s.ExperimentLooks(ctx, "y"))(t); len(ls) != 0 {
		t.Errorf("looks of another experiment: %+v", ls)
	}
}

func testForget(t *testing.T, s experiments.Store) {
	for _, exp := range []string{"x", "y"} {
		mustDo(t, s.PutExperimentDoc(ctx, exp, []byte(`{}`)))
		for _, sub := range []string{"a:v1", "u:v1", "a:v2"} {
			must2(s.AssignSubject(ctx, exp, sub, experiments.Assignment{Variant: "A", At: base, Propensity: 1}))(t)
			mustDo(t, s.UpdateExperimentUnits(ctx, experiments.Update{
				Units:  []experiments.UnitWrite{{UnitKey: experiments.UnitKey{Exp: exp, Key: sub}, New: experiments.Unit{Variant: "A", Exposed: ms(base), Propensity: 1}}},
				Counts: []experiments.CountDelta{{Exp: exp, Variant: "A", Counts: experiments.Counts{N: 1}}},
			}))
		}
	}
	mustDo(t, s.ForgetExperimentSubjects(ctx, []string{"a:v1", "u:v1"}))
	for _, exp := range []string{"x", "y"} {
		as := must(s.SubjectAssignments(ctx, exp, []string{"a:v1", "u:v1", "a:v2"}))(t)
		us := must(s.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: exp, Key: "a:v1"}, {Exp: exp, Key: "u:v1"}, {Exp: exp, Key: "a:v2"}}))(t)
		if as[0].Variant != "" || as[1].Variant != "" || as[2].Variant != "A" || us[0].Exists() || us[1].Exists() || !us[2].Exists() {
			t.Errorf("%s after forget: assignments %+v units %+v", exp, as, us)
		}
		if cs := must(s.ExperimentCounts(ctx, exp))(t); cs["A"].N != 3 {
			t.Errorf("%s: forget changed the counts: %+v", exp, cs)
		}
	}
}

func testInvalid(t *testing.T, s experiments.Store) {
	for name, u := range map[string]experiments.Update{
		"empty key":     {Units: []experiments.UnitWrite{{UnitKey: experiments.UnitKey{Exp: "x"}, New: experiments.Unit{Variant: "A"}}}},
		"empty exp":     {Units: []experiments.UnitWrite{{UnitKey: experiments.UnitKey{Key: "a:v"}, New: experiments.Unit{Variant: "A"}}}},
		"empty variant": {Counts: []experiments.CountDelta{{Exp: "x", Counts: experiments.Counts{N: 1}}}},
	} {
		if err := s.UpdateExperimentUnits(ctx, u); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if cs := must(s.ExperimentCounts(ctx, "x"))(t); len(cs) != 0 {
		t.Errorf("an invalid update counted: %+v", cs)
	}
}

func testCancelled(t *testing.T, s experiments.Store) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	k := []experiments.UnitKey{{Exp: "x", Key: "a:v"}}
	errs := map[string]error{
		"PutExperimentDoc": s.PutExperimentDoc(c, "x", []byte(`{}`)),
		"UpdateExperimentUnits": s.UpdateExperimentUnits(c, experiments.Update{
			Counts: []experiments.CountDelta{{Exp: "x", Variant: "A", Counts: experiments.Counts{N: 1}}}}),
		"AddExperimentLook": s.AddExperimentLook(c, "x", experiments.Look{At: base}),
	}
	_, _, errs["AssignSubject"] = s.AssignSubject(c, "x", "a:v", experiments.Assignment{Variant: "A", At: base})
	_, errs["ExperimentUnits"] = s.ExperimentUnits(c, k)
	_, errs["ExperimentCounts"] = s.ExperimentCounts(c, "x")
	_, errs["ExperimentDocs"] = s.ExperimentDocs(c)
	_, errs["SetBanditWeights"] = s.SetBanditWeights(c, "x", experiments.Weights{Version: 1})
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s with a cancelled context: no error", name)
		}
	}
	if cs := must(s.ExperimentCounts(ctx, "x"))(t); len(cs) != 0 {
		t.Errorf("a cancelled update counted: %+v", cs)
	}
	if docs := must(s.ExperimentDocs(ctx))(t); len(docs) != 0 {
		t.Errorf("a cancelled put stored: %v", docs)
	}
}

// RunBackend runs Run on experiments.NewStore over the backends open
// returns (a new, empty one for each subtest), and the checks of what
// only BackendStore provides: atomic create of a definition, upsert
// from the stored definition, and the removal of data left behind by an
// interrupted delete.
func RunBackend(t *testing.T, open func(t *testing.T) storage.Backend) {
	Run(t, func(t *testing.T) experiments.Store { return experiments.NewStore(open(t)) })
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, s *experiments.BackendStore, b storage.Backend)
	}{
		{"Create", testCreate},
		{"CreateConcurrent", testCreateConcurrent},
		{"Upsert", testUpsert},
		{"DeleteLeftovers", testDeleteLeftovers},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t)
			tt.fn(t, experiments.NewStore(b), b)
		})
	}
}

func testCreate(t *testing.T, s *experiments.BackendStore, _ storage.Backend) {
	mustDo(t, s.CreateExperimentDoc(ctx, "x", []byte(`{"id":"x","n":1}`)))
	v := must(s.ExperimentDocsVersion(ctx))(t)
	if err := s.CreateExperimentDoc(ctx, "x", []byte(`{"id":"x","n":2}`)); !errors.Is(err, errs.Conflict) {
		t.Errorf("second create: %v, want Conflict", err)
	}
	docs := must(s.ExperimentDocs(ctx))(t)
	if len(docs) != 1 || string(docs[0].JSON) != `{"id":"x","n":1}` {
		t.Errorf("a refused create changed the definition: %v", docs)
	}
	if v2 := must(s.ExperimentDocsVersion(ctx))(t); v2 != v {
		t.Errorf("a refused create changed the version %d → %d", v, v2)
	}
	if dv := must(s.Defs().Version(ctx))(t); dv != v {
		t.Errorf("Defs().Version = %d, want %d", dv, v)
	}
}

func testCreateConcurrent(t *testing.T, s *experiments.BackendStore, _ storage.Backend) {
	const n = 8
	won := testutil.Wins(t, n, errs.Conflict, func(i int) error {
		return s.CreateExperimentDoc(ctx, "x", fmt.Appendf(nil, `{"id":"x","n":%d}`, i))
	})
	if won != 1 {
		t.Errorf("%d of %d concurrent creates succeeded, want 1", won, n)
	}
}

func testUpsert(t *testing.T, s *experiments.BackendStore, _ storage.Backend) {
	var seen [][]byte
	build := func(b string) func(old []byte) ([]byte, error) {
		return func(old []byte) ([]byte, error) {
			seen = append(seen, old)
			return []byte(b), nil
		}
	}
	if created := must(s.UpsertExperimentDoc(ctx, "x", build(`{"id":"x","n":1}`)))(t); !created {
		t.Errorf("first upsert did not create")
	}
	if created := must(s.UpsertExperimentDoc(ctx, "x", build(`{"id":"x","n":2}`)))(t); created {
		t.Errorf("second upsert created")
	}
	if len(seen) != 2 || seen[0] != nil || string(seen[1]) != `{"id":"x","n":1}` {
		t.Errorf("build was given %q, want nil then the first definition", seen)
	}
	refused := errors.New("refused")
	if _, err := s.UpsertExperimentDoc(ctx, "x", func([]byte) ([]byte, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Errorf("upsert with a failing build: %v", err)
	}
	if docs := must(s.ExperimentDocs(ctx))(t); len(docs) != 1 || string(docs[0].JSON) != `{"id":"x","n":2}` {
		t.Errorf("docs = %v", docs)
	}
}

// testDeleteLeftovers: data of an experiment without a definition (a
// delete interrupted after the definition went) is removed by deleting
// again, which answers NotFound.
func testDeleteLeftovers(t *testing.T, s *experiments.BackendStore, b storage.Backend) {
	fill(t, s, "x")
	fill(t, s, "y")
	if err := b.DeleteDoc(ctx, experiments.DefsCollection, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteExperiment(ctx, "x"); !errors.Is(err, errs.NotFound) {
		t.Errorf("delete of leftovers: %v, want NotFound", err)
	}
	for _, tc := range []struct {
		exp  string
		left bool
	}{{"x", false}, {"y", true}} {
		as := must(s.SubjectAssignments(ctx, tc.exp, []string{"a:v1"}))(t)
		us := must(s.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: tc.exp, Key: "a:v1"}}))(t)
		cs := must(s.ExperimentCounts(ctx, tc.exp))(t)
		w := must(s.BanditWeights(ctx, tc.exp))(t)
		ls := must(s.ExperimentLooks(ctx, tc.exp))(t)
		got := []bool{as[0].Variant != "", us[0].Exists(), len(cs) > 0, w.Version > 0, len(ls) > 0}
		for i, g := range got {
			if g != tc.left {
				t.Errorf("%s: part %d (assignment, unit, counts, weights, looks) present = %v, want %v", tc.exp, i, g, tc.left)
			}
		}
	}
}

// RunPersistence writes one of everything, closes the store, opens it
// again on the same backing data and checks that everything is there.
// newBacking creates new backing data and returns its opener.
func RunPersistence(t *testing.T, newBacking func(t *testing.T) (open func(t *testing.T) Closer)) {
	t.Run("Reopen", func(t *testing.T) {
		open := newBacking(t)
		s := open(t)
		fill(t, s, "x1")
		fill(t, s, "x2")
		mustDo(t, s.DeleteExperiment(ctx, "x2"))
		must2(s.AssignSubject(ctx, "x1", "u:alice", experiments.Assignment{Variant: "A", At: base, Propensity: 0.25}))(t)
		mustDo(t, s.UpdateExperimentUnits(ctx, experiments.Update{
			Units:  []experiments.UnitWrite{{UnitKey: experiments.UnitKey{Exp: "x1", Key: "u:alice"}, New: experiments.Unit{Alias: "a:v1"}}},
			Counts: []experiments.CountDelta{{Exp: "x1", Variant: "A", Counts: SampleCounts(7)}},
		}))
		must(s.SetBanditWeights(ctx, "x1", experiments.Weights{Version: 2, At: base.Add(time.Minute), Weights: map[string]float64{"A": 0.1, "B": 0.9}}))(t)
		mustDo(t, s.AddExperimentLook(ctx, "x1", experiments.Look{At: base.Add(time.Hour), Counts: map[string]experiments.Counts{"A": SampleCounts(7)}}))
		version := must(s.ExperimentDocsVersion(ctx))(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s = open(t)
		defer s.Close()
		if v := must(s.ExperimentDocsVersion(ctx))(t); v != version {
			t.Errorf("version after reopen = %d, want %d", v, version)
		}
		if docs := must(s.ExperimentDocs(ctx))(t); len(docs) != 1 || docs[0].ID != "x1" || string(docs[0].JSON) != `{"id":"x1"}` {
			t.Errorf("docs after reopen = %v", docs)
		}
		as := must(s.SubjectAssignments(ctx, "x1", []string{"a:v1", "u:alice"}))(t)
		if as[0].Variant != "B" || !as[0].At.Equal(ms(base)) || as[0].Propensity != 0.5 {
			t.Errorf("assignment after reopen = %+v", as[0])
		}
		if as[1].Variant != "A" || as[1].Propensity != 0.25 {
			t.Errorf("assignment after reopen = %+v", as[1])
		}
		us := must(s.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: "x1", Key: "a:v1"}, {Exp: "x1", Key: "u:alice"}, {Exp: "x2", Key: "a:v1"}}))(t)
		if !us[0].Equal(experiments.Unit{Variant: "B", Exposed: ms(base), Propensity: 0.5}) || us[1].Alias != "a:v1" || us[2].Exists() {
			t.Errorf("units after reopen = %+v", us)
		}
		cs := must(s.ExperimentCounts(ctx, "x1"))(t)
		if !reflect.DeepEqual(cs, map[string]experiments.Counts{"A": SampleCounts(7), "B": SampleCounts(3)}) {
			t.Errorf("counts after reopen = %+v", cs)
		}
		if cs := must(s.ExperimentCounts(ctx, "x2"))(t); len(cs) != 0 {
			t.Errorf("deleted experiment's counts after reopen = %+v", cs)
		}
		w := must(s.BanditWeights(ctx, "x1"))(t)
		if w.Version != 2 || w.Weights["B"] != 0.9 || !w.At.Equal(ms(base.Add(time.Minute))) {
			t.Errorf("weights after reopen = %+v", w)
		}
		ls := must(s.ExperimentLooks(ctx, "x1"))(t)
		if len(ls) != 2 || !reflect.DeepEqual(ls[1].Counts, map[string]experiments.Counts{"A": SampleCounts(7)}) {
			t.Errorf("looks after reopen = %+v", ls)
		}
	})
}

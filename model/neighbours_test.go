package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// Three users: {0,1,2}, {0,1}, {0,3}. Item 0 has 3 users, 1 has 2, 2 and 3
// one each; c(0,1) = 2, c(0,2) = c(0,3) = c(1,2) = 1.
func neighbourMatrix(t *testing.T) *Matrix {
	t.Helper()
	m, err := NewMatrix(3, 5, []Interaction{
		{User: 0, Item: 0, Weight: 1}, {User: 0, Item: 1, Weight: 1}, {User: 0, Item: 2, Weight: 1},
		{User: 1, Item: 0, Weight: 1}, {User: 1, Item: 1, Weight: 1},
		{User: 2, Item: 0, Weight: 1}, {User: 2, Item: 3, Weight: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBuildNeighboursAsymmetricCosine(t *testing.T) {
	c := NeighbourConfig{K: 2, Alpha: 0.5, Shrink: 1, MaxHistory: 10}
	nb, err := BuildNeighbours(context.Background(), neighbourMatrix(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := nb.Validate(); err != nil {
		t.Fatal(err)
	}
	sim := func(cij, ni, nj float64) float32 {
		return float32(cij / (math.Pow(ni, c.Alpha)*math.Pow(nj, 1-c.Alpha) + c.Shrink))
	}
	// Item 0: neighbours 1 (2/(√3·√2+1)), then 2 and 3 tie (1/(√3+1)),
	// the lower row first; K = 2 keeps 1 and 2.
	idx, s := nb.Of(0)
	if !slices.Equal(idx, []int32{1, 2}) || math.Abs(float64(s[0]-sim(2, 3, 2))) > 1e-6 || math.Abs(float64(s[1]-sim(1, 3, 1))) > 1e-6 {
		t.Fatalf("item 0: %v %v", idx, s)
	}
	// Item 2: 1 (1/(1·√2+1)) above 0 (1/(1·√3+1)).
	if idx, _ := nb.Of(2); !slices.Equal(idx, []int32{1, 0}) {
		t.Fatalf("item 2: %v, want [1 0]", idx)
	}
	// Item 4 has no user and no neighbours; a row out of range has none.
	if idx, _ := nb.Of(4); len(idx) != 0 {
		t.Fatalf("item 4: %v", idx)
	}
	if idx, _ := nb.Of(9); idx != nil {
		t.Fatalf("row 9: %v", idx)
	}
	// A user with more items than MaxHistory is left out: with 2, user 0
	// (3 items) no longer makes 1 and 2 neighbours.
	c.MaxHistory = 2
	nb, _ = BuildNeighbours(context.Background(), neighbourMatrix(t), c)
	if idx, _ := nb.Of(2); len(idx) != 0 {
		t.Fatalf("item 2 with user 0 left out: %v", idx)
	}
}

func TestNeighbourConfigValidated(t *testing.T) {
	for _, c := range []NeighbourConfig{
		{K: 0, Alpha: 0.5, MaxHistory: 10}, {K: 5, Alpha: 1.5, MaxHistory: 10},
		{K: 5, Alpha: 0.5, Shrink: math.NaN(), MaxHistory: 10}, {K: 5, Alpha: 0.5, MaxHistory: 1},
	} {
		if _, err := BuildNeighbours(context.Background(), neighbourMatrix(t), c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	bad := []*Neighbours{
		{Ptr: []int64{0, 2}, Idx: []int32{1}, Sim: []float32{1}},                      // pointers past the entries
		{Ptr: []int64{0, 1, 1}, Idx: []int32{5}, Sim: []float32{1}},                   // row out of range
		{Ptr: []int64{0, 1, 1}, Idx: []int32{1}, Sim: []float32{float32(math.NaN())}}, // NaN
		{Ptr: []int64{0, 1, 1}, Idx: []int32{1}, Sim: []float32{0}},                   // zero similarity
	}
	for i, nb := range bad {
		if err := nb.Validate(); err == nil {
			t.Errorf("bad neighbours %d accepted", i)
		}
	}
}

// A visitor's neighbour scores, their moments over all items computed
// from the touched rows alone, and the blend's use of them agree with the
// dense computation.
func TestNeighbourScoresAndMoments(t *testing.T) {
	nb, err := BuildNeighbours(context.Background(), neighbourMatrix(t), NeighbourConfig{K: 5, Alpha: 0.5, Shrink: 0, MaxHistory: 10})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 5)
	touched := nb.Scores(dst, []int32{1, 3}, nil)
	slices.Sort(touched)
	if !slices.Equal(touched, []int32{0, 2}) {
		t.Fatalf("touched %v, want [0 2] (1's neighbours 0 and 2, 3's neighbour 0)", touched)
	}
	want0 := float32(2/math.Sqrt(6) + 1/math.Sqrt(3))
	if math.Abs(float64(dst[0]-want0)) > 1e-6 || dst[1] != 0 || dst[3] != 0 || dst[4] != 0 {
		t.Fatalf("scores %v, want item 0 at %v", dst, want0)
	}
	mean, sd := LogMoments(dst, touched, 5)
	var s, q float64
	for _, v := range dst {
		f := math.Log1p(float64(v))
		s += f
		q += f * f
	}
	if wm, wsd := s/5, math.Sqrt(q/5-(s/5)*(s/5)); math.Abs(mean-wm) > 1e-9 || math.Abs(sd-wsd) > 1e-9 {
		t.Fatalf("moments %v %v, want %v %v", mean, sd, wm, wsd)
	}
	// In the blend, η adds η·w(n)·(1−ρ)·z(log(1+nb)) to the scores.
	personal := []float32{0.1, 0.5, -0.2, 0.3, 0}
	b := Blend{Kappa: 0, Prior: 0.5, Neighbours: 2}
	in := BlendInput{Personal: personal, Events: 3}
	base := b.Scores(nil, in)
	in.Neighbours = dst
	with := b.Scores(nil, in)
	for i := range with {
		z := (math.Log1p(float64(dst[i])) - mean) / sd
		if got, want := float64(with[i]-base[i]), 2*1*(1-0)*z; math.Abs(got-want) > 1e-5 {
			// Prior needs trending: without it ρ is 0 and w(n) = 1.
			t.Fatalf("item %d: blend moved by %v, want %v", i, got, want)
		}
	}
	// η = 0 leaves the scores alone.
	b.Neighbours = 0
	if got := b.Scores(nil, in); !slices.Equal(got, base) {
		t.Fatalf("η = 0 changed the scores: %v vs %v", got, base)
	}
}

func TestNeighboursRemap(t *testing.T) {
	nb, _ := BuildNeighbours(context.Background(), neighbourMatrix(t), NeighbourConfig{K: 5, Alpha: 0.5, Shrink: 0, MaxHistory: 10})
	// Snapshot rows 0..4 become engine rows 7, 3, 0, -1 (dropped), 5.
	got := nb.Remap([]int32{7, 3, 0, -1, 5}, 8)
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	idx, sim := got.Of(7) // row 0's: 1, 2, 3 → 3, 0 (3 dropped)
	wIdx, wSim := nb.Of(0)
	if !slices.Equal(idx, []int32{3, 0}) || sim[0] != wSim[0] || len(wIdx) != 3 {
		t.Fatalf("row 7: %v %v (from %v %v)", idx, sim, wIdx, wSim)
	}
	if idx, _ := got.Of(1); len(idx) != 0 {
		t.Fatalf("row 1 holds no item: %v", idx)
	}
}

func TestNeighboursBinaryRoundTrip(t *testing.T) {
	nb, _ := BuildNeighbours(context.Background(), neighbourMatrix(t), NeighbourConfig{K: 5, Alpha: 0.5, Shrink: 1, MaxHistory: 10})
	b, err := nb.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Neighbours
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Ptr, nb.Ptr) || !slices.Equal(got.Idx, nb.Idx) || !slices.Equal(got.Sim, nb.Sim) {
		t.Fatalf("decoded %+v, want %+v", got, nb)
	}
	// Every truncation, an extra byte and a row pointing outside fail.
	for n := range len(b) {
		if err := new(Neighbours).UnmarshalBinary(b[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	if err := new(Neighbours).UnmarshalBinary(append(slices.Clone(b), 0)); err == nil {
		t.Fatal("a trailing byte: no error")
	}
	bad := slices.Clone(b)
	bad[12+4*5] = 99 // the first index: row 99 of 5
	if err := new(Neighbours).UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("row out of range: %v, want ErrCorrupt", err)
	}
}

// zipfMatrix plants a catalogue-scale log: users each draw perUser
// distinct items by Zipf popularity (s = 0.8).
func zipfMatrix(tb testing.TB, users, items, perUser int) *Matrix {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	cum := make([]float64, items)
	total := 0.0
	for i := range items {
		total += math.Pow(float64(i+1), -0.8)
		cum[i] = total
	}
	ins := make([]Interaction, 0, users*perUser)
	seen := map[int32]bool{}
	for u := range users {
		clear(seen)
		for len(seen) < perUser {
			i := int32(min(sort.SearchFloat64s(cum, rng.Float64()*total), items-1))
			if !seen[i] {
				seen[i] = true
				ins = append(ins, Interaction{User: int32(u), Item: i, Weight: 1})
			}
		}
	}
	m, err := NewMatrix(users, items, ins)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkBuildNeighbours builds the neighbours of a planted log of
// 200,000 users × 25 items over 1M items (the catalogue scale of the
// README), with the default cap on the table and without, and reports
// the table's size.
func BenchmarkBuildNeighbours(b *testing.B) {
	m := zipfMatrix(b, 200_000, 1_000_000, 25)
	for _, capped := range []bool{true, false} {
		c := DefaultNeighbourConfig()
		name := "capped"
		if !capped {
			c.MaxEntries, name = 0, "uncapped"
		}
		b.Run(name, func(b *testing.B) {
			var nb *Neighbours
			for b.Loop() {
				var err error
				if nb, err = BuildNeighbours(context.Background(), m, c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(nb.Idx)), "neighbours")
			b.ReportMetric(float64(len(nb.Idx)*8+len(nb.Ptr)*8)/1e6, "MB")
		})
	}
}

func TestBuildNeighboursCapsTheTableAcrossChunks(t *testing.T) {
	// 10,000 items span three chunks of the parallel build; a cap of
	// 40,000 entries keeps 4 per item, each item's best 4 of the uncapped
	// table, and every row is the one a single worker computes.
	m := zipfMatrix(t, 3000, 10_000, 12)
	c := DefaultNeighbourConfig()
	c.MaxEntries = 0
	full, err := BuildNeighbours(context.Background(), m, c)
	if err != nil {
		t.Fatal(err)
	}
	c.MaxEntries = 40_000
	capped, err := BuildNeighbours(context.Background(), m, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, nb := range []*Neighbours{full, capped} {
		if err := nb.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if len(capped.Idx) > 40_000 || len(full.Idx) <= 40_000 {
		t.Fatalf("capped %d, uncapped %d entries; want the cap to bind", len(capped.Idx), len(full.Idx))
	}
	w := newNeighbourBuild(m, c).worker()
	for i := range m.Items() {
		fi, fs := full.Of(i)
		ci, cs := capped.Of(i)
		if len(ci) != min(len(fi), 4) || !slices.Equal(ci, fi[:len(ci)]) || !slices.Equal(cs, fs[:len(cs)]) {
			t.Fatalf("item %d: capped %v %v, uncapped %v %v", i, ci, cs, fi, fs)
		}
		if i%997 == 0 {
			one := w.item(i)
			for e, x := range one {
				if x.Item != ci[e] || x.Score != cs[e] {
					t.Fatalf("item %d: one worker gives %v, the table %v %v", i, one, ci, cs)
				}
			}
		}
	}
	if err := (NeighbourConfig{K: 5, Alpha: 0.5, MaxHistory: 2, MaxEntries: -1}).Validate(); err == nil {
		t.Fatal("a negative MaxEntries validated")
	}
}

// A cancelled context stops the build between chunks with its error.
func TestBuildNeighboursStopsWhenCancelled(t *testing.T) {
	m := zipfMatrix(t, 3000, 10_000, 12)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	nb, err := BuildNeighbours(ctx, m, DefaultNeighbourConfig())
	if !errors.Is(err, context.Canceled) || nb != nil {
		t.Fatalf("BuildNeighbours with a cancelled context: %v, %v; want context.Canceled and no table", nb != nil, err)
	}
}

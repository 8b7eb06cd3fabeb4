package model

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

func randomModel(n, k int, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 2))
	p := DefaultParams()
	p.Factors = k
	return &Model{Params: p, Items: randomFactors(n, k, 1, rng), Users: randomFactors(n/2+1, k, 1, rng)}
}

func TestTopKMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct {
		name   string
		n, k   int
		topN   int
		cosine bool
	}{
		{"small", 50, 4, 10, false},
		{"fewer-than-n", 7, 8, 10, false},
		{"chunks", 3000, 16, 25, false},
		{"cosine", 2000, 8, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := randomModel(tc.n, tc.k, uint64(tc.n))
			o := mustOnline(t, mod, nil)
			ex := NewBitset(tc.n)
			for range tc.n / 5 {
				ex.Set(rng.IntN(tc.n))
			}
			keep := func(i int) bool { return i%7 != 3 }
			q := make([]float32, tc.k)
			for f := range q {
				q[f] = float32(rng.NormFloat64())
			}
			var s Scorer
			got := o.TopK(&s, nil, Query{Vector: q, N: tc.topN, Exclude: ex, Keep: keep, Cosine: tc.cosine})
			// Brute force: score everything, filter, full sort.
			var all []Scored
			for i := range tc.n {
				if ex.Has(i) || !keep(i) {
					continue
				}
				v := float32(dot32f(q, mod.Items.Row(i)))
				if tc.cosine {
					v /= norm32(mod.Items.Row(i)) * norm32(q)
				}
				all = append(all, Scored{Item: int32(i), Score: v})
			}
			sort.Slice(all, func(a, b int) bool { return less(all[b], all[a]) })
			want := all[:min(tc.topN, len(all))]
			if len(got) != len(want) {
				t.Fatalf("got %d results, want %d", len(got), len(want))
			}
			for r := range want {
				if got[r].Item != want[r].Item || math.Abs(float64(got[r].Score-want[r].Score)) > 1e-4*math.Abs(float64(want[r].Score))+1e-5 {
					t.Fatalf("rank %d: got %+v, want %+v", r, got[r], want[r])
				}
			}
		})
	}
}

func TestTopKDoesNotAllocate(t *testing.T) {
	o := mustOnline(t, randomModel(5000, 32, 1), nil)
	q := o.ItemFactors(nil, 0)
	var s Scorer
	dst := make([]Scored, 0, 10)
	ex := NewBitset(5000)
	ex.Set(3)
	o.TopK(&s, dst, Query{Vector: q, N: 10, Exclude: ex})
	if a := testing.AllocsPerRun(20, func() { dst = o.TopK(&s, dst, Query{Vector: q, N: 10, Exclude: ex}) }); a != 0 {
		t.Fatalf("TopK allocates %.1f times per call", a)
	}
}

func TestSelectTopTiesAndNaN(t *testing.T) {
	var s Scorer
	scores := []float32{1, 3, 3, float32(math.NaN()), 2, 3}
	got := s.SelectTop(nil, scores, 3, nil, nil)
	want := []Scored{{1, 3}, {2, 3}, {5, 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v (ties by smaller row, NaN skipped)", got, want)
	}
}

func TestDecayHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []Event{
		{Item: 1, Weight: 2, Time: t0},
		{Item: 2, Weight: 1, Time: t0.Add(time.Hour)},
		{Item: 1, Weight: 4, Time: t0.Add(2 * time.Hour)},
	}
	var a HistoryAggregator
	got := a.Aggregate(nil, events, time.Hour)
	want := []ItemWeight{{1, 2*0.25 + 4}, {2, 0.5}}
	if len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].Item != want[i].Item || math.Abs(float64(got[i].Weight-want[i].Weight)) > 1e-6 {
			t.Fatalf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := a.Aggregate(nil, events, 0); got[0].Weight != 6 || got[1].Weight != 1 {
		t.Fatalf("no decay: got %v, want weights 6 and 1", got)
	}
	if got := Decay(8, -time.Hour, time.Hour); got != 8 {
		t.Fatalf("a future event decayed to %v", got)
	}
}

func TestFoldInSeesDecay(t *testing.T) {
	// The same history with decay must give the fold-in of the decayed
	// weights: recent items dominate.
	m, _, _ := planted(t, 2, 20, 10, 5, 4)
	p := testParams(8)
	p.HalfLife = time.Hour
	o := mustOnline(t, mustTrain(t, m, p), nil)
	t0 := time.Now()
	old := Event{Item: 0, Weight: 1, Time: t0.Add(-10 * time.Hour)} // cluster 0
	recent := Event{Item: 10, Weight: 1, Time: t0}                  // cluster 1
	var a HistoryAggregator
	hist := a.Aggregate(nil, []Event{old, recent}, p.HalfLife)
	ws := NewWorkspace(8)
	x := make([]float32, 8)
	if err := o.FoldUser(ws, x, hist); err != nil {
		t.Fatal(err)
	}
	var s Scorer
	top := o.TopK(&s, nil, Query{Vector: x, N: 1})
	if top[0].Item < 10 {
		t.Fatalf("top item %d is from the old (decayed) cluster", top[0].Item)
	}
}

func TestItemUpdateLearnsNewItem(t *testing.T) {
	// A new item clicked by users of cluster 0 must rank high for cluster 0
	// and low for cluster 1, without retraining.
	m, clusterOfUser, _ := planted(t, 2, 40, 20, 6, 21)
	p := testParams(8)
	mod := mustTrain(t, m, p)
	o := mustOnline(t, mod, ItemStatsFromMatrix(mod, m))
	newItem := int32(m.Items())
	ws := NewWorkspace(8)
	for u := range 10 { // users 0..9 are cluster 0
		if err := o.Apply(ws, []Update{{OldUser: mod.Users.Row(u), User: mod.Users.Row(u), Items: []ItemDelta{{Item: newItem, DeltaWeight: 2, New: true}}}}); err != nil {
			t.Fatal(err)
		}
	}
	var s Scorer
	rankOf := func(u int) int {
		top := o.TopK(&s, nil, Query{Vector: mod.Users.Row(u), N: o.Len()})
		for r, e := range top {
			if e.Item == newItem {
				return r + 1
			}
		}
		return -1
	}
	for _, u := range []int{20, 30, 45, 70} {
		r := rankOf(u)
		if clusterOfUser(u) == 0 && r > 10 {
			t.Errorf("cluster-0 user %d ranks the new item %d", u, r)
		}
		if clusterOfUser(u) == 1 && r <= 20 {
			t.Errorf("cluster-1 user %d ranks the new item %d", u, r)
		}
	}
}

func TestGramStaysConsistent(t *testing.T) {
	mod := randomModel(500, 16, 3)
	mod.Items = NewFactors(500, 16)
	for i := range mod.Items.Data {
		mod.Items.Data[i] = 0.1
	}
	o := mustOnline(t, mod, nil)
	o.GramRefresh = 0 // measure raw drift
	ws := NewWorkspace(16)
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 16)
	for range 20000 {
		for f := range x {
			x[f] = float32(rng.NormFloat64() * 0.3)
		}
		if err := o.Apply(ws, []Update{{User: x, Items: []ItemDelta{{Item: int32(rng.IntN(500)), DeltaWeight: 1, New: rng.IntN(2) == 0}}}}); err != nil {
			t.Fatal(err)
		}
	}
	drift := o.GramDrift()
	t.Logf("relative YᵀY drift after 20000 rank-one corrections: %.3g", drift)
	if drift > 1e-6 {
		t.Fatalf("YᵀY drifted by %.3g", drift)
	}
	o.GramRefresh = 1
	_ = o.Apply(ws, []Update{{User: x, Items: []ItemDelta{{Item: 1, DeltaWeight: 1}}}})
	if d := o.GramDrift(); d > 1e-12 {
		t.Fatalf("after refresh drift is %.3g", d)
	}
}

func TestExplainSumsToScore(t *testing.T) {
	m, _, _ := planted(t, 3, 20, 15, 6, 8)
	p := testParams(8)
	o := mustOnline(t, mustTrain(t, m, p), nil)
	hist := []ItemWeight{{Item: 1, Weight: 3}, {Item: 4, Weight: 1}, {Item: 20, Weight: 0.5}}
	ws := NewWorkspace(8)
	x := make([]float32, 8)
	if err := o.FoldUser(ws, x, hist); err != nil {
		t.Fatal(err)
	}
	for _, item := range []int{2, 7, 30} {
		cs, err := o.Explain(ws, nil, hist, item, 10)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, c := range cs {
			sum += float64(c.Score)
		}
		score := dot32f(x, o.ItemFactors(nil, item))
		if math.Abs(sum-score) > 1e-4*math.Max(1, math.Abs(score)) {
			t.Fatalf("item %d: contributions sum to %.6f, score is %.6f", item, sum, score)
		}
		if item == 2 && cs[0].Item != 1 && cs[0].Item != 4 {
			t.Fatalf("item 2 (cluster 0) is explained first by %d, want a cluster-0 item", cs[0].Item)
		}
	}
	if _, err := o.Explain(ws, nil, hist, 10_000, 3); !errors.Is(err, ErrUnknownItem) {
		t.Fatalf("unknown item: err = %v", err)
	}
}

func TestTrending(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := NewTrending(time.Hour)
	tr.Add(0, 10, t0)                 // old burst
	tr.Add(1, 3, t0.Add(5*time.Hour)) // recent
	tr.Add(2, 1, t0.Add(5*time.Hour)) // recent, smaller
	var s Scorer
	top := s.SelectTop(nil, tr.Scores(), 3, nil, nil)
	// Now (5 h later): item 1 = 3, item 2 = 1, item 0 = 10·2⁻⁵ = 0.31.
	if top[0].Item != 1 || top[1].Item != 2 || top[2].Item != 0 {
		t.Fatalf("order %v, want items 1, 2, 0", top)
	}
	if got := tr.Score(0, t0.Add(5*time.Hour)); math.Abs(got-10.0/32) > 1e-5 {
		t.Fatalf("decayed score %v, want %v", got, 10.0/32)
	}
	// Far in the future the epoch is rebased without overflow.
	tr.Add(3, 1, t0.Add(1000*time.Hour))
	if s := tr.Scores()[3]; math.IsInf(float64(s), 0) || s <= 0 {
		t.Fatalf("score after rebase %v", s)
	}
	if top := s.SelectTop(nil, tr.Scores(), 1, nil, nil); top[0].Item != 3 {
		t.Fatalf("after 1000 h the newest item should lead, got %v", top)
	}
	pop := NewTrending(0)
	pop.Add(5, 1, t0)
	pop.Add(5, 1, t0.Add(1000*time.Hour))
	if pop.Score(5, t0) != 2 {
		t.Fatalf("popularity without decay = %v, want 2", pop.Score(5, t0))
	}
}

func sampleSnapshot(t testing.TB) *Snapshot {
	mod := randomModel(40, 6, 77)
	st := &ItemStats{Counts: make([]int32, 40), Curv: NewFactors(40, 6)}
	for i := range st.Counts {
		st.Counts[i] = int32(i)
	}
	s := &Snapshot{Meta: Meta{Params: mod.Params, Created: time.Unix(1700000000, 0).UTC(), Note: "test"}, Users: mod.Users, Items: mod.Items, Stats: st}
	for i := range mod.Users.Rows() {
		s.UserIDs = append(s.UserIDs, "u"+string(rune('a'+i%26))+string(rune('0'+i/26)))
	}
	for i := range 40 {
		s.ItemIDs = append(s.ItemIDs, "item-"+string(rune('A'+i%26))+string(rune('0'+i/26)))
	}
	s.Neighbours = &Neighbours{Ptr: make([]int64, 41)}
	for i := range 40 {
		for d := range i % 4 { // rows with 0 to 3 neighbours
			s.Neighbours.Idx = append(s.Neighbours.Idx, int32((i+d+1)%40))
			s.Neighbours.Sim = append(s.Neighbours.Sim, 1/float32(d+1))
		}
		s.Neighbours.Ptr[i+1] = int64(len(s.Neighbours.Idx))
	}
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := sampleSnapshot(t)
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.UserIDs, s.UserIDs) || !slices.Equal(got.ItemIDs, s.ItemIDs) ||
		!slices.Equal(got.Users.Data, s.Users.Data) || !slices.Equal(got.Items.Data, s.Items.Data) ||
		!slices.Equal(got.Stats.Counts, s.Stats.Counts) || got.Meta.Params != s.Meta.Params || !got.Meta.Created.Equal(s.Meta.Created) ||
		!slices.Equal(got.Neighbours.Ptr, s.Neighbours.Ptr) || !slices.Equal(got.Neighbours.Idx, s.Neighbours.Idx) || !slices.Equal(got.Neighbours.Sim, s.Neighbours.Sim) {
		t.Fatal("decoded snapshot differs from the encoded one")
	}
}

// A slim snapshot carries the users' Gram, exactly the XᵀX a live model
// computes from their rows, and everything else of the full one.
func TestSlimSnapshot(t *testing.T) {
	s := sampleSnapshot(t)
	slim := s.Slim()
	if s.Users == nil || s.UserIDs == nil || slim.Users != nil || slim.UserIDs != nil || slim.UserCount != s.Users.Rows() || slim.Slim() != slim {
		t.Fatalf("Slim: full users %v ids %d; slim users %v ids %d count %d", s.Users != nil, len(s.UserIDs), slim.Users != nil, len(slim.UserIDs), slim.UserCount)
	}
	var full, small bytes.Buffer
	if err := s.Encode(&full); err != nil {
		t.Fatal(err)
	}
	if err := slim.Encode(&small); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(small.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	live := mustOnline(t, &Model{Params: s.Meta.Params, Items: s.Items, Users: s.Users}, s.Stats)
	if got.Users != nil || got.UserIDs != nil || got.UserCount != s.Users.Rows() || !slices.Equal(got.UserGram, live.XtX()) {
		t.Fatalf("decoded slim snapshot: users %v, ids %d, count %d, Gram equal to the live XᵀX: %v",
			got.Users != nil, len(got.UserIDs), got.UserCount, slices.Equal(got.UserGram, live.XtX()))
	}
	if !slices.Equal(got.ItemIDs, s.ItemIDs) || !slices.Equal(got.Items.Data, s.Items.Data) || !slices.Equal(got.Stats.Counts, s.Stats.Counts) ||
		!slices.Equal(got.Stats.Curv.Data, s.Stats.Curv.Data) || !slices.Equal(got.Neighbours.Idx, s.Neighbours.Idx) || got.Meta.Params != s.Meta.Params {
		t.Fatal("the slim snapshot's items differ from the full one's")
	}
	k := s.Meta.Params.Factors
	if want := full.Len() - s.Users.Rows()*4*k - (len(s.UserIDs)*4 + 8) + 8*k*k; small.Len() > want {
		t.Fatalf("slim snapshot of %d bytes, full %d: want at most %d", small.Len(), full.Len(), want)
	}
	// A table of users beside a Gram, or a Gram of the wrong size, is
	// refused.
	bad := *slim
	bad.UserGram = bad.UserGram[:k]
	if err := bad.Validate(); err == nil {
		t.Fatal("a Gram of k entries validated")
	}
	bad = *slim
	bad.Users, bad.UserIDs = s.Users, s.UserIDs
	if err := bad.Validate(); err == nil {
		t.Fatal("users and a Gram validated")
	}
	bad = *slim
	bad.UserGram = slices.Clone(slim.UserGram)
	bad.UserGram[3] = math.NaN()
	if err := bad.Encode(io.Discard); err == nil {
		t.Fatal("a NaN in the Gram encoded")
	}
}

func TestSnapshotCorruption(t *testing.T) {
	for _, s := range []*Snapshot{sampleSnapshot(t), sampleSnapshot(t).Slim()} {
		testSnapshotCorruption(t, s)
	}
}

func testSnapshotCorruption(t *testing.T, s *Snapshot) {
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Every truncation is an error.
	for n := 0; n < len(b); n += 1 + n/50 {
		if _, err := Decode(bytes.NewReader(b[:n])); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	// Every single flipped byte is an error (checksum or structure).
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x5a
		if _, err := Decode(bytes.NewReader(c)); err == nil {
			t.Fatalf("byte %d flipped: no error", i)
		}
	}
}

func FuzzSnapshotDecode(f *testing.F) {
	var buf bytes.Buffer
	if err := sampleSnapshot(f).Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:60])
	var slim bytes.Buffer
	if err := sampleSnapshot(f).Slim().Encode(&slim); err != nil {
		f.Fatal(err)
	}
	f.Add(slim.Bytes())
	f.Add([]byte("KAIROSM\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("decoded an invalid snapshot: %v", err)
		}
	})
}

// A row beyond the item table (the catalog knows the item, this model has
// not grown to it) reads as zero factors, not a panic.
func TestItemFactorsBeyondTable(t *testing.T) {
	o := mustOnline(t, clusteredModel(10, 8, 2, 1), nil)
	got := o.ItemFactors(make([]float32, 3), 25)
	if len(got) != 8 {
		t.Fatalf("len %d, want K = 8", len(got))
	}
	for f, v := range got {
		if v != 0 {
			t.Fatalf("factor %d of an unknown row is %v, want 0", f, v)
		}
	}
	if in := o.ItemFactors(nil, 4); len(in) != 8 || isZero32(in) {
		t.Fatalf("row 4 of the table: %v", in)
	}
}

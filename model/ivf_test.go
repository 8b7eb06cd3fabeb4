package model

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// clusteredModel generates item factors with latent structure like trained
// ALS factors: items around topic centres, norms skewed like popularity.
func clusteredModel(n, k, topics int, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 3))
	centres := randomFactors(topics, k, 1, rng)
	m := randomModel(1, k, seed)
	m.Items = NewFactors(n, k)
	for i := range n {
		c := centres.Row(rng.IntN(topics))
		scale := float32(0.2 + rng.ExpFloat64())
		for f := range k {
			m.Items.Row(i)[f] = scale * (c[f] + float32(0.5*rng.NormFloat64()))
		}
	}
	return m
}

// userQueries mixes three random items plus noise, like a user who liked
// items of several topics.
func userQueries(o *Online, n, count int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	k := o.K()
	var qs [][]float32
	for range count {
		q := make([]float32, k)
		for range 3 {
			for f, v := range o.ItemFactors(nil, rng.IntN(n)) {
				q[f] += v
			}
		}
		for f := range q {
			q[f] += float32(rng.NormFloat64() * 0.3)
		}
		qs = append(qs, q)
	}
	return qs
}

func recallAt(t testing.TB, o *Online, queries [][]float32, n int, p IVFSearch) float64 {
	t.Helper()
	var s Scorer
	hits, total := 0, 0
	for _, q := range queries {
		exact := o.TopK(&s, nil, Query{Vector: q, N: n})
		approx, ok := o.TopKApprox(&s, nil, Query{Vector: q, N: n}, p)
		if !ok {
			t.Fatal("no approximate index")
		}
		hits += overlap(exact, approx)
		total += len(exact)
	}
	return float64(hits) / float64(total)
}

func overlap(a, b []Scored) int {
	in := map[int32]bool{}
	for _, e := range a {
		in[e.Item] = true
	}
	n := 0
	for _, e := range b {
		if in[e.Item] {
			n++
		}
	}
	return n
}

func mustBuild(t testing.TB, o *Online, p IVFParams) IndexInfo {
	t.Helper()
	if err := o.BuildIndex(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	info, ok := o.IndexInfo()
	if !ok {
		t.Fatal("no index after BuildIndex")
	}
	return info
}

func TestIVFRecallAndExactScores(t *testing.T) {
	m := clusteredModel(20_000, 32, 50, 1)
	o := mustOnline(t, m, nil)
	info := mustBuild(t, o, IVFParams{Seed: 1})
	if info.Lists != AutoLists(20_000) || info.Items != 20_000 || info.Overflow != 0 {
		t.Fatalf("index %+v, want %d lists holding every item", info, AutoLists(20_000))
	}
	queries := userQueries(o, 20_000, 200, 2)
	r := recallAt(t, o, queries, 10, IVFSearch{})
	t.Logf("recall@10 with the automatic parameters (%d of %d lists): %.3f", AutoProbe(info.Lists), info.Lists, r)
	if r < 0.95 {
		t.Fatalf("recall@10 = %.3f, want >= 0.95", r)
	}
	// Scores are the exact inner products (re-ranked in float32: equal to
	// a float64 sum up to float32 rounding).
	var s Scorer
	for _, q := range queries[:20] {
		top, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 10}, IVFSearch{})
		for _, c := range top {
			if want := dot32f(q, m.Items.Row(int(c.Item))); math.Abs(float64(c.Score)-want) > 1e-5*math.Abs(want) {
				t.Fatalf("item %d scored %v, exact %v", c.Item, c.Score, want)
			}
		}
	}
	// Probing every list with a shortlist of every item is exact.
	if r := recallAt(t, o, queries[:20], 10, IVFSearch{Probe: info.Lists, Shortlist: 20_000}); r != 1 {
		t.Fatalf("recall with every list probed = %.3f, want 1", r)
	}
}

func TestIVFKeepAndExclude(t *testing.T) {
	m := clusteredModel(5000, 16, 20, 3)
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Seed: 1})
	q := userQueries(o, 5000, 1, 4)[0]
	var s Scorer
	first, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 5}, IVFSearch{})
	ex := NewBitset(5000)
	ex.Set(int(first[0].Item))
	odd := func(row int) bool { return row%2 == 1 }
	top, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 5, Exclude: ex, Keep: odd}, IVFSearch{})
	if len(top) != 5 {
		t.Fatalf("%d results, want 5", len(top))
	}
	for _, c := range top {
		if c.Item == first[0].Item || c.Item%2 != 1 {
			t.Fatalf("result %d is excluded or rejected by the predicate", c.Item)
		}
	}
}

// A row whose factors become zero after the build stays in its list with
// a zero scale; the scan never returns it, whatever the query asks for
// (every list probed, every item asked for).
func TestIVFSkipsEmptiedRows(t *testing.T) {
	m := clusteredModel(3000, 16, 10, 5)
	o := mustOnline(t, m, nil)
	info := mustBuild(t, o, IVFParams{Seed: 1})
	empty := map[int32]bool{3: true, 1500: true, 2999: true}
	for row := range empty {
		if err := o.SetItems([]ItemRowState{{Row: row, Factors: make([]float32, 16)}}); err != nil {
			t.Fatal(err)
		}
	}
	var s Scorer
	for _, q := range userQueries(o, 3000, 5, 6) {
		top, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 3000}, IVFSearch{Probe: info.Lists, Shortlist: 3000})
		if len(top) != 3000-len(empty) {
			t.Fatalf("%d results of every list, want %d (all but the emptied rows)", len(top), 3000-len(empty))
		}
		for _, c := range top {
			if empty[c.Item] {
				t.Fatalf("emptied row %d returned with score %v", c.Item, c.Score)
			}
		}
	}
}

func TestIVFFollowsUpdates(t *testing.T) {
	m := clusteredModel(2000, 16, 10, 4)
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Lists: 20, Seed: 1})
	// Move item 7 to be the best match of a query; add a brand-new item.
	q := make([]float32, 16)
	q[0] = 1
	big := make([]float32, 16)
	big[0] = 100
	if err := o.SetItems([]ItemRowState{{Row: 7, Factors: big}, {Row: 2000, Factors: append([]float32(nil), big...)}}); err != nil {
		t.Fatal(err)
	}
	big[0] = 200
	if err := o.SetItems([]ItemRowState{{Row: 2000, Factors: big}}); err != nil {
		t.Fatal(err)
	}
	var s Scorer
	check := func(when string, probe int) {
		t.Helper()
		top, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 2}, IVFSearch{Probe: probe})
		if len(top) != 2 || top[0].Item != 2000 || top[0].Score != 200 || top[1].Item != 7 {
			t.Fatalf("%s: top %v, want the new item 2000 (200) then the moved item 7", when, top)
		}
	}
	check("before the refresh", 20) // item 7 is still in its old list
	if info, _ := o.IndexInfo(); info.Overflow != 1 || info.Dirty != 2 {
		t.Fatalf("index %+v, want the new item in the overflow and two dirty items", info)
	}
	moved, assigned := o.RefreshIndex(100)
	info, _ := o.IndexInfo()
	if assigned != 1 || info.Overflow != 0 || info.Dirty != 0 || info.Items != 2001 || info.Moved != moved {
		t.Fatalf("refresh moved %d, assigned %d; index %+v: want the new item in a list", moved, assigned, info)
	}
	check("after the refresh", 1)
}

// An item that moves to another topic changes list at the refresh, and is
// then found by a query of its new topic probing one list.
func TestIVFMovesItemsBetweenLists(t *testing.T) {
	m := clusteredModel(4000, 16, 8, 5)
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Lists: 8, Seed: 1})
	var s Scorer
	far := o.ItemFactors(nil, 11)
	var row int
	for row = 12; row < 4000; row++ { // an item of another list
		if o.ivf.listOf[row] != o.ivf.listOf[11] {
			break
		}
	}
	target := o.ItemFactors(nil, row)
	for f := range target {
		target[f] *= 3 // the longest of its topic: the best match of its direction
	}
	if err := o.SetItems([]ItemRowState{{Row: 11, Factors: target}}); err != nil {
		t.Fatal(err)
	}
	if moved, _ := o.RefreshIndex(10); moved != 1 {
		t.Fatalf("moved %d items, want 1", moved)
	}
	if o.ivf.listOf[11] != o.ivf.listOf[row] {
		t.Fatalf("item 11 in list %d, want %d (its new topic's)", o.ivf.listOf[11], o.ivf.listOf[row])
	}
	top, _ := o.TopKApprox(&s, nil, Query{Vector: target, N: 1}, IVFSearch{Probe: 1})
	if len(top) != 1 || top[0].Item != 11 {
		t.Fatalf("top %v, want item 11", top)
	}
	_ = far
}

func TestIndexEncodeLoad(t *testing.T) {
	m := clusteredModel(3000, 16, 10, 6)
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Seed: 1})
	b := o.EncodeIndex()
	o2 := mustOnline(t, m, nil)
	// One more item in the model loading it: it waits in the overflow.
	if err := o2.SetItems([]ItemRowState{{Row: 3000, Factors: m.Items.Row(5)}}); err != nil {
		t.Fatal(err)
	}
	if err := o2.LoadIndex(b); err != nil {
		t.Fatal(err)
	}
	info, _ := o2.IndexInfo()
	if want, _ := o.IndexInfo(); info.Lists != want.Lists || info.Items != 3000 || info.Overflow != 1 {
		t.Fatalf("loaded index %+v, want %d lists, 3000 items and one in the overflow", info, want.Lists)
	}
	var s1, s2 Scorer
	for _, q := range userQueries(o, 3000, 20, 7) {
		a, _ := o.TopKApprox(&s1, nil, Query{Vector: q, N: 10}, IVFSearch{Probe: 3})
		c, _ := o2.TopKApprox(&s2, nil, Query{Vector: q, N: 10, Exclude: func() Bitset { e := NewBitset(3001); e.Set(3000); return e }()}, IVFSearch{Probe: 3})
		if overlap(a, c) != len(a) {
			t.Fatalf("loaded index answers %v, built %v", c, a)
		}
	}
	cents := len(indexMagic) + 16 + 4*4*4 + 4*info.Lists*17
	if !bytes.Equal(o2.EncodeIndex()[len(indexMagic)+16:cents], b[len(indexMagic)+16:cents]) {
		t.Fatal("the loaded index encodes other centroids")
	}
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": b[:len(b)-3],
		"other k":   mustOnlineIndex(t, clusteredModel(100, 8, 2, 1)),
	} {
		if err := o2.LoadIndex(bad); err == nil {
			t.Errorf("%s: LoadIndex accepted it", name)
		}
	}
}

func mustOnlineIndex(t *testing.T, m *Model) []byte {
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Seed: 1})
	return o.EncodeIndex()
}

// Similar items through the index agree with the exact cosine ranking.
func TestSimilarApprox(t *testing.T) {
	m := clusteredModel(20_000, 32, 50, 8)
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Seed: 1})
	var s Scorer
	hits, total := 0, 0
	for i := 0; i < 20_000; i += 200 {
		exact, _ := o.Similar(&s, nil, i, 10, nil, nil)
		approx, err := o.SimilarApprox(&s, nil, i, 10, nil, nil, IVFSearch{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range approx {
			if c.Item == int32(i) || math.Abs(float64(c.Score)) > 1.0001 {
				t.Fatalf("similar to %d: %v (itself, or not a cosine)", i, c)
			}
		}
		hits += overlap(exact, approx)
		total += len(exact)
	}
	r := float64(hits) / float64(total)
	t.Logf("similar items recall@10: %.3f", r)
	if r < 0.9 {
		t.Fatalf("similar items recall@10 = %.3f, want >= 0.9", r)
	}
}

var _ = rand.New

// TestIndexLoadWhileUpdating: LoadIndex runs beside writers (the engine
// loads the saved index in the background while it learns); the rows
// changed during the load, and a row added meanwhile, are in the index
// as they are at the end, exactly as if it had been loaded afterwards.
func TestIndexLoadWhileUpdating(t *testing.T) {
	m := clusteredModel(40_000, 16, 20, 3)
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Seed: 1})
	b := o.EncodeIndex()
	o2 := mustOnline(t, m, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 400 {
			row := int32((i * 97) % 40_000)
			if err := o2.SetItems([]ItemRowState{{Row: row, Factors: m.Items.Row(int(row+1) % 40_000)}}); err != nil {
				t.Error(err)
				return
			}
		}
		if err := o2.SetItems([]ItemRowState{{Row: 40_000, Factors: m.Items.Row(5)}}); err != nil {
			t.Error(err)
		}
	}()
	if err := o2.LoadIndex(b); err != nil {
		t.Fatal(err)
	}
	<-done
	info, _ := o2.IndexInfo()
	if info.Items+info.Overflow != 40_001 {
		t.Fatalf("loaded index %+v: %d rows, want 40,001", info, info.Items+info.Overflow)
	}
	x := o2.ivf
	codes := make([]int8, x.kp)
	for row := range 40_001 {
		l := x.listOf[row]
		if l < 0 {
			continue
		}
		j := int(x.slotOf[row])
		ls := x.lists[l]
		scale := quantize(codes, o2.items.Row(row))
		if ls.rows[j] != int32(row) || ls.scales[j] != scale || !slices.Equal(ls.codes[j*x.kp:(j+1)*x.kp], codes) {
			t.Fatalf("row %d: its index code is not that of its current factors", row)
		}
	}
}

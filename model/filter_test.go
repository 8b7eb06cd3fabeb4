package model

import (
	"math"
	"slices"
	"testing"
)

// bruteTop is the reference: every row scored, kept, boosted, sorted.
func bruteTop(o *Online, q Query) []Scored {
	var all []Scored
	for i := range o.Len() {
		y := o.ItemFactors(nil, i)
		if isZero32(y) || q.Exclude.Has(i) || (q.Keep != nil && !q.Keep(i)) {
			continue
		}
		if q.Rows != nil && !slices.Contains(q.Rows, int32(i)) {
			continue
		}
		v := float32(dot32f(q.Vector, y))
		if q.LogBoost != nil {
			v += q.LogBoost[i]
		}
		all = append(all, Scored{Item: int32(i), Score: v})
	}
	slices.SortFunc(all, func(a, b Scored) int {
		if less(a, b) {
			return 1
		}
		if less(b, a) {
			return -1
		}
		return 0
	})
	return all[:min(q.N, len(all))]
}

func isZero32(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

func sameItems(a, b []Scored) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Item != b[i].Item {
			return false
		}
	}
	return true
}

// TestRowsAndBoostExact checks the exact paths (topK, batched, SelectTopQ)
// against brute force with a selective row list and a boost.
func TestRowsAndBoostExact(t *testing.T) {
	const n = 3000
	m := clusteredModel(n, 16, 10, 5)
	o := mustOnline(t, m, nil)
	q := userQueries(o, n, 1, 6)[0]
	var rows []int32
	boost := make([]float32, n)
	for i := range n {
		if i%37 == 0 {
			rows = append(rows, int32(i))
		}
		if i%5 == 0 {
			boost[i] = float32(math.Log(4))
		}
	}
	keep := func(i int) bool { return i%37 == 0 }
	var s Scorer
	for _, c := range []struct {
		name string
		q    Query
	}{
		{"keep", Query{Vector: q, N: 10, Keep: keep}},
		{"rows", Query{Vector: q, N: 10, Rows: rows, Keep: keep}},
		{"boost", Query{Vector: q, N: 10, LogBoost: boost}},
		{"rows+boost", Query{Vector: q, N: 10, Rows: rows, Keep: keep, LogBoost: boost}},
		{"more than qualify", Query{Vector: q, N: 200, Rows: rows, Keep: keep}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := bruteTop(o, c.q)
			if got := o.TopK(&s, nil, c.q); !sameItems(got, want) {
				t.Fatalf("TopK %v, want %v", got, want)
			}
			if got := o.TopKBatched(&s, nil, c.q); !sameItems(got, want) {
				t.Fatalf("TopKBatched %v, want %v", got, want)
			}
		})
	}
	// Everything that qualifies comes back when fewer than N do.
	if got := o.TopK(&s, nil, Query{Vector: q, N: 200, Rows: rows}); len(got) != len(rows) {
		t.Fatalf("%d results of %d qualifying rows", len(got), len(rows))
	}
	// The boost changes the order: without it the boosted rows are not
	// all on top.
	plain := o.TopK(&s, nil, Query{Vector: q, N: 10})
	boosted := o.TopK(&s, nil, Query{Vector: q, N: 10, LogBoost: boost})

	if sameItems(plain, boosted) {
		t.Fatal("a boost of ×4 on a fifth of the items left the top 10 as it was")
	}
	// SelectTopQ over precomputed scores.
	scores := make([]float32, n)
	for i := range scores {
		scores[i] = float32(i%101) - 50
	}
	mult := make([]float32, n)
	for i := range mult {
		mult[i] = 1 + float32(i%3)
	}
	got := s.SelectTopQ(nil, scores, Query{N: 5, Rows: rows, Boost: mult})
	for _, g := range got {
		if g.Item%37 != 0 {
			t.Fatalf("SelectTopQ returned row %d outside Rows", g.Item)
		}
		if want := scores[g.Item] * mult[g.Item]; g.Score != want {
			t.Fatalf("row %d scored %v, want boosted %v", g.Item, g.Score, want)
		}
	}
}

// TestIVFBoostAndRows checks the index honours the boost (scores are the
// exact boosted ones) and answers a row list exactly.
func TestIVFBoostAndRows(t *testing.T) {
	const n = 5000
	m := clusteredModel(n, 16, 20, 7)
	o := mustOnline(t, m, nil)
	mustBuild(t, o, IVFParams{Seed: 1})
	q := userQueries(o, n, 1, 8)[0]
	boost := make([]float32, n)
	var rows []int32
	for i := range n {
		if i%3 == 0 {
			boost[i] = float32(math.Log(10))
		}
		if i%97 == 0 {
			rows = append(rows, int32(i))
		}
	}
	var s Scorer
	top, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 10, LogBoost: boost}, IVFSearch{})
	if len(top) != 10 {
		t.Fatalf("%d results", len(top))
	}
	for _, c := range top {
		want := float32(dot32f(q, m.Items.Row(int(c.Item)))) + boost[c.Item]
		if d := float64(c.Score - want); math.Abs(d) > 1e-5*math.Abs(float64(want)) {
			t.Fatalf("item %d scored %v, want %v", c.Item, c.Score, want)
		}
	}
	exact := bruteTop(o, Query{Vector: q, N: 10, LogBoost: boost})
	if ov := overlap(exact, top); ov < 8 {
		t.Fatalf("boosted approximate top 10 shares %d items with the exact one", ov)
	}
	// A row list is answered exactly, with every row when fewer qualify.
	want := bruteTop(o, Query{Vector: q, N: 100, Rows: rows})
	got, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 100, Rows: rows}, IVFSearch{})
	if !sameItems(got, want) || len(got) != len(rows) {
		t.Fatalf("rows through the index: %d results, want the %d exact ones", len(got), len(want))
	}
	// Similar items with rows.
	sim, err := o.SimilarApproxQ(&s, nil, int(rows[0]), Query{N: 100, Rows: rows}, IVFSearch{})
	if err != nil || len(sim) != len(rows)-1 {
		t.Fatalf("similar over rows: %d results (%v), want %d", len(sim), err, len(rows)-1)
	}
}

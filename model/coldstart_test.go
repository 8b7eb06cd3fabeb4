package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBlendConfidence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kappa float64
		n     int
		want  float64
	}{
		{"no events", 2, 0, 0},
		{"negative events", 2, -1, 0},
		{"kappa 0 is fold-in only", 0, 1, 1},
		{"half at kappa", 2, 2, 0.5},
		{"grows", 2, 6, 0.75},
		{"fractional kappa", 0.5, 1, 2.0 / 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Blend{Kappa: tc.kappa}).Confidence(tc.n); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("Confidence(%d) with κ=%v = %v, want %v", tc.n, tc.kappa, got, tc.want)
			}
		})
	}
}

// argmax returns the row with the largest score (smallest row on ties).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func TestBlendScores(t *testing.T) {
	// Item 1 is the personal favourite, item 2 the page item's nearest
	// neighbour, item 3 the trending one; item 0 is excluded and would win
	// every part.
	personal := []float32{9, 5, 1, 1, 0, 0}
	item := []float32{1, 0, 0.9, 0, 0.1, 0}
	trend := []float32{100, 0, 0, 60, 1, 2}
	ex := NewBitset(6)
	ex.Set(0)
	for _, tc := range []struct {
		name string
		b    Blend
		in   BlendInput
		want int
	}{
		{"no events: page item", Blend{Kappa: 1, Trending: 0.2}, BlendInput{Personal: personal, Item: item, Trending: trend, Exclude: ex}, 2},
		{"no events, no page item: trending", Blend{Kappa: 1}, BlendInput{Personal: personal, Trending: trend, Exclude: ex}, 3},
		{"no events, trending share 1", Blend{Kappa: 1, Trending: 1}, BlendInput{Item: item, Trending: trend, Exclude: ex}, 3},
		{"many events: personal", Blend{Kappa: 1, Trending: 0.2}, BlendInput{Personal: personal, Item: item, Trending: trend, Events: 50, Exclude: ex}, 1},
		{"kappa 0: personal from the first event", Blend{}, BlendInput{Personal: personal, Item: item, Trending: trend, Events: 1, Exclude: ex}, 1},
		{"huge kappa: context still", Blend{Kappa: 1e6}, BlendInput{Personal: personal, Item: item, Events: 3, Exclude: ex}, 2},
		{"events but no personal scores", Blend{}, BlendInput{Item: item, Events: 3, Exclude: ex}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.b.Scores(nil, tc.in)
			if len(got) != 6 {
				t.Fatalf("got %d scores, want 6", len(got))
			}
			if !math.IsInf(float64(got[0]), -1) {
				t.Fatalf("excluded row scores %v, want -Inf", got[0])
			}
			if a := argmax(got); a != tc.want {
				t.Fatalf("best row %d (scores %v), want %d", a, got, tc.want)
			}
		})
	}
}

func TestBlendNeverEmpty(t *testing.T) {
	// A visitor with no events on a site with no trending data yet and no
	// page item: every active item is still a candidate with a finite
	// score, so top-K answers as long as the catalogue has active items.
	ex := NewBitset(6)
	ex.Set(1) // inactive
	for _, in := range []BlendInput{
		{Exclude: ex, Trending: make([]float32, 6)},
		{Exclude: ex, Personal: make([]float32, 6), Item: make([]float32, 6), Trending: make([]float32, 6), Events: 2},
	} {
		scores := DefaultBlend().Scores(nil, in)
		var s Scorer
		top := s.SelectTop(nil, scores, 10, ex, nil)
		if len(top) != 5 {
			t.Fatalf("top-K of %v: %v, want the 5 active items", scores, top)
		}
	}
}

func TestBlendIsScaleFree(t *testing.T) {
	// Standardisation makes the blend depend on each vector's shape, not
	// its units: scaling or shifting a part leaves the scores unchanged.
	rng := rand.New(rand.NewPCG(3, 3))
	n := 200
	personal, item, trend := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range n {
		personal[i] = float32(rng.NormFloat64())
		item[i] = float32(rng.Float64()*2 - 1)
		trend[i] = float32(rng.ExpFloat64() * 10)
	}
	ex := NewBitset(n)
	ex.Set(5)
	ex.Set(17)
	b := Blend{Kappa: 2, Trending: 0.3}
	base := b.Scores(nil, BlendInput{Personal: personal, Item: item, Trending: trend, Events: 3, Exclude: ex})
	scaled := make([]float32, n)
	for i, v := range personal {
		scaled[i] = 1000*v + 7
	}
	// An excluded row's extreme value must not change the others either.
	scaled[5] = 1e9
	got := b.Scores(make([]float32, 0, n), BlendInput{Personal: scaled, Item: item, Trending: trend, Events: 3, Exclude: ex})
	for i := range n {
		if ex.Has(i) {
			continue
		}
		if math.Abs(float64(got[i]-base[i])) > 1e-4 {
			t.Fatalf("row %d: %v after rescaling, %v before", i, got[i], base[i])
		}
	}
	// w(3) = 0.6 of the standardised personal part, 0.4·0.7 of the item
	// part, 0.4·0.3 of the logged trending part: check one row by hand.
	z := func(v []float32, logged bool) []float64 {
		var xs []float64
		for i, x := range v {
			if !ex.Has(i) {
				f := float64(x)
				if logged {
					f = math.Log1p(f)
				}
				xs = append(xs, f)
			}
		}
		var m, s float64
		for _, x := range xs {
			m += x
		}
		m /= float64(len(xs))
		for _, x := range xs {
			s += (x - m) * (x - m)
		}
		s = math.Sqrt(s / float64(len(xs)))
		out := make([]float64, n)
		for i, x := range v {
			f := float64(x)
			if logged {
				f = math.Log1p(f)
			}
			out[i] = (f - m) / s
		}
		return out
	}
	zp, zi, zt := z(personal, false), z(item, false), z(trend, true)
	for _, i := range []int{0, 42, 199} {
		want := 0.6*zp[i] + 0.4*0.7*zi[i] + 0.4*0.3*zt[i]
		if math.Abs(float64(base[i])-want) > 1e-4 {
			t.Fatalf("row %d: %v, want %v", i, base[i], want)
		}
	}
}

func TestMixOfStandardizedPartsIsScores(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	n := 300
	personal, item, trend := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range n {
		personal[i], item[i], trend[i] = float32(rng.NormFloat64()), float32(rng.Float64()), float32(rng.ExpFloat64()*5)
	}
	trend[7] = float32(math.NaN()) // a broken entry counts as the mean
	ex := NewBitset(n)
	ex.Set(3)
	for _, tc := range []struct {
		name string
		in   BlendInput
	}{
		{"all parts", BlendInput{Personal: personal, Item: item, Trending: trend, Events: 2, Exclude: ex}},
		{"no page item", BlendInput{Personal: personal, Trending: trend, Events: 1, Exclude: ex}},
		{"no trending", BlendInput{Personal: personal, Item: item, Events: 5}},
		{"context only", BlendInput{Item: item, Trending: trend, Exclude: ex}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Blend{Kappa: 3, Trending: 0.4}
			want := b.Scores(nil, tc.in)
			z := tc.in
			if z.Personal != nil {
				z.Personal = Standardize(nil, z.Personal, z.Exclude, false)
			}
			if z.Item != nil {
				z.Item = Standardize(nil, z.Item, z.Exclude, false)
			}
			if z.Trending != nil {
				z.Trending = Standardize(nil, z.Trending, z.Exclude, true)
			}
			got := b.Mix(nil, z)
			for i := range want {
				if got[i] != want[i] && math.Abs(float64(got[i]-want[i])) > 1e-5 {
					t.Fatalf("row %d: Mix %v, Scores %v", i, got[i], want[i])
				}
			}
			if tc.in.Exclude.Has(3) && !math.IsInf(float64(got[3]), -1) {
				t.Fatalf("excluded row scores %v", got[3])
			}
		})
	}
}

func TestStandardize(t *testing.T) {
	ex := NewBitset(5)
	ex.Set(4)
	got := Standardize(nil, []float32{1, 2, 3, float32(math.Inf(1)), 100}, ex, false)
	// Mean 2, population sd √(2/3) over rows 0-2; the infinite row gives 0,
	// the excluded row is standardised but does not move the moments.
	s := math.Sqrt(2.0 / 3)
	want := []float64{-1 / s, 0, 1 / s, 0, 98 / s}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if got := Standardize(nil, []float32{4, 4, 4}, nil, true); got[0] != 0 || got[2] != 0 {
		t.Fatalf("a constant vector standardises to %v, want zeros", got)
	}
	if got := Standardize(nil, []float32{math.E - 1, -5, 0}, nil, true); math.Abs(float64(got[0])-math.Sqrt2) > 1e-5 {
		// log1p: 1, 0 (negative clamped), 0: mean 1/3, sd √2/3.
		t.Fatalf("logged: %v, want row 0 at √2", got)
	}
}

func TestBlendScoresDoesNotAllocate(t *testing.T) {
	n := 5000
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i % 97)
	}
	dst := make([]float32, n)
	b := DefaultBlend()
	in := BlendInput{Personal: v, Item: v, Trending: v, Events: 2}
	if a := testing.AllocsPerRun(10, func() { dst = b.Scores(dst, in) }); a != 0 {
		t.Fatalf("Scores allocates %.1f times per call", a)
	}
}

func TestScoreAll(t *testing.T) {
	mod := randomModel(1500, 8, 4)
	clear(mod.Items.Row(7)) // an item without factors
	o := mustOnline(t, mod, nil)
	q := o.ItemFactors(nil, 3)
	for _, cosine := range []bool{false, true} {
		got := o.ScoreAll(nil, q, cosine)
		if len(got) != 1500 {
			t.Fatalf("%d scores, want 1500", len(got))
		}
		for i := range 1500 {
			want := dot32f(q, mod.Items.Row(i))
			if cosine && i != 7 {
				want /= float64(norm32(q)) * float64(norm32(mod.Items.Row(i)))
			}
			if math.Abs(float64(got[i])-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("cosine=%v row %d: %v, want %v", cosine, i, got[i], want)
			}
		}
		if got[7] != 0 {
			t.Fatalf("row without factors scores %v", got[7])
		}
		if cosine && math.Abs(float64(got[3])-1) > 1e-5 {
			t.Fatalf("self-similarity %v, want 1", got[3])
		}
	}
}

func TestTagPriorFormula(t *testing.T) {
	items := &Factors{K: 2, Data: []float32{
		1, 0, // 0: a
		3, 0, // 1: a, b
		0, 2, // 2: b
		0, 0, // 3: no factors (unknown)
		0, 4, // 4: no tags
	}}
	tags := [][]string{{"a"}, {"a", "b", "a"}, {"b"}, {"a", "b"}}
	mean := []float64{4.0 / 4, 6.0 / 4} // over rows 0, 1, 2, 4
	for _, tc := range []struct {
		name string
		tags []string
		s    float64
		want []float64
	}{
		{"one tag, no shrinkage: the mean of its items", []string{"a"}, 0, []float64{2, 0}},
		{"one tag, shrinkage pulls to the mean", []string{"a"}, 2, []float64{(4 + 2*mean[0]) / 4, (0 + 2*mean[1]) / 4}},
		{"repeated tag counts once", []string{"b", "b"}, 0, []float64{1.5, 1}},
		// Residuals from ȳ=(1,1.5): R_a=(2,-3), R_b=(1,-1); C=[[2,1],[1,2]].
		// W = C⁻¹R: w_a=(1,-5/3), w_b=(0,1/3); y = ȳ + w_a + w_b.
		{"two tags fitted jointly", []string{"a", "b"}, 0, []float64{2, 1.0 / 6}},
		// (C+I)⁻¹ = [[3,-1],[-1,3]]/8: w_a=(5/8,-1), w_b=(1/8,0).
		{"two tags with shrinkage", []string{"b", "a"}, 1, []float64{1.75, 0.5}},
		{"unknown tag: the average item", []string{"zzz"}, 2, mean},
		{"unknown tag ignored beside a known one", []string{"zzz", "a"}, 0, []float64{2, 0}},
		{"no tags: the average item", nil, 0, mean},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ProvisionalFactors(nil, items, tags, nil, tc.tags, tc.s)
			for f := range tc.want {
				if math.Abs(float64(got[f])-tc.want[f]) > 1e-5 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
	p := NewTagPrior(items, tags, nil, 0)
	if p.Count("a") != 2 || p.Count("b") != 2 {
		t.Fatalf("counts a=%d b=%d, want 2 and 2 (the unknown row 3 does not count)", p.Count("a"), p.Count("b"))
	}
	// known overrides the non-zero rule.
	only0 := NewTagPrior(items, tags, func(i int) bool { return i == 1 }, 0)
	if got := only0.Factors(nil, []string{"a"}); got[0] != 3 || got[1] != 0 {
		t.Fatalf("with only row 1 known: %v, want [3 0]", got)
	}
}

func TestTagPriorCollinearTags(t *testing.T) {
	// Two tags that always occur together make the unshrunk normal
	// equations singular; the fit must still give the items' mean.
	items := &Factors{K: 2, Data: []float32{1, 2, 3, 4, 5, 0}}
	tags := [][]string{{"x", "y"}, {"y", "x"}, {"x", "y"}}
	got := ProvisionalFactors(nil, items, tags, nil, []string{"x", "y"}, 0)
	if math.Abs(float64(got[0])-3) > 1e-4 || math.Abs(float64(got[1])-2) > 1e-4 {
		t.Fatalf("got %v, want the mean [3 2]", got)
	}
}

func TestProvisionalFactorsPlaceNewItemInItsCluster(t *testing.T) {
	// Items are tagged with their planted cluster. A new item of cluster c
	// placed by its tag must be nearest to cluster c's items, and rank
	// high for cluster c's users and low for the others'.
	const clusters = 4
	m, clusterOfUser, clusterOfItem := planted(t, clusters, 40, 25, 8, 11)
	mod := mustTrain(t, m, testParams(8))
	tags := make([][]string, m.Items())
	for i := range tags {
		tags[i] = []string{"cluster" + string(rune('A'+clusterOfItem(i))), "all"}
	}
	prior := NewTagPrior(mod.Items, tags, nil, DefaultTagShrinkage)
	o := mustOnline(t, mod, ItemStatsFromMatrix(mod, m))
	newRow := m.Items()
	for c := range clusters {
		t.Run(string(rune('A'+c)), func(t *testing.T) {
			y := prior.Factors(nil, []string{"cluster" + string(rune('A'+c)), "all"})
			if err := o.SetItems([]ItemRowState{{Row: int32(newRow), Factors: y}}); err != nil {
				t.Fatal(err)
			}
			var s Scorer
			near, err := o.Similar(&s, nil, newRow, 10, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for r, e := range near {
				if clusterOfItem(int(e.Item)) != c {
					t.Fatalf("neighbour %d is item %d of cluster %d, want %d", r+1, e.Item, clusterOfItem(int(e.Item)), c)
				}
			}
			var in, out []int
			for u := range m.Users() {
				scores := o.ScoreAll(nil, mod.Users.Row(u), false)
				r := 1
				for i, v := range scores[:newRow] {
					if v >= scores[newRow] && i != newRow {
						r++
					}
				}
				if clusterOfUser(u) == c {
					in = append(in, r)
				} else {
					out = append(out, r)
				}
			}
			slices.Sort(in)
			slices.Sort(out)
			// Median rank among its own cluster's users within the
			// cluster's 25 items; among others', below every item of
			// their own cluster.
			if med := in[len(in)/2]; med > 25 {
				t.Errorf("median rank %d for the cluster's users, want ≤ 25", med)
			}
			if med := out[len(out)/2]; med <= 25 {
				t.Errorf("median rank %d for other clusters' users, want > 25", med)
			}
		})
	}
}

func BenchmarkBlendScores(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			personal, item, trend := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range n {
				personal[i], item[i], trend[i] = float32(rng.NormFloat64()), float32(rng.Float64()), float32(rng.ExpFloat64())
			}
			ex := NewBitset(n)
			for range 50 {
				ex.Set(rng.IntN(n))
			}
			dst := make([]float32, n)
			bl := DefaultBlend()
			in := BlendInput{Personal: personal, Item: item, Trending: trend, Events: 3, Exclude: ex}
			b.Run("scores", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					dst = bl.Scores(dst, in)
				}
			})
			// The engine's cached path: trending and the page item's
			// neighbours standardised beforehand, the visitor's fold-in
			// scores per request.
			z := in
			z.Item = Standardize(nil, item, nil, false)
			z.Trending = Standardize(nil, trend, nil, true)
			zp := make([]float32, n)
			b.Run("standardize+mix", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					z.Personal = Standardize(zp, personal, ex, false)
					dst = bl.Mix(dst, z)
				}
			})
		})
	}
}

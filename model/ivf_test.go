package model

import (
	"context"
	"fmt"
	"math/rand/v2"
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

func recallAt(t testing.TB, o *Online, queries [][]float32, n, nprobe int) float64 {
	var s Scorer
	hits, total := 0, 0
	for _, q := range queries {
		exact := o.TopK(&s, nil, Query{Vector: q, N: n})
		approx, ok := o.TopKApprox(&s, nil, Query{Vector: q, N: n}, nprobe)
		if !ok {
			t.Fatal("no approximate index")
		}
		in := map[int32]bool{}
		for _, e := range exact {
			in[e.Item] = true
		}
		for _, e := range approx {
			if in[e.Item] {
				hits++
			}
		}
		total += len(exact)
	}
	return float64(hits) / float64(total)
}

func TestIVFRecallAndExactScores(t *testing.T) {
	m := clusteredModel(20_000, 32, 50, 1)
	o := mustOnline(t, m, nil)
	if err := o.BuildIndex(context.Background(), IVFParams{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	queries := userQueries(o, 20_000, 200, 2)
	r := recallAt(t, o, queries, 10, 32)
	t.Logf("recall@10 with 32 of %d lists: %.3f", func() int { l, _, _ := o.IndexStats(); return l }(), r)
	if r < 0.95 {
		t.Fatalf("recall@10 = %.3f, want >= 0.95", r)
	}
	// Probing every list is exact.
	lists, _, _ := o.IndexStats()
	if r := recallAt(t, o, queries[:20], 10, lists); r != 1 {
		t.Fatalf("recall with every list probed = %.3f, want 1", r)
	}
}

func TestIVFFollowsUpdates(t *testing.T) {
	m := clusteredModel(2000, 8, 10, 4)
	o := mustOnline(t, m, nil)
	if err := o.BuildIndex(context.Background(), IVFParams{Lists: 20, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	// Move item 7 to be the best match of a query; add a brand-new item.
	q := make([]float32, 8)
	q[0] = 1
	big := make([]float32, 8)
	big[0] = 100
	if err := o.SetItems([]ItemRowState{{Row: 7, Factors: big}, {Row: 2000, Factors: append([]float32(nil), big...)}}); err != nil {
		t.Fatal(err)
	}
	big[0] = 200
	if err := o.SetItems([]ItemRowState{{Row: 2000, Factors: big}}); err != nil {
		t.Fatal(err)
	}
	var s Scorer
	top, _ := o.TopKApprox(&s, nil, Query{Vector: q, N: 2}, 20)
	if len(top) != 2 || top[0].Item != 2000 || top[0].Score != 200 || top[1].Item != 7 {
		t.Fatalf("top %v, want the new item 2000 (200) then the moved item 7", top)
	}
	if _, overflow, _ := o.IndexStats(); overflow != 1 {
		t.Fatalf("overflow = %d, want 1 (the new item)", overflow)
	}
}

func BenchmarkTopKApprox(b *testing.B) {
	for _, n := range []int{100_000} {
		for _, nprobe := range []int{16, 32, 64} {
			b.Run(fmt.Sprintf("items=%d/k=64/nprobe=%d", n, nprobe), func(b *testing.B) {
				o, _ := NewOnline(clusteredModel(n, 64, 200, 5), nil)
				if err := o.BuildIndex(context.Background(), IVFParams{Seed: 1}); err != nil {
					b.Fatal(err)
				}
				queries := userQueries(o, n, 200, 2)
				recall := recallAt(b, o, queries, 10, nprobe)
				var s Scorer
				dst := make([]Scored, 0, 10)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					dst, _ = o.TopKApprox(&s, dst, Query{Vector: queries[i%len(queries)], N: 10}, nprobe)
					i++
				}
				b.ReportMetric(recall, "recall@10")
			})
		}
	}
}

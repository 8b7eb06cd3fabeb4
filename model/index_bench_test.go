package model

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas/blas32"
)

// Benchmarks of serving at catalog scale (README, "Benchmarks"): exact
// top-K one query per scan, batched exact, and the index, over 100k and 1M
// items × 64 factors with topic structure, with the index's recall@10
// against exact; the index's recall on ALS factors trained on MovieLens
// latest-small; and its recall after a million item updates.

// scaleModels caches the generated, indexed models across counts.
var scaleModels = struct {
	sync.Mutex
	m map[int]*scaleModel
}{m: map[int]*scaleModel{}}

type scaleModel struct {
	o       *Online
	queries [][]float32
	build   time.Duration
}

// indexedModel returns n items × 64 factors around 200 topics (as kairos
// bench seed makes them), indexed
// with the automatic parameters, and 1,000 user-like queries.
func indexedModel(b *testing.B, n int) *scaleModel {
	scaleModels.Lock()
	defer scaleModels.Unlock()
	if m, ok := scaleModels.m[n]; ok {
		return m
	}
	o := mustOnline(b, clusteredModel(n, 64, 200, 5), nil)
	start := time.Now()
	if err := o.BuildIndex(context.Background(), IVFParams{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	m := &scaleModel{o: o, queries: userQueries(o, n, 1000, 2), build: time.Since(start)}
	scaleModels.m[n] = m
	return m
}

// BenchmarkServeScale: ns/op is per query, with 16 queries in flight
// (RunParallel), so that batching has company.
func BenchmarkServeScale(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		var m *scaleModel
		var o *Online
		run := func(b *testing.B, fn func(s *Scorer, dst []Scored, q Query) []Scored) {
			m = indexedModel(b, n)
			o = m.o
			b.ResetTimer()
			b.SetParallelism(8)
			b.ReportAllocs()
			var next sync.Mutex
			i := 0
			b.RunParallel(func(pb *testing.PB) {
				var s Scorer
				dst := make([]Scored, 0, 10)
				for pb.Next() {
					next.Lock()
					q := m.queries[i%len(m.queries)]
					i++
					next.Unlock()
					dst = fn(&s, dst, Query{Vector: q, N: 10})
				}
			})
		}
		b.Run(fmt.Sprintf("items=%d/exact", n), func(b *testing.B) {
			run(b, func(s *Scorer, dst []Scored, q Query) []Scored { return o.TopK(s, dst, q) })
		})
		b.Run(fmt.Sprintf("items=%d/batched", n), func(b *testing.B) {
			run(b, func(s *Scorer, dst []Scored, q Query) []Scored { return o.TopKBatched(s, dst, q) })
		})
		b.Run(fmt.Sprintf("items=%d/index", n), func(b *testing.B) {
			run(b, func(s *Scorer, dst []Scored, q Query) []Scored {
				top, _ := o.TopKApprox(s, dst, q, IVFSearch{})
				return top
			})
			b.StopTimer()
			info, _ := o.IndexInfo()
			b.ReportMetric(recallAt(b, o, m.queries[:200], 10, IVFSearch{}), "recall@10")
			b.ReportMetric(float64(AutoProbe(info.Lists)), "probed")
			b.ReportMetric(float64(info.Lists), "lists")
			b.ReportMetric(m.build.Seconds(), "build-s")
		})
	}
}

// BenchmarkIndexRecall measures recall@10 of the index against exact
// top-10 for ALS factors trained on MovieLens latest-small (every user's
// factors as a query), per probe setting; ns/op is one query.
func BenchmarkIndexRecall(b *testing.B) {
	mod, users := mlSmallModel(b)
	o := mustOnline(b, mod, nil)
	if err := o.BuildIndex(context.Background(), IVFParams{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	info, _ := o.IndexInfo()
	auto := AutoProbe(info.Lists)
	for _, probe := range []int{auto / 2, auto, 2 * auto} {
		b.Run(fmt.Sprintf("ml-latest-small/lists=%d/probe=%d", info.Lists, probe), func(b *testing.B) {
			p := IVFSearch{Probe: probe}
			var s Scorer
			dst := make([]Scored, 0, 10)
			i := 0
			for b.Loop() {
				dst, _ = o.TopKApprox(&s, dst, Query{Vector: users[i%len(users)], N: 10}, p)
				i++
			}
			b.StopTimer()
			b.ReportMetric(recallAt(b, o, users, 10, p), "recall@10")
		})
	}
}

// BenchmarkIndexUpdates applies a million fold-in item updates (Apply:
// one user event each) to a 100k-item indexed model, refreshing the index
// and reclustering it when a fifth of the items moved, as the engine does
// (engine/index.go), and reports the cost per update and the recall@10
// before, after, and as it would be without reclustering.
func BenchmarkIndexUpdates(b *testing.B) {
	const n, updates = 100_000, 1_000_000
	o := mustOnline(b, clusteredModel(n, 64, 200, 13), nil)
	// As the engine does: calibrate the probe count after every build.
	build := func(seed uint64) {
		if err := o.BuildIndex(context.Background(), IVFParams{Seed: seed}); err != nil {
			b.Fatal(err)
		}
		if _, err := o.CalibrateIndex(context.Background(), 0, 0, seed); err != nil {
			b.Fatal(err)
		}
	}
	build(1)
	queries := userQueries(o, n, 200, 3)
	before := recallAt(b, o, queries, 10, IVFSearch{})
	rng := rand.New(rand.NewPCG(5, 6))
	ws := NewWorkspace(64)
	var refresh time.Duration
	var stale float64 = -1
	rebuilds := 0
	b.ResetTimer()
	for range b.N {
		for u := 0; u < updates; u += 100 {
			ups := make([]Update, 100)
			for j := range ups {
				x := queries[rng.IntN(len(queries))]
				ups[j] = Update{User: x, OldUser: x, Items: []ItemDelta{{Item: int32(rng.IntN(n)), DeltaWeight: 1}}}
			}
			if err := o.Apply(ws, ups); err != nil {
				b.Fatal(err)
			}
			if u%10_000 == 0 {
				start := time.Now()
				o.RefreshIndex(50_000)
				refresh += time.Since(start)
				if info, _ := o.IndexInfo(); float64(info.Moved) > 0.2*n {
					if stale < 0 {
						b.StopTimer()
						stale = recallAt(b, o, userQueries(o, n, 200, 3), 10, IVFSearch{})
						b.StartTimer()
					}
					build(uint64(u) + 2)
					rebuilds++
				}
			}
		}
	}
	b.StopTimer()
	o.RefreshIndex(n)
	info, _ := o.IndexInfo()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*updates), "ns/update")
	b.ReportMetric(float64(refresh.Nanoseconds())/float64(b.N*updates), "refresh-ns/update")
	b.ReportMetric(before, "recall-before")
	b.ReportMetric(recallAt(b, o, userQueries(o, n, 200, 3), 10, IVFSearch{}), "recall-after")
	b.ReportMetric(float64(info.Moved), "moved-since-rebuild")
	b.ReportMetric(float64(rebuilds), "rebuilds")
	b.ReportMetric(stale, "recall-at-drift")
	b.ReportMetric(float64(info.Probe), "probed")
}

// mlSmallModel trains the project's ALS (default parameters) on MovieLens
// latest-small and returns the model and its users' factors.
func mlSmallModel(b *testing.B) (*Model, [][]float32) {
	path := "/work/shared/data/ml-latest-small/ratings.csv"
	if p := os.Getenv("KAIROS_ML_LATEST_SMALL"); p != "" {
		path = p
	}
	f, err := os.Open(path)
	if err != nil {
		b.Skipf("MovieLens latest-small not found (%v): set KAIROS_ML_LATEST_SMALL to its ratings.csv", err)
	}
	defer f.Close()
	users, items := map[string]int32{}, map[string]int32{}
	id := func(m map[string]int32, k string) int32 {
		if v, ok := m[k]; ok {
			return v
		}
		m[k] = int32(len(m))
		return m[k]
	}
	var triples []Interaction
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ",")
		if len(fs) < 3 {
			continue
		}
		r, err := strconv.ParseFloat(fs[2], 32)
		if err != nil {
			b.Fatalf("ratings.csv: %v", err)
		}
		triples = append(triples, Interaction{User: id(users, fs[0]), Item: id(items, fs[1]), Weight: float32(r)})
	}
	mat, err := NewMatrix(len(users), len(items), triples)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := Train(context.Background(), mat, DefaultParams(), nil)
	if err != nil {
		b.Fatal(err)
	}
	qs := make([][]float32, mod.Users.Rows())
	for u := range qs {
		qs[u] = mod.Users.Row(u)
	}
	return mod, qs
}

// BenchmarkRerankTouch: the exact re-rank of a 50-row shortlist scattered
// over a 1M × 64 table, with and without the pass that touches the rows
// first (touchRows); ns/op is one re-rank.
func BenchmarkRerankTouch(b *testing.B) {
	const n, k = 1_000_000, 64
	f := NewFactors(n, k)
	for i := range f.Data {
		f.Data[i] = float32(i%7) * 0.1
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lists := make([][]Scored, 1024)
	for i := range lists {
		for range 50 {
			lists[i] = append(lists[i], Scored{Item: int32(rng.IntN(n))})
		}
	}
	xv := blas32.Vector{N: k, Inc: 1, Data: make([]float32, k)}
	var sink float32
	for _, touch := range []bool{false, true} {
		b.Run(fmt.Sprintf("touch=%v", touch), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				short := lists[i%len(lists)]
				if touch {
					sink += touchRows(f, short) * 0
				}
				for _, c := range short {
					sink += blas32.Dot(xv, blas32.Vector{N: k, Inc: 1, Data: f.Row(int(c.Item))})
				}
			}
		})
	}
	_ = sink
}

// BenchmarkIndexSearch is one approximate query at a time over 100k
// items (ns/op: one query's CPU), for the n of a page (10) and of the
// blend's candidates (50, a shortlist of 200), with its recall@n.
func BenchmarkIndexSearch(b *testing.B) {
	m := indexedModel(b, 100_000)
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			var s Scorer
			dst := make([]Scored, 0, n)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = m.o.TopKApprox(&s, dst, Query{Vector: m.queries[i%len(m.queries)], N: n}, IVFSearch{})
				i++
			}
			b.StopTimer()
			b.ReportMetric(recallAt(b, m.o, m.queries[:200], n, IVFSearch{}), "recall")
		})
	}
}

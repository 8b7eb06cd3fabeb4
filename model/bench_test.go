package model

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

func BenchmarkFoldIn(b *testing.B) {
	for _, k := range []int{32, 64, 128} {
		for _, n := range []int{10, 50, 200} {
			b.Run(fmt.Sprintf("k=%d/hist=%d", k, n), func(b *testing.B) {
				o, _ := NewOnline(randomModel(10_000, k, 1), nil)
				rng := rand.New(rand.NewPCG(1, 2))
				hist := make([]ItemWeight, n)
				for j := range hist {
					hist[j] = ItemWeight{Item: int32(rng.IntN(10_000)), Weight: float32(1 + rng.IntN(3))}
				}
				ws := NewWorkspace(k)
				dst := make([]float32, k)
				b.ReportAllocs()
				for b.Loop() {
					if err := o.FoldUser(ws, dst, hist); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkItemUpdate(b *testing.B) {
	for _, k := range []int{32, 64, 128} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			o, _ := NewOnline(randomModel(100_000, k, 1), nil)
			o.GramRefresh = 0
			rng := rand.New(rand.NewPCG(1, 2))
			x := make([]float32, k)
			for f := range x {
				x[f] = float32(rng.NormFloat64())
			}
			ws := NewWorkspace(k)
			ups := []Update{{OldUser: x, User: x, Items: []ItemDelta{{Item: 5, DeltaWeight: 1}}}}
			b.ReportAllocs()
			for b.Loop() {
				ups[0].Items[0].Item = int32(rng.IntN(100_000))
				if err := o.Apply(ws, ups); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTopK(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, k := range []int{32, 64} {
			b.Run(fmt.Sprintf("items=%d/k=%d", n, k), func(b *testing.B) {
				o, _ := NewOnline(randomModel(n, k, 3), nil)
				q := o.ItemFactors(nil, 1)
				ex := NewBitset(n)
				for i := 0; i < 50; i++ {
					ex.Set(i * 7)
				}
				var s Scorer
				dst := make([]Scored, 0, 10)
				b.ReportAllocs()
				b.SetBytes(int64(n * k * 4))
				for b.Loop() {
					dst = o.TopK(&s, dst, Query{Vector: q, N: 10, Exclude: ex})
				}
			})
		}
	}
}

// BenchmarkScorePrecision compares streaming 100k×64 item factors as
// float32 against float64: the measurement behind Factors' element type.
func BenchmarkScorePrecision(b *testing.B) {
	const n, k = 100_000, 64
	rng := rand.New(rand.NewPCG(1, 1))
	b.Run("float32", func(b *testing.B) {
		a := make([]float32, n*k)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		x, y := make([]float32, k), make([]float32, scoreChunk)
		b.SetBytes(n * k * 4)
		for b.Loop() {
			for s := 0; s < n; s += scoreChunk {
				m := min(scoreChunk, n-s)
				blas32.Gemv(blas.NoTrans, 1, blas32.General{Rows: m, Cols: k, Stride: k, Data: a[s*k : (s+m)*k]}, blas32.Vector{N: k, Inc: 1, Data: x}, 0, blas32.Vector{N: m, Inc: 1, Data: y})
			}
		}
	})
	b.Run("float64", func(b *testing.B) {
		a := make([]float64, n*k)
		for i := range a {
			a[i] = rng.NormFloat64()
		}
		x, y := make([]float64, k), make([]float64, scoreChunk)
		b.SetBytes(n * k * 8)
		for b.Loop() {
			for s := 0; s < n; s += scoreChunk {
				m := min(scoreChunk, n-s)
				blas64.Gemv(blas.NoTrans, 1, blas64.General{Rows: m, Cols: k, Stride: k, Data: a[s*k : (s+m)*k]}, blas64.Vector{N: k, Inc: 1, Data: x}, 0, blas64.Vector{N: m, Inc: 1, Data: y})
			}
		}
	})
}

// BenchmarkTrain trains on synthetic data the size of MovieLens 100K
// (943 users, 1,682 items, 100k interactions) and of 1M interactions.
func BenchmarkTrain(b *testing.B) {
	for _, size := range []struct {
		name         string
		users, items int
		nnz          int
	}{{"ml100k-size", 943, 1682, 100_000}, {"1M", 6040, 3706, 1_000_000}} {
		for _, solver := range []Solver{SolverCG, SolverCholesky} {
			b.Run(fmt.Sprintf("%s/%s/k=64", size.name, solver), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(4, 4))
				seen := map[[2]int32]bool{}
				var ts []Interaction
				for len(ts) < size.nnz {
					u, i := int32(rng.IntN(size.users)), int32(float64(size.items)*rng.Float64()*rng.Float64())
					if seen[[2]int32{u, i}] {
						continue
					}
					seen[[2]int32{u, i}] = true
					ts = append(ts, Interaction{User: u, Item: i, Weight: 1})
				}
				m, _ := NewMatrix(size.users, size.items, ts)
				p := DefaultParams()
				p.Solver = solver
				p.Iterations = 15
				for b.Loop() {
					if _, err := Train(context.Background(), m, p, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSnapshotDecode loads a 100k-item, 1M-user, k=64 snapshot:
// full (every user's id and row: a file of kairos retrain --out) and
// slim (their Gram: what a retrain publishes).
func BenchmarkSnapshotDecode(b *testing.B) {
	const users, items, k = 1_000_000, 100_000, 64
	p := DefaultParams()
	s := &Snapshot{Meta: Meta{Params: p}, Users: NewFactors(users, k), Items: NewFactors(items, k)}
	for i := range s.Users.Data {
		s.Users.Data[i] = float32(i%1000) * 1e-3
	}
	for i := range users {
		s.UserIDs = append(s.UserIDs, fmt.Sprintf("visitor-%08d", i))
	}
	for i := range items {
		s.ItemIDs = append(s.ItemIDs, fmt.Sprintf("sku-%06d", i))
	}
	for _, c := range []struct {
		name string
		snap *Snapshot
	}{{"full", s}, {"slim", s.Slim()}} {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := c.snap.Encode(&buf); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(buf.Bytes())); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTopKLatency reports the p50 and p99 of single exact top-10
// queries over 100k items (k=64) with varied query vectors.
func BenchmarkTopKLatency(b *testing.B) {
	const n, k = 100_000, 64
	o, _ := NewOnline(randomModel(n, k, 3), nil)
	rng := rand.New(rand.NewPCG(5, 5))
	queries := make([][]float32, 256)
	for i := range queries {
		queries[i] = o.ItemFactors(nil, rng.IntN(n))
	}
	var s Scorer
	dst := make([]Scored, 0, 10)
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		start := time.Now()
		dst = o.TopK(&s, dst, Query{Vector: queries[i%len(queries)], N: 10})
		lat = append(lat, time.Since(start))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99_ms")
}

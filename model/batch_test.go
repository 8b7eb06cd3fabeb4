package model

import (
	"fmt"
	"math"
	"sync"
	"testing"
)

func sameTop(t *testing.T, what string, got, want []Scored) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d results, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		// The kernel sums in another order: equal scores up to rounding.
		if got[i].Item != want[i].Item && math.Abs(float64(got[i].Score-want[i].Score)) > 1e-5 {
			t.Errorf("%s: result %d is %v, want %v", what, i, got[i], want[i])
			return
		}
		if math.Abs(float64(got[i].Score-want[i].Score)) > 1e-4*math.Abs(float64(want[i].Score))+1e-5 {
			t.Errorf("%s: result %d scored %v, want %v", what, i, got[i].Score, want[i].Score)
			return
		}
	}
}

// A batch scores each of its queries as TopK does, with its exclusions,
// predicate, cosine flag and size.
func TestScoreBatchMatchesTopK(t *testing.T) {
	m := clusteredModel(5000, 32, 20, 9)
	o := mustOnline(t, m, nil)
	queries := userQueries(o, 5000, batchWidth, 10)
	ex := NewBitset(5000)
	for i := 0; i < 5000; i += 3 {
		ex.Set(i)
	}
	scorers := make([]Scorer, batchWidth)
	reqs := make([]*batchReq, batchWidth)
	qs := make([]Query, batchWidth)
	for j := range reqs {
		q := Query{Vector: queries[j], N: 1 + j}
		switch j % 4 {
		case 1:
			q.Exclude = ex
		case 2:
			q.Keep = func(row int) bool { return row%5 != 0 }
		case 3:
			q.Cosine = true
		}
		qs[j] = q
		reqs[j] = &batchReq{s: &scorers[j], q: q, done: make(chan struct{}, 1)}
	}
	var s Scorer
	for _, size := range []int{batchWidth, 6} { // the 16- and the 8-column kernel
		var leader Scorer
		o.scoreBatch(&leader, reqs[:size])
		for j, r := range reqs[:size] {
			<-r.done
			sameTop(t, fmt.Sprintf("batch of %d, query %d", size, j), r.res, o.TopK(&s, nil, qs[j]))
		}
	}
}

// Concurrent TopKBatched calls get their own answers.
func TestTopKBatchedConcurrent(t *testing.T) {
	m := clusteredModel(20_000, 64, 50, 11)
	o := mustOnline(t, m, nil)
	queries := userQueries(o, 20_000, 64, 12)
	want := make([][]Scored, len(queries))
	var s Scorer
	for i, q := range queries {
		want[i] = o.TopK(&s, nil, Query{Vector: q, N: 10})
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			var s Scorer
			for i := g; i < len(queries); i += 16 {
				got := o.TopKBatched(&s, nil, Query{Vector: queries[i], N: 10})
				sameTop(t, "batched", got, want[i])
			}
		})
	}
	wg.Wait()
}

package model

import (
	"math"
	"runtime"
	"sync"
)

// Batched exact scoring.
//
// An exact query streams the whole item table (1M × 64 float32 is 256 MB);
// concurrent queries are answered together so that the table is streamed
// once per batch, not once per query, and scored by a register-blocked
// kernel (dotsBatch8 for up to 8 queries, dotsBatch for up to 16). There is no
// background goroutine: a query joins the queue and, when no batch is
// being scored — or fewer than GOMAXPROCS are and half a batch waits — it
// scores the queue itself (as leader), taking up to batchWidth queries,
// its own or others', until the queue is empty; otherwise it waits for a
// leader to answer it. Under light load a query is thus scored at once,
// alone; under heavy load the queue fills while a leader scans, and
// batches grow (a second leader starting at every free moment would
// take the arrivals one by one).

// minBatch is the smallest batch scored by the batch kernels (which
// compute 8 or 16 columns whatever the batch); a lone query is scored by
// BLAS. Two queries already stream the table once instead of twice.
const minBatch = 2

// batcher is the queue of exact queries of an Online.
type batcher struct {
	mu      sync.Mutex
	pending []*batchReq
	leaders int
}

// batchReq is one queued query; it lives in its Scorer (no allocation).
type batchReq struct {
	s    *Scorer
	dst  []Scored
	q    Query
	res  []Scored
	done chan struct{}
}

// batchScratch is a leader's memory: the transposed queries and a chunk
// of scores.
type batchScratch struct {
	qt     []float32
	scores []float32
	qn     [batchWidth]float32
	thr    [batchWidth]float32
}

// TopKBatched returns the same as TopK, scoring q together with the
// exact queries made concurrently (see "Batched exact scoring"). s must
// not be used by another goroutine meanwhile.
func (o *Online) TopKBatched(s *Scorer, dst []Scored, q Query) []Scored {
	if q.Rows != nil {
		return o.TopK(s, dst, q) // a few rows: nothing to share
	}
	r := &s.req
	if r.done == nil {
		r.done = make(chan struct{}, 1)
	}
	r.s, r.dst, r.q = s, dst, q
	b := &o.batch
	b.mu.Lock()
	b.pending = append(b.pending, r)
	if b.leaders == 0 || (b.leaders < runtime.GOMAXPROCS(0) && len(b.pending) >= batchWidth/2) {
		b.leaders++
		var batch [batchWidth]*batchReq
		for len(b.pending) > 0 {
			n := copy(batch[:], b.pending)
			b.pending = append(b.pending[:0], b.pending[n:]...)
			b.mu.Unlock()
			o.scoreBatch(s, batch[:n])
			b.mu.Lock()
		}
		b.leaders--
	}
	b.mu.Unlock()
	<-r.done
	res := r.res
	*r = batchReq{done: r.done}
	return res
}

// scoreBatch answers the queries of reqs in one pass over the items; s
// is the leader's scorer, for its scratch.
func (o *Online) scoreBatch(s *Scorer, reqs []*batchReq) {
	o.mu.RLock()
	k := o.items.K
	if len(reqs) < minBatch || k%8 != 0 {
		for _, r := range reqs {
			r.res = r.s.topK(r.dst, o.items, o.norms, r.q)
		}
	} else {
		o.scoreBatchLocked(s, reqs)
	}
	o.mu.RUnlock()
	for _, r := range reqs {
		r.done <- struct{}{}
	}
}

func (o *Online) scoreBatchLocked(s *Scorer, reqs []*batchReq) {
	k, rows := o.items.K, o.items.Rows()
	if s.batch == nil {
		s.batch = &batchScratch{}
	}
	bs := s.batch
	if len(bs.qt) != k*batchWidth {
		bs.qt = make([]float32, k*batchWidth)
		bs.scores = make([]float32, scoreChunk*batchWidth)
	}
	w, kernel := batchWidth, dotsBatch
	if len(reqs) <= 8 {
		w, kernel = 8, dotsBatch8
	}
	qt := bs.qt[:k*w]
	clear(qt)
	for j, r := range reqs {
		r.res = r.dst[:0]
		r.s.heap = r.s.heap[:0]
		bs.thr[j] = float32(math.Inf(-1))
		bs.qn[j] = 1
		if r.q.N <= 0 || len(r.q.Vector) != k {
			r.q.N = 0
			continue
		}
		if r.q.Cosine {
			if bs.qn[j] = norm32(r.q.Vector); bs.qn[j] == 0 {
				r.q.N = 0
				continue
			}
		}
		for d, v := range r.q.Vector {
			qt[d*w+j] = v
		}
	}
	for start := 0; start < rows; start += scoreChunk {
		n := min(scoreChunk, rows-start)
		sc := bs.scores[:n*w]
		kernel(sc, o.items.Data[start*k:(start+n)*k], k, qt)
		for j, r := range reqs {
			if r.q.N > 0 {
				bs.thr[j] = r.s.selectColumn(sc, w, j, start, o.norms, &r.q, bs.qn[j], bs.thr[j])
			}
		}
	}
	for _, r := range reqs {
		if r.q.N > 0 {
			r.res = appendSorted(r.dst[:0], r.s.heap)
		}
	}
}

// selectColumn pushes column j of a chunk of scores (w columns, rows
// start…; topK's are one column) into s's heap of the q.N best — skipping
// zero rows, excluded rows, NaN scores and rows q.Keep rejects, dividing
// by the norms for a cosine query (qn: the query's norm) and applying
// q.LogBoost — and returns the
// new threshold (the heap's minimum once full).
func (s *Scorer) selectColumn(sc []float32, w, j, start int, norms []float32, q *Query, qn, threshold float32) float32 {
	h := s.heap
	n := len(sc) / w
	boost := q.LogBoost
	for r := range n {
		v := sc[r*w+j]
		if boost == nil && !(v > threshold) && len(h) == q.N {
			continue
		}
		i := start + r
		if norms[i] == 0 || q.Exclude.Has(i) {
			continue
		}
		if q.Cosine {
			v /= norms[i] * qn
		}
		if i < len(boost) {
			v += boost[i]
		}
		if !(v > threshold) && len(h) == q.N {
			continue
		}
		if v != v || (q.Keep != nil && !q.Keep(i)) {
			continue
		}
		h = pushBounded(h, Scored{Item: int32(i), Score: v}, q.N)
		if len(h) == q.N {
			threshold = h[0].Score
		}
	}
	s.heap = h
	return threshold
}

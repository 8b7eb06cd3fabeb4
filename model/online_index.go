package model

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
)

// indexUpdate mirrors an item row change into the index and the build
// journal; o.mu is held for writing.
func (o *Online) indexUpdate(row int32, y []float32) {
	if o.ivf != nil {
		o.ivf.update(row, y)
	}
	if o.journal != nil {
		o.journal = append(o.journal, row)
	}
}

// onlineReader reads the live item table block by block under the read
// lock, so that a build never holds it for long and never copies the table.
type onlineReader struct{ o *Online }

func (r onlineReader) rows() int {
	r.o.mu.RLock()
	defer r.o.mu.RUnlock()
	return r.o.items.Rows()
}

func (r onlineReader) k() int { return r.o.p.Factors }

func (r onlineReader) read(lo, hi int, fn func(t *Factors)) {
	r.o.mu.RLock()
	defer r.o.mu.RUnlock()
	fn(r.o.items)
}

// BuildIndex (re)builds the approximate index (IVF) from the live item
// factors, reading them block by block under the read lock (no copy of
// the table, no long stall of readers or writers), then swaps it in,
// bringing it up to date with the rows changed during the build (a
// journal kept meanwhile). Concurrent builds are serialised.
func (o *Online) BuildIndex(ctx context.Context, p IVFParams) error {
	o.bmu.Lock()
	defer o.bmu.Unlock()
	o.mu.Lock()
	o.journal = make([]int32, 0, 1024)
	o.mu.Unlock()
	x, err := buildIVF(ctx, onlineReader{o}, p)
	if err != nil {
		o.mu.Lock()
		o.journal = nil
		o.mu.Unlock()
		return err
	}
	o.install(x)
	return nil
}

// install swaps x in after replaying the rows changed since it read
// them (the journal, which it ends), under the write locks.
func (o *Online) install(x *IVF) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	changed := o.journal
	o.journal = nil
	x.grow(o.items.Rows())
	for _, row := range changed {
		if o.norms[row] != 0 {
			x.update(row, o.items.Row(int(row)))
		}
	}
	o.ivf = x
}

// IndexInfo describes the approximate index.
type IndexInfo struct {
	// Lists is the number of clusters.
	Lists int
	// Items is the number of items in the lists.
	Items int
	// Overflow is the number of items waiting for a list (scanned exactly).
	Overflow int
	// Moved is the number of items moved between lists since the build.
	Moved int
	// Dirty is the number of changed items whose list is not checked yet.
	Dirty int
	// Probe is the number of lists a search scans by default, and
	// Calibrated says whether CalibrateIndex chose it (else AutoProbe).
	Probe      int
	Calibrated bool
}

// IndexInfo describes the approximate index; ok is false when there is none.
func (o *Online) IndexInfo() (info IndexInfo, ok bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	x := o.ivf
	if x == nil {
		return IndexInfo{}, false
	}
	return IndexInfo{Lists: x.nlist, Items: x.size, Overflow: len(x.overflow), Moved: x.moved, Dirty: len(x.dirtyRows),
		Probe: x.defaultProbe(), Calibrated: x.probe > 0}, true
}

// TopKApprox is TopK through the approximate index (IVF.search). Without
// an index it answers exactly, and approx is false.
func (o *Online) TopKApprox(s *Scorer, dst []Scored, q Query, p IVFSearch) (res []Scored, approx bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.ivf == nil {
		return s.topK(dst, o.items, o.norms, q), false
	}
	return o.ivf.search(s, dst, o.items, o.norms, q, p), true
}

// SimilarApprox is Similar through the approximate index (cosine scores of
// a shortlist found by the index; exact without one).
func (o *Online) SimilarApprox(s *Scorer, dst []Scored, i, n int, exclude Bitset, keep func(int) bool, p IVFSearch) ([]Scored, error) {
	return o.SimilarApproxQ(s, dst, i, Query{N: n, Exclude: exclude, Keep: keep}, p)
}

// SimilarApproxQ is SimilarApprox with the selection of q (N, Exclude,
// Keep, LogBoost, Rows).
func (o *Online) SimilarApproxQ(s *Scorer, dst []Scored, i int, q Query, p IVFSearch) ([]Scored, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if i < 0 || i >= o.items.Rows() {
		return dst[:0], ErrUnknownItem
	}
	q = similarQuery(o.items.Row(i), i, q)
	if o.ivf == nil {
		return s.topK(dst, o.items, o.norms, q), nil
	}
	return o.ivf.search(s, dst, o.items, o.norms, q, p), nil
}

// RefreshIndex checks the lists of up to limit items changed since the
// last refresh (oldest first) and moves those whose best list changed;
// items in the overflow get their list. It computes outside the locks and
// holds the write lock only to move rows. It returns the number of items
// moved and of overflow items assigned.
func (o *Online) RefreshIndex(limit int) (moved, assigned int) {
	k := o.p.Factors
	// Nothing changed is the common case of an idle catalog: it is seen
	// under the read lock, because a write lock, even an empty one, holds
	// up every search that arrives while it waits for the searches in
	// flight (a burst of requests waiting ms every refresh, 4 times a
	// second, under load).
	o.mu.RLock()
	idle := o.ivf == nil || len(o.ivf.dirtyRows) == 0
	o.mu.RUnlock()
	if idle {
		return 0, 0
	}
	o.mu.Lock()
	x := o.ivf
	if x == nil || len(x.dirtyRows) == 0 {
		o.mu.Unlock()
		return 0, 0
	}
	take := min(limit, len(x.dirtyRows))
	rows := make([]int32, 0, take)
	ys := make([][]float32, 0, take)
	buf := make([]float32, take*k)
	for j, row := range x.dirtyRows[:take] {
		x.dirty[row>>6] &^= 1 << (uint(row) & 63)
		rows = append(rows, row)
		ys = append(ys, buf[j*k:(j+1)*k])
		copy(ys[j], o.items.Row(int(row)))
	}
	x.dirtyRows = append(x.dirtyRows[:0], x.dirtyRows[take:]...)
	o.mu.Unlock()
	assign := x.assign(ys) // bands and centroids are immutable
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ivf != x {
		return 0, 0
	}
	for j, row := range rows {
		l := x.listOf[row]
		if l == assign[j] || assign[j] < 0 || o.norms[row] == 0 {
			continue
		}
		x.remove(row)
		x.add(row, int(assign[j]), o.items.Row(int(row)))
		if l == inOverflow {
			assigned++
		} else {
			moved++
			x.moved++
		}
	}
	return moved, assigned
}

// indexMagic starts an encoded index.
const indexMagic = "KIVF2"

// EncodeIndex returns the index's clustering — its norm bands, centroids
// and each item's list, not the codes, which are derived from the factors
// — for persistence beside the item factors (nil when there is no index).
// At 1M items it is about 4 MB.
func (o *Online) EncodeIndex() []byte {
	o.mu.RLock()
	defer o.mu.RUnlock()
	x := o.ivf
	if x == nil {
		return nil
	}
	b := make([]byte, 0, len(indexMagic)+16+16*len(x.bands)+4*len(x.centroids)+4*len(x.listOf))
	b = append(b, indexMagic...)
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	u32(uint32(x.k))
	u32(uint32(x.nlist))
	u32(uint32(len(x.bands)))
	u32(uint32(len(x.listOf)))
	for _, bd := range x.bands {
		u32(math.Float32bits(bd.upper))
		u32(math.Float32bits(bd.m))
		u32(uint32(bd.lo))
		u32(uint32(bd.hi))
	}
	for _, c := range x.centroids {
		u32(math.Float32bits(c))
	}
	for _, l := range x.listOf {
		u32(uint32(l))
	}
	return b
}

// LoadIndex installs an index encoded by EncodeIndex, quantising the live
// item factors into its lists (O(n·k), no clustering). Items without a
// stored list (added since it was encoded) go to the overflow, to be
// assigned by RefreshIndex. It fails, leaving the model unchanged, when
// the encoding is malformed or made for another k.
//
// Like BuildIndex it reads the table block by block under the read lock
// and swaps the index in at the end, replaying the rows changed meanwhile,
// so it may run in the background while the model serves and learns
// (at 1M items it takes about a second of CPU).
func (o *Online) LoadIndex(b []byte) error {
	x, rows, err := decodeIndex(b, o.p.Factors)
	if err != nil {
		return err
	}
	o.bmu.Lock()
	defer o.bmu.Unlock()
	o.mu.Lock()
	o.journal = make([]int32, 0, 1024)
	n := o.items.Rows()
	sizes := make([]int, x.nlist)
	for row, l := range rows {
		if l >= 0 && row < n && o.norms[row] != 0 {
			sizes[l]++
		}
	}
	o.mu.Unlock()
	x.grow(n)
	for l, c := range sizes {
		x.lists[l] = ivfList{rows: make([]int32, 0, c), codes: make([]int8, 0, c*x.kp), scales: make([]float32, 0, c)}
	}
	const block = 1 << 14
	for lo := 0; lo < n; lo += block {
		o.mu.RLock()
		for row := lo; row < min(lo+block, n); row++ {
			if o.norms[row] == 0 {
				continue
			}
			if row < len(rows) && rows[row] >= 0 {
				x.add(int32(row), int(rows[row]), o.items.Row(row))
			} else {
				x.update(int32(row), o.items.Row(row))
			}
		}
		o.mu.RUnlock()
	}
	o.install(x)
	return nil
}

func decodeIndex(b []byte, k int) (*IVF, []int32, error) {
	bad := func(what string) error { return fmt.Errorf("model: encoded index: %s", what) }
	if len(b) < len(indexMagic)+16 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, nil, bad("not an index (bad header)")
	}
	b = b[len(indexMagic):]
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(b); b = b[4:]; return v }
	ek, nlist, nb, n := int(u32()), int(u32()), int(u32()), int(u32())
	if ek != k {
		return nil, nil, fmt.Errorf("model: encoded index has k=%d, the model %d", ek, k)
	}
	if nlist < 1 || nb < 1 || nb > nlist || len(b) != 4*(4*nb+nlist*(k+1)+n) {
		return nil, nil, bad("truncated or inconsistent")
	}
	x := newIVF(k, 0, 0)
	next := 0
	for range nb {
		bd := ivfBand{upper: math.Float32frombits(u32()), m: math.Float32frombits(u32()), lo: int(u32()), hi: int(u32())}
		if bd.lo != next || bd.hi < bd.lo || bd.hi > nlist || !(bd.m > 0) {
			return nil, nil, bad("inconsistent norm bands")
		}
		next = bd.hi
		x.bands = append(x.bands, bd)
	}
	if next != nlist {
		return nil, nil, bad("norm bands do not cover the lists")
	}
	x.setLists(nlist)
	x.centroids = make([]float32, nlist*(k+1))
	for i := range x.centroids {
		x.centroids[i] = math.Float32frombits(u32())
	}
	rows := make([]int32, n)
	for i := range rows {
		rows[i] = int32(u32())
		if rows[i] >= int32(nlist) || rows[i] < inOverflow {
			return nil, nil, bad(fmt.Sprintf("row %d in list %d of %d", i, rows[i], nlist))
		}
	}
	return x, rows, nil
}

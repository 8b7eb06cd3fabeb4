package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Online is the live model: the item factors Y with their cached Gram YᵀY,
// updated event by event, and read concurrently by top-K scoring.
//
// # Updates
//
// A user's factors are recomputed exactly by FoldUser: the batch ALS
// solution for that user with Y fixed, O(|history|·k² + k³).
//
// An item's factors are updated at bounded cost by Apply: for an event that
// raises the weight of (u, i) by Δw, the item's normal equations
//
//	(XᵀX + λI + Σ_u α w_ui x_u x_uᵀ) y_i = Σ_u (1 + α w_ui) x_u
//
// gain α Δw x_u x_uᵀ on the left and (Δ(c·p)) x_u on the right. With y_i the
// previous solution, the new one is y_i + δ where
//
//	(XᵀX + λI + D_i + α Δw x_u x_uᵀ) δ = x_u·(Δ(c·p) − α Δw (x_u·y_i))
//
// and D_i, the curvature of the item's earlier interactors, is kept as its
// diagonal (k floats per item, accumulated from the x_u of each event).
// δ is found by a few conjugate-gradient steps: O(k²) per event whatever the
// number of the item's users, never O(all users of a popular item). The
// diagonal approximation and the staleness of earlier x_u are the price; a
// batch retrain (offline) resets the item factors exactly.
//
// # Consistency of the Gram matrices
//
// YᵀY changes with every item update; Apply keeps it consistent with two
// rank-one corrections (−y yᵀ + y' y'ᵀ) in float64. Rounding drift is bounded
// by recomputing YᵀY from Y exactly every GramRefresh item updates (O(n·k²),
// amortised O(k²·n/GramRefresh) per update); TestGramDrift measures it.
// XᵀX, which item updates need, is kept from the users' factor changes the
// same way (users live in the engine's store, so it is not recomputed; it is
// replaced whenever a retrained model is loaded).
//
// # Concurrency
//
// Readers (TopK, Similar, FoldUser, Explain) take a read lock. Writers are
// serialised by Apply's own mutex; they compute outside the read/write lock
// and hold the write lock only to copy the changed rows, so a write never
// waits for a scoring pass to compute, only to finish. Batch writes: one
// Apply per consumed batch of events amortises the lock. Index builds and
// loads are serialised by bmu (taken before wmu) and read the table block
// by block under the read lock; RefreshIndex computes outside the locks and takes
// the write lock to move rows. The exact-batch queue (batch.go) has its
// own mutex, released before a batch is scored under the read lock.
type Online struct {
	p Params

	wmu sync.Mutex // serialises writers; lock order: wmu before mu

	mu    sync.RWMutex
	items *Factors  // Y
	norms []float32 // |y_i|
	gram  []float64 // YᵀY, k×k, full symmetric (no λ); updated on the upper triangle, then mirrored
	// gramVersion counts changes of gram (written under mu): fold-ins
	// cache the factor of YᵀY + λI per version (lowrank.go).
	gramVersion uint64
	xtx         []float64 // XᵀX, k×k, full symmetric (no λ); likewise
	curv        []float32 // per item, diagonal of Σ_u α w_ui x_u x_uᵀ (n×k)
	counts      []int32   // per item, number of distinct users
	countTotal  int64     // Σ counts (written under wmu)
	countItems  int64     // items with a count > 0 (written under wmu)

	ivf     *IVF       // approximate index, nil until BuildIndex
	journal []int32    // rows changed during an index build (nil: no build)
	bmu     sync.Mutex // single-flights index builds and loads; lock order: bmu before wmu
	batch   batcher    // queue of exact queries scored together (batch.go)

	itemUpdates atomic.Int64 // since the last exact Gram refresh
	version     atomic.Uint64

	// GramRefresh is the number of item updates after which YᵀY is
	// recomputed exactly (0 = never).
	GramRefresh int64
}

// ItemStats are the per-item sufficient statistics that item updates need:
// the number of distinct users and the diagonal curvature of their
// interactions. Batch training produces them (ItemStatsFromMatrix).
type ItemStats struct {
	Counts []int32
	Curv   *Factors
}

// NewOnline returns a live model serving m's item factors. stats may be nil
// (item updates then assume no earlier curvature, i.e. larger steps for
// popular items until the next retrain).
func NewOnline(m *Model, stats *ItemStats) (*Online, error) {
	if err := m.Params.Validate(); err != nil {
		return nil, err
	}
	k := m.Params.Factors
	if m.Items.K != k || (m.Users != nil && m.Users.K != k) {
		return nil, fmt.Errorf("model: factor tables have k=%d/%v, params say %d", m.Items.K, m.Users, k)
	}
	n := m.Items.Rows()
	o := &Online{
		p:           m.Params,
		items:       m.Items.Clone(),
		gram:        make([]float64, k*k),
		xtx:         make([]float64, k*k),
		GramRefresh: 100_000,
	}
	gramInto(o.gram, o.items, nil)
	if m.Users != nil {
		gramInto(o.xtx, m.Users, nil)
	}
	if stats != nil {
		if len(stats.Counts) != n || stats.Curv.Rows() != n || stats.Curv.K != k {
			return nil, fmt.Errorf("model: item stats for %d items (k=%d), model has %d (k=%d)", len(stats.Counts), stats.Curv.K, n, k)
		}
		o.counts = append([]int32(nil), stats.Counts...)
		o.curv = append([]float32(nil), stats.Curv.Data...)
	} else {
		o.counts = make([]int32, n)
		o.curv = make([]float32, n*k)
	}
	for _, c := range o.counts {
		o.countTotal += int64(c)
		if c > 0 {
			o.countItems++
		}
	}
	o.norms = make([]float32, n)
	for i := range n {
		o.norms[i] = norm32(o.items.Row(i))
	}
	return o, nil
}

// NewEmptyOnline returns a live model with no items yet: every item then
// starts from its first event.
func NewEmptyOnline(p Params) (*Online, error) {
	return NewOnline(&Model{Params: p, Items: NewFactors(0, p.Factors)}, nil)
}

// ItemStatsFromMatrix computes the item statistics of a trained model.
func ItemStatsFromMatrix(m *Model, mat *Matrix) *ItemStats {
	k := m.Params.Factors
	st := &ItemStats{Counts: make([]int32, mat.Items()), Curv: NewFactors(mat.Items(), k)}
	for i := range mat.Items() {
		users, ws := mat.ItemColumn(i)
		st.Counts[i] = int32(len(users))
		d := st.Curv.Row(i)
		for j, u := range users {
			a := float32(m.Params.Alpha) * ws[j]
			for f, v := range m.Users.Row(int(u)) {
				d[f] += a * v * v
			}
		}
	}
	return st
}

// Params returns the hyperparameters.
func (o *Online) Params() Params { return o.p }

// K returns the number of factors.
func (o *Online) K() int { return o.p.Factors }

// Len returns the number of items.
func (o *Online) Len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.items.Rows()
}

// Version increases with every applied update; it lets caches notice change.
func (o *Online) Version() uint64 { return o.version.Load() }

// Grow makes room for items up to row n−1 (new items start at zero
// factors, unknown to the model until their first event).
func (o *Online) Grow(n int) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.growLocked(n)
}

func (o *Online) growLocked(n int) {
	have := o.items.Rows()
	if n <= have {
		return
	}
	o.items.Grow(n - have)
	o.norms = append(o.norms, make([]float32, n-have)...)
	o.counts = append(o.counts, make([]int32, n-have)...)
	o.curv = append(o.curv, make([]float32, (n-have)*o.p.Factors)...)
}

// ItemFactors copies item i's factors into dst (len K) and returns it. A
// row beyond the table is zero: an item the catalog knows but this model
// has not grown to yet (a replica before its peer's update arrives) has
// not been learnt.
func (o *Online) ItemFactors(dst []float32, i int) []float32 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if i < 0 || i >= o.items.Rows() {
		dst = slices.Grow(dst[:0], o.p.Factors)[:o.p.Factors]
		clear(dst)
		return dst
	}
	return append(dst[:0], o.items.Row(i)...)
}

// Snapshot returns a consistent copy of the item factors and statistics.
func (o *Online) Snapshot() (*Factors, *ItemStats) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.items.Clone(), &ItemStats{
		Counts: append([]int32(nil), o.counts...),
		Curv:   &Factors{K: o.p.Factors, Data: append([]float32(nil), o.curv...)},
	}
}

// ErrUnknownItem is returned for an item row the model does not have.
var ErrUnknownItem = errors.New("model: unknown item")

// FoldUser computes user factors from a history (per-item decayed weights,
// see HistoryAggregator) into dst: exactly the batch ALS solution for this
// user with the item factors fixed, by Cholesky. An empty history gives
// zero factors.
func (o *Online) FoldUser(ws *Workspace, dst []float32, hist []ItemWeight) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.foldUserLocked(ws, dst, hist)
}

func (o *Online) foldUserLocked(ws *Workspace, dst []float32, hist []ItemWeight) error {
	cols, w := ws.split(hist)
	n := o.items.Rows()
	for _, c := range cols {
		if int(c) >= n || c < 0 {
			return fmt.Errorf("%w: row %d of %d", ErrUnknownItem, c, n)
		}
	}
	if len(cols) == 0 {
		clear(dst)
		return nil
	}
	if len(cols) <= lowRankMaxItems(o.p.Factors) {
		return ws.solveLowRank(dst, o, cols, w)
	}
	return ws.solveExact(dst, o.gram, o.p.Lambda, o.items, cols, w, o.p.Alpha)
}

// split copies a history into the workspace's column and weight buffers.
func (ws *Workspace) split(hist []ItemWeight) ([]int32, []float32) {
	ws.cols = ws.cols[:0]
	ws.ws = ws.ws[:0]
	for _, h := range hist {
		ws.cols = append(ws.cols, h.Item)
		ws.ws = append(ws.ws, h.Weight)
	}
	return ws.cols, ws.ws
}

// ItemDelta is one (user, item) change observed in an event: the item row,
// the increase of the pair's decayed weight, and whether the pair is new
// (its preference turns from 0 to 1).
type ItemDelta struct {
	Item        int32
	DeltaWeight float32
	New         bool
}

// Update is the outcome of one event for the model: the user's factors
// before (nil for a user new to the model) and after the fold-in, and the
// item changes to apply.
type Update struct {
	OldUser, User []float32
	Items         []ItemDelta
}

// itemCGSteps is the number of conjugate-gradient steps of an item update.
const itemCGSteps = 4

// Apply applies a batch of updates: XᵀX follows each user's change, then
// each item is moved as described in the type's documentation. Items beyond
// the current table are added. Apply is safe for concurrent use with
// readers and with other Apply calls (which it serialises).
func (o *Online) Apply(ws *Workspace, ups []Update) error {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	k := o.p.Factors
	ws.alpha = o.p.Alpha
	maxItem := -1
	for _, up := range ups {
		if len(up.User) != k || (up.OldUser != nil && len(up.OldUser) != k) {
			return fmt.Errorf("model: update has user factors of length %d, want %d", len(up.User), k)
		}
		for _, d := range up.Items {
			if d.Item < 0 || !(d.DeltaWeight >= 0) || math.IsInf(float64(d.DeltaWeight), 0) {
				return fmt.Errorf("model: invalid item delta %+v", d)
			}
			maxItem = max(maxItem, int(d.Item))
		}
	}
	o.mu.Lock()
	o.growLocked(maxItem + 1)
	o.mu.Unlock()
	// Only writers modify, and wmu excludes other writers: reading the
	// tables here without mu is safe.
	for _, up := range ups {
		ws.replaceOuter(o.xtx, up.OldUser, up.User)
	}
	symmetrize(o.xtx, k)
	ws.groupDeltas(ups)
	ws.pending = ws.pending[:0]
	ws.pendingRows = ws.pendingRows[:0]
	for _, g := range ws.groups {
		o.stepItem(ws, g)
	}
	o.mu.Lock()
	for j, i := range ws.pendingRows {
		row := o.items.Row(int(i))
		ws.replaceOuter(o.gram, row, ws.pending[j*k:(j+1)*k])
		copy(row, ws.pending[j*k:(j+1)*k])
		o.norms[i] = norm32(row)
		o.indexUpdate(i, row)
	}
	symmetrize(o.gram, k)
	o.gramVersion++
	o.mu.Unlock()
	o.version.Add(1)
	if o.GramRefresh > 0 && o.itemUpdates.Add(int64(len(ws.pendingRows))) >= o.GramRefresh {
		o.refreshGram()
	}
	return nil
}

// itemGroup is every change a batch makes to one item: entries
// ws.entries[lo:hi].
type itemGroup struct {
	item   int32
	lo, hi int
}

// itemEntry is one (user, item) change of a batch.
type itemEntry struct {
	user []float32
	aw   float64 // α·Δw
	cp   float64 // Δ(c·p): 1 + α·Δw for a new pair, α·Δw otherwise
	new  bool
}

// groupDeltas gathers the batch's item deltas by item, in order of first
// appearance.
func (ws *Workspace) groupDeltas(ups []Update) {
	ws.entries = ws.entries[:0]
	ws.groups = ws.groups[:0]
	if ws.groupOf == nil {
		ws.groupOf = map[int32]int{}
	}
	clear(ws.groupOf)
	// Count per item first so that each group's entries are contiguous.
	ws.counts = ws.counts[:0]
	for _, up := range ups {
		for _, d := range up.Items {
			g, ok := ws.groupOf[d.Item]
			if !ok {
				g = len(ws.groups)
				ws.groupOf[d.Item] = g
				ws.groups = append(ws.groups, itemGroup{item: d.Item})
				ws.counts = append(ws.counts, 0)
			}
			ws.counts[g]++
		}
	}
	n := 0
	for g := range ws.groups {
		ws.groups[g].lo, ws.groups[g].hi = n, n
		n += ws.counts[g]
	}
	if cap(ws.entries) < n {
		ws.entries = make([]itemEntry, n)
	}
	ws.entries = ws.entries[:n]
	for _, up := range ups {
		for _, d := range up.Items {
			g := &ws.groups[ws.groupOf[d.Item]]
			ws.entries[g.hi] = ws.newEntry(up.User, d)
			g.hi++
		}
	}
}

func (ws *Workspace) newEntry(user []float32, d ItemDelta) itemEntry {
	aw := ws.alpha * float64(d.DeltaWeight)
	cp := aw
	if d.New {
		cp = 1 + aw
	}
	return itemEntry{user: user, aw: aw, cp: cp, new: d.New}
}

// stepItem moves one item by the joint step of all its changes in the
// batch (see the type documentation) into ws.pending, and updates its
// statistics:
//
//	(XᵀX + λI + D_i + Σ_j α Δw_j x_j x_jᵀ) δ = Σ_j x_j (Δ(c·p)_j − α Δw_j x_j·y_i)
func (o *Online) stepItem(ws *Workspace, g itemGroup) {
	k := o.p.Factors
	es := ws.entries[g.lo:g.hi]
	y := ws.pendingRow(o.items, g.item, k)
	m := len(es)
	G := ws.gatherVectors(es, k)
	aw := ws.scalars(m)
	r := ws.b
	clear(r)
	for j, e := range es {
		xj := G[j*k : (j+1)*k]
		var xy float64
		for f, v := range xj {
			xy += v * float64(y[f])
		}
		axpy(e.cp-e.aw*xy, xj, r)
		aw[j] = e.aw
	}
	curv := o.curv[int(g.item)*k : int(g.item)*k+k]
	delta := ws.itemCG(o.xtx, o.itemLambda(g.item), curv, blas64.General{Rows: m, Cols: k, Stride: k, Data: G}, aw, r)
	for f := range y {
		y[f] += float32(delta[f])
	}
	for j, e := range es {
		xj := G[j*k : (j+1)*k]
		for f, v := range xj {
			curv[f] += float32(e.aw * v * v)
		}
		if e.new {
			if o.counts[g.item] == 0 {
				o.countItems++
			}
			o.counts[g.item]++
			o.countTotal++
		}
	}
}

// itemLambda returns item i's regularisation (Params.ItemLambdaExponent),
// the mean count taken over the items with users now, as batch training
// takes it. Called under wmu.
func (o *Online) itemLambda(i int32) float64 {
	if o.p.ItemLambdaExponent == 0 || o.countItems == 0 {
		return o.p.Lambda
	}
	return o.p.itemLambda(int(o.counts[i]), float64(o.countTotal)/float64(o.countItems))
}

// gatherVectors copies the entries' user factors into ws.g as float64.
func (ws *Workspace) gatherVectors(es []itemEntry, k int) []float64 {
	n := len(es) * k
	if cap(ws.g) < n {
		ws.g = make([]float64, n, n+n/2)
	}
	g := ws.g[:n]
	for j, e := range es {
		for f, v := range e.user {
			g[j*k+f] = float64(v)
		}
	}
	return g
}

// replaceOuter sets a += new newᵀ − old oldᵀ on the upper triangle of the
// k×k matrix a (old may be nil), as one symmetric rank-2 update:
// ½[(n − o)(n + o)ᵀ + (n + o)(n − o)ᵀ] = n nᵀ − o oᵀ.
func (ws *Workspace) replaceOuter(a []float64, old, new []float32) {
	k := len(new)
	sym := blas64.Symmetric{N: k, Stride: k, Uplo: blas.Upper, Data: a}
	d, s := ws.r, ws.ap
	if old == nil {
		for f, v := range new {
			d[f] = float64(v)
		}
		blas64.Syr(1, blas64.Vector{N: k, Inc: 1, Data: d}, sym)
		return
	}
	for f := range new {
		d[f] = float64(new[f]) - float64(old[f])
		s[f] = float64(new[f]) + float64(old[f])
	}
	blas64.Syr2(0.5, blas64.Vector{N: k, Inc: 1, Data: d}, blas64.Vector{N: k, Inc: 1, Data: s}, sym)
}

// pendingRow returns the batch's working copy of item i's factors.
func (ws *Workspace) pendingRow(items *Factors, i int32, k int) []float32 {
	for j, p := range ws.pendingRows {
		if p == i {
			return ws.pending[j*k : (j+1)*k]
		}
	}
	ws.pendingRows = append(ws.pendingRows, i)
	ws.pending = append(ws.pending, items.Row(int(i))...)
	j := len(ws.pendingRows) - 1
	return ws.pending[j*k : (j+1)*k]
}

// itemCG solves (xtx + λI + diag(curv) + Gᵀ diag(aw) G) δ = r by a few
// CG steps from δ = 0 and returns δ (aliasing workspace memory). xtx is
// full symmetric (a general matrix-vector product is the faster kernel).
func (ws *Workspace) itemCG(xtx []float64, lambda float64, curv []float32, G blas64.General, aw, r []float64) []float64 {
	k := ws.k
	if len(ws.delta) < k {
		ws.delta = make([]float64, k)
	}
	if cap(ws.t2) < G.Rows {
		ws.t2 = make([]float64, G.Rows)
	}
	t := ws.t2[:G.Rows]
	delta, p, ap := ws.delta[:k], ws.p, ws.x
	clear(delta)
	copy(p, r)
	rs := dot(r, r)
	apply := func(dst, v []float64) {
		blas64.Gemv(blas.NoTrans, 1, blas64.General{Rows: k, Cols: k, Stride: k, Data: xtx}, blas64.Vector{N: k, Inc: 1, Data: v}, 0, blas64.Vector{N: k, Inc: 1, Data: dst})
		for f := range dst {
			dst[f] += (lambda + float64(curv[f])) * v[f]
		}
		tv := blas64.Vector{N: G.Rows, Inc: 1, Data: t}
		blas64.Gemv(blas.NoTrans, 1, G, blas64.Vector{N: k, Inc: 1, Data: v}, 0, tv)
		for j := range t {
			t[j] *= aw[j]
		}
		blas64.Gemv(blas.Trans, 1, G, tv, 1, blas64.Vector{N: k, Inc: 1, Data: dst})
	}
	for it := 0; it < itemCGSteps && rs > 1e-30; it++ {
		apply(ap, p)
		a := rs / dot(p, ap)
		axpy(a, p, delta)
		axpy(-a, ap, r)
		next := dot(r, r)
		for f := range p {
			p[f] = r[f] + next/rs*p[f]
		}
		rs = next
	}
	return delta
}

// refreshGram recomputes YᵀY exactly. Called with wmu held.
func (o *Online) refreshGram() { o.refreshGramThreads(1) }

// refreshGramThreads is refreshGram on up to threads goroutines (loading
// a whole table at start, when nothing else runs yet).
func (o *Online) refreshGramThreads(threads int) {
	fresh := make([]float64, len(o.gram))
	gramParallel(fresh, o.items, threads, nil) // safe: no writer but us
	o.mu.Lock()
	o.gram = fresh
	o.gramVersion++
	o.mu.Unlock()
	o.itemUpdates.Store(0)
}

// GramDrift returns the relative Frobenius difference between the cached
// YᵀY and an exact recomputation (a health metric; O(n·k²)).
func (o *Online) GramDrift() float64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	exact := make([]float64, len(o.gram))
	gramInto(exact, o.items, nil)
	var num, den float64
	k := o.p.Factors
	for i := range k {
		for j := i; j < k; j++ {
			v := exact[i*k+j]
			d := o.gram[i*k+j] - v
			num += d * d
			den += v * v
		}
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func norm32(v []float32) float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return float32(math.Sqrt(s))
}

// ItemRow copies item i's factors and statistics into the given slices
// (each of length K, appended to [:0]) and returns them with the count.
func (o *Online) ItemRow(i int, factors, curv []float32) ([]float32, []float32, int32) {
	o.wmu.Lock() // statistics are written outside mu by writers
	defer o.wmu.Unlock()
	k := o.p.Factors
	factors = append(factors[:0], o.items.Row(i)...)
	curv = append(curv[:0], o.curv[i*k:(i+1)*k]...)
	return factors, curv, o.counts[i]
}

// Popularity writes each item row's number of distinct users to dst
// (grown or cut to the number of rows) and returns it: the popularity a
// batch model's prior was fitted on (ItemStatsFromMatrix's counts), kept
// up to date by every item update since.
func (o *Online) Popularity(dst []float32) []float32 {
	o.wmu.Lock() // counts are written under wmu
	defer o.wmu.Unlock()
	dst = slices.Grow(dst[:0], len(o.counts))[:len(o.counts)]
	for i, c := range o.counts {
		dst[i] = float32(c)
	}
	return dst
}

// ItemRowState is the full learnt state of one item row.
type ItemRowState struct {
	Row     int32
	Factors []float32
	Curv    []float32 // may be nil: left unchanged
	Count   int32
}

// SetItems overwrites item rows (growing the table as needed) and keeps
// YᵀY consistent: used when loading state.
func (o *Online) SetItems(states []ItemRowState) error {
	return o.setItems(states, false)
}

// AddItems adds deltas to item rows (factors, curvature and count), keeping
// YᵀY consistent: how a replica applies the item updates its peers made.
// Additions commute, so replicas that exchange all their deltas converge to
// the same item factors whatever the order.
func (o *Online) AddItems(deltas []ItemRowState) error {
	return o.setItems(deltas, true)
}

// LoadItems is SetItems for loading a whole table at start: YᵀY is
// computed once from the loaded rows (O(n·k²) through BLAS) rather than
// corrected row by row (two rank-one updates each), which at 1M items is
// the difference between seconds and a fraction of one.
func (o *Online) LoadItems(states []ItemRowState) error {
	if err := o.setItemsGram(states, false, false); err != nil {
		return err
	}
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.refreshGramThreads(runtime.GOMAXPROCS(0))
	return nil
}

// LoadItemsFrom is LoadItems for a table that arrives in batches: scan
// calls load with each batch (whose memory it may reuse once load
// returns), and YᵀY is computed once at the end, so that a large table
// is loaded without first being gathered whole. On an error of scan or
// load the rows loaded so far stay, and YᵀY is refreshed all the same.
func (o *Online) LoadItemsFrom(scan func(load func([]ItemRowState) error) error) error {
	err := scan(func(states []ItemRowState) error { return o.setItemsGram(states, false, false) })
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.refreshGramThreads(runtime.GOMAXPROCS(0))
	return err
}

func (o *Online) setItems(states []ItemRowState, add bool) error {
	return o.setItemsGram(states, add, true)
}

func (o *Online) setItemsGram(states []ItemRowState, add, gram bool) error {
	k := o.p.Factors
	maxRow := -1
	for _, s := range states {
		if s.Row < 0 || len(s.Factors) != k || (s.Curv != nil && len(s.Curv) != k) {
			return fmt.Errorf("model: item state for row %d has %d factors, want %d", s.Row, len(s.Factors), k)
		}
		for _, v := range s.Factors {
			if v-v != 0 {
				return fmt.Errorf("model: item state for row %d has a non-finite factor", s.Row)
			}
		}
		maxRow = max(maxRow, int(s.Row))
	}
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.growLocked(maxRow + 1)
	ws := NewWorkspace(k)
	old := make([]float32, k)
	for _, s := range states {
		row := o.items.Row(int(s.Row))
		curv := o.curv[int(s.Row)*k : int(s.Row)*k+k]
		copy(old, row)
		if add {
			for f, v := range s.Factors {
				row[f] += v
			}
			for f, v := range s.Curv {
				curv[f] += v
			}
			o.counts[s.Row] += s.Count
		} else {
			copy(row, s.Factors)
			if s.Curv != nil {
				copy(curv, s.Curv)
			}
			o.counts[s.Row] = s.Count
		}
		if gram {
			ws.replaceOuter(o.gram, old, row)
		}
		o.norms[s.Row] = norm32(row)
		o.indexUpdate(s.Row, row)
	}
	if gram {
		symmetrize(o.gram, k)
		o.gramVersion++
	}
	o.version.Add(1)
	return nil
}

// InitItem gives a row that has no factors yet a small random start (as
// batch training starts), deterministic in seed so that every replica
// starting the same item agrees. Rows with factors are left alone. It
// returns whether the row was initialised.
func (o *Online) InitItem(row int, seed uint64) bool {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.growLocked(row + 1)
	if o.norms[row] != 0 {
		return false
	}
	rng := rand.New(rand.NewPCG(seed, 0x6b6169726f73))
	r := o.items.Row(row)
	for f := range r {
		r[f] = float32(rng.NormFloat64() * o.p.InitScale)
	}
	NewWorkspace(o.p.Factors).replaceOuter(o.gram, nil, r)
	symmetrize(o.gram, o.p.Factors)
	o.gramVersion++
	o.norms[row] = norm32(r)
	o.indexUpdate(int32(row), r)
	o.version.Add(1)
	return true
}

// XtX returns a copy of the cached XᵀX (k×k, row-major), the users' Gram
// that item updates need, for persistence.
func (o *Online) XtX() []float64 {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	return append([]float64(nil), o.xtx...)
}

// SetXtX replaces the cached XᵀX (e.g. restored from persistence).
func (o *Online) SetXtX(xtx []float64) error {
	if len(xtx) != o.p.Factors*o.p.Factors {
		return fmt.Errorf("model: XᵀX has %d entries, want %d", len(xtx), o.p.Factors*o.p.Factors)
	}
	o.wmu.Lock()
	defer o.wmu.Unlock()
	copy(o.xtx, xtx)
	return nil
}

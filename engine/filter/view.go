package filter

import (
	"container/list"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/expr-lang/expr/vm"

	"github.com/kairoshq/kairos/model"
)

// Catalog is what views are computed over: the item rows of the engine's
// catalog at a version. Its methods are called with the catalog's lock
// held by the caller (the catalog does not change during a call of
// Views.Get).
type Catalog interface {
	// Version changes with every change of an item row's entry (and with
	// every new row).
	Version() uint64
	// Rows is the number of item rows.
	Rows() int
	// ChangedSince returns the rows whose entry changed after version
	// (ok false when the change log no longer reaches back that far).
	ChangedSince(version uint64) (rows []int32, ok bool)
	// Fill sets env's item fields from row's entry (leaving the context).
	Fill(row int, env *Env)
}

// View is a filter and a boost evaluated over every item row of a
// catalog version: what a top-K scan reads instead of evaluating
// expressions per request. It is immutable once returned.
type View struct {
	// Keep holds the rows that qualify: the filter holds (or there is
	// none) and the boost is positive (or there is none).
	Keep model.Bitset
	// Count is the number of rows in Keep.
	Count int
	// Rows lists Keep's rows when they are few (at most 1/SparseShare of
	// the rows), else nil: a scan then reads only those.
	Rows []int32
	// Boost is each row's boost (nil without a boost expression), and
	// LogBoost its natural log (0 where the boost is not positive: such
	// rows do not qualify).
	Boost, LogBoost []float32

	version uint64
	rows    int
}

// SparseShare: a view lists its rows (View.Rows) when at most one row in
// SparseShare qualifies; scoring those rows one by one then reads less
// than a scan of the table.
const SparseShare = 16

// Has reports whether row qualifies.
func (v *View) Has(row int) bool { return v.Keep.Has(row) }

// Narrow sets q's boosts to the view's and, when the view lists its rows,
// q's rows (q.Keep is the caller's, which should include Has). A nil
// view leaves q alone.
func (v *View) Narrow(q *model.Query) {
	if v == nil {
		return
	}
	q.Boost, q.LogBoost = v.Boost, v.LogBoost
	if v.Rows != nil {
		q.Rows = v.Rows
	}
}

// bytes is the view's memory.
func (v *View) bytes() int {
	return 8*len(v.Keep) + 4*len(v.Rows) + 4*len(v.Boost) + 4*len(v.LogBoost) + 64
}

// Views caches the views of (filter, boost, context) triples over the
// catalog, bounded by memory (least recently used out first), and brings
// a cached view up to date with the catalog by re-evaluating only the
// rows changed since it was computed. Safe for concurrent use.
type Views struct {
	mu     sync.Mutex
	budget int // bytes
	used   int
	ll     *list.List // of *slot, most recent first
	m      map[viewKey]*list.Element
	vms    sync.Pool
	// evals counts row evaluations (tests, metrics).
	evals int64
}

type slot struct {
	key  viewKey
	mu   sync.Mutex // serialises the computation of the slot's view
	view *View
	size int
	// building, when not nil, is closed once Prepare has computed the
	// slot's first view.
	building chan struct{}
}

// NewViews returns a cache of views using at most budget bytes (a view
// of 100k rows with a boost is about 810 KB, without one 13 KB).
func NewViews(budget int) *Views {
	v := &Views{budget: budget, ll: list.New(), m: map[viewKey]*list.Element{}}
	v.vms.New = func() any { return &vm.VM{} }
	return v
}

// Evals returns the number of row evaluations made so far.
func (vs *Views) Evals() int64 {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.evals
}

// Get returns the view of filter and boost (either may be nil, not both)
// in the context ctx over cat at its current version, computing it or
// bringing a cached one up to date. The catalog must not change during
// the call (its lock held for reading).
func (vs *Views) Get(cat Catalog, filter, boost *Expr, ctx *Context) *View {
	key := keyOf(filter, boost, ctx)
	vs.mu.Lock()
	el, ok := vs.m[key]
	if !ok {
		el = vs.ll.PushFront(&slot{key: key})
		vs.m[key] = el
	} else {
		vs.ll.MoveToFront(el)
	}
	s := el.Value.(*slot)
	vs.mu.Unlock()

	s.mu.Lock()
	old := s.view
	ver, rows := cat.Version(), cat.Rows()
	var v *View
	var evals int
	switch {
	case old != nil && old.version == ver && old.rows == rows:
		v = old
	default:
		v, evals = vs.compute(cat, filter, boost, ctx, old, ver, rows)
	}
	s.view = v
	s.mu.Unlock()

	vs.mu.Lock()
	vs.evals += int64(evals)
	if _, live := vs.m[key]; live {
		vs.used += v.bytes() - s.size
		s.size = v.bytes()
	}
	for vs.used > vs.budget && vs.ll.Len() > 1 {
		last := vs.ll.Back()
		ls := last.Value.(*slot)
		if ls == s {
			break
		}
		vs.ll.Remove(last)
		delete(vs.m, ls.key)
		vs.used -= ls.size
	}
	vs.mu.Unlock()
	return v
}

// viewKey identifies a view: the expressions' texts and the values of
// the context they read (a comparable struct: no allocation per lookup).
type viewKey struct {
	filter, filterCtx, boost, boostCtx string
}

func keyOf(filter, boost *Expr, ctx *Context) viewKey {
	var k viewKey
	if filter != nil {
		k.filter, k.filterCtx = filter.src, filter.ContextKey(ctx)
	}
	if boost != nil {
		k.boost, k.boostCtx = boost.src, boost.ContextKey(ctx)
	}
	return k
}

// compute evaluates the view anew, or from old re-evaluating only the
// rows changed since (copy on write: old may be read concurrently).
func (vs *Views) compute(cat Catalog, filter, boost *Expr, ctx *Context, old *View, ver uint64, rows int) (*View, int) {
	var changed []int32
	incremental := false
	if old != nil {
		changed, incremental = cat.ChangedSince(old.version)
	}
	v := &View{version: ver, rows: rows}
	ev := vs.evaluator(filter, boost, ctx)
	defer vs.vms.Put(ev.m)
	eval := func(row int) { ev.eval(cat, v, row) }
	n := 0
	if incremental {
		v.Keep = model.NewBitset(rows)
		copy(v.Keep, old.Keep)
		if boost != nil {
			v.Boost, v.LogBoost = make([]float32, rows), make([]float32, rows)
			copy(v.Boost, old.Boost)
			copy(v.LogBoost, old.LogBoost)
		}
		for _, r := range changed {
			if int(r) < old.rows {
				eval(int(r))
				n++
			}
		}
		for r := old.rows; r < rows; r++ {
			eval(r)
			n++
		}
	} else {
		v.alloc(boost != nil)
		for r := range rows {
			eval(r)
		}
		n = rows
	}
	v.finish()
	return v, n
}

// alloc makes v's row arrays (Boost and LogBoost when withBoost).
func (v *View) alloc(withBoost bool) {
	v.Keep = model.NewBitset(v.rows)
	if withBoost {
		v.Boost, v.LogBoost = make([]float32, v.rows), make([]float32, v.rows)
	}
}

// finish sets v's Count and, when few rows qualify, Rows.
func (v *View) finish() {
	rows := v.rows
	for _, w := range v.Keep {
		v.Count += bits.OnesCount64(w)
	}
	if v.Count*SparseShare <= rows {
		v.Rows = make([]int32, 0, v.Count)
		for wi, w := range v.Keep {
			for w != 0 {
				b := bits.TrailingZeros64(w)
				v.Rows = append(v.Rows, int32(wi*64+b))
				w &^= 1 << uint(b)
			}
		}
	}
}

// evaluator evaluates one (filter, boost, context) on catalog rows into a
// view; its VM comes from vs.vms (put it back when done).
type evaluator struct {
	m             *vm.VM
	env           Env
	ctx           *Context
	filter, boost *Expr
}

func (vs *Views) evaluator(filter, boost *Expr, ctx *Context) *evaluator {
	return &evaluator{m: vs.vms.Get().(*vm.VM), env: Env{Context: *ctx}, ctx: ctx, filter: filter, boost: boost}
}

// eval evaluates row's entry of cat (whose lock is held) into v.
func (ev *evaluator) eval(cat Catalog, v *View, row int) {
	env := &ev.env
	env.Context = *ev.ctx
	cat.Fill(row, env)
	keep := ev.filter == nil || ev.filter.Eval(ev.m, env)
	if ev.boost != nil {
		b := ev.boost.Value(ev.m, env)
		v.Boost[row], v.LogBoost[row] = float32(b), 0
		if b > 0 {
			v.LogBoost[row] = float32(math.Log(b))
		}
		keep = keep && b > 0
	}
	if keep {
		v.Keep.Set(row)
	} else if v.Keep.Has(row) {
		v.Keep[row>>6] &^= 1 << (uint(row) & 63)
	}
}

// PrepareChunk is the number of rows Prepare evaluates per hold of the
// catalog's lock.
const PrepareChunk = 4096

// Prepare makes sure a view of (filter, boost, ctx) is cached, computing
// a missing one in chunks of PrepareChunk rows, each under the catalog's
// lock for reading (lock acquires it and returns its release), so that
// writers of the catalog wait for one chunk at most instead of a whole
// catalog's evaluation. Rows that change while it runs are in the
// catalog's change log after the version it started at: the next Get
// re-evaluates them (and any new rows) under the lock as for any cached
// view. Call it without the lock held. A cached view, or one being
// prepared by another caller, is left alone (the caller waits for the
// latter).
func (vs *Views) Prepare(cat Catalog, lock func() (unlock func()), filter, boost *Expr, ctx *Context) {
	if filter == nil && boost == nil {
		return
	}
	key := keyOf(filter, boost, ctx)
	vs.mu.Lock()
	if el, ok := vs.m[key]; ok {
		s := el.Value.(*slot)
		vs.mu.Unlock()
		if s.building != nil {
			<-s.building
		}
		return
	}
	s := &slot{key: key, building: make(chan struct{})}
	el := vs.ll.PushFront(s)
	vs.m[key] = el
	vs.mu.Unlock()

	v, evals := vs.build(cat, lock, filter, boost, ctx)
	unlock := lock()
	s.mu.Lock()
	if s.view == nil {
		s.view = v
	}
	s.mu.Unlock()
	unlock()
	vs.mu.Lock()
	vs.evals += int64(evals)
	if _, live := vs.m[key]; live {
		vs.used += v.bytes() - s.size
		s.size = v.bytes()
	}
	close(s.building)
	vs.mu.Unlock()
}

// build evaluates every row of cat as of the version it starts at, a
// chunk per hold of the lock.
func (vs *Views) build(cat Catalog, lock func() (unlock func()), filter, boost *Expr, ctx *Context) (*View, int) {
	unlock := lock()
	v := &View{version: cat.Version(), rows: cat.Rows()}
	unlock()
	v.alloc(boost != nil)
	ev := vs.evaluator(filter, boost, ctx)
	defer vs.vms.Put(ev.m)
	for start := 0; start < v.rows; start += PrepareChunk {
		unlock := lock()
		for r := start; r < min(start+PrepareChunk, v.rows); r++ {
			ev.eval(cat, v, r)
		}
		unlock()
	}
	v.finish()
	return v, v.rows
}

// Qualifying returns the rows of v in ascending order (tests).
func (v *View) Qualifying() []int32 {
	if v.Rows != nil {
		return slices.Clone(v.Rows)
	}
	var out []int32
	for r := range v.rows {
		if v.Keep.Has(r) {
			out = append(out, int32(r))
		}
	}
	return out
}

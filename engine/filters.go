package engine

import (
	"time"

	"github.com/kairoshq/kairos/engine/filter"
)

// Filter and boost expressions (package engine/filter).
//
// A request's filter and boost are evaluated once per item version, not
// per request: the engine keeps a view per (filter, boost, context read)
// — the set of qualifying rows and each row's boost — and brings it up to
// date with the catalog by re-evaluating only the rows changed since
// (the change log below). The ranking then reads the view: Query.Keep is
// a bit test, Query.LogBoost and Boost the boost arrays, and when at most one row in
// filter.SparseShare qualifies, Query.Rows lists them so that the scan
// scores those rows only — a selective filter makes a request cheaper,
// never starved: n results come back whenever n qualifying items are
// rankable (the approximate index is bypassed for such rows, and a
// search through it that comes back short is answered exactly).

// maxFlog is the length of the row change log before its older half is
// dropped (views older than the log are recomputed whole).
const maxFlog = 1 << 16

// rowChangedLocked records a change of row's entry; e.mu is held for
// writing.
func (e *itemCatalog) rowChangedLocked(row int32) {
	e.fver++
	e.flog = append(e.flog, row)
	if len(e.flog) > maxFlog {
		half := len(e.flog) / 2
		e.flog = append(e.flog[:0], e.flog[half:]...)
		e.flogBase += uint64(half)
	}
}

// filterCatalog adapts the catalog to filter.Catalog; e.mu is held.
type filterCatalog struct{ e *itemCatalog }

func (c filterCatalog) Version() uint64 { return c.e.fver }
func (c filterCatalog) Rows() int       { return len(c.e.idOf) }

func (c filterCatalog) ChangedSince(v uint64) ([]int32, bool) {
	e := c.e
	if v < e.flogBase || v > e.fver {
		return nil, false
	}
	return e.flog[v-e.flogBase:], true
}

func (c filterCatalog) Fill(row int, env *filter.Env) {
	e := c.e
	id := e.idOf[row]
	it := e.catalog[id]
	it.ID = id
	fillItem(env, it, id != "" && !e.inactive.Has(row))
}

// fillItem sets env's item fields from it.
func fillItem(env *filter.Env, it Item, active bool) {
	env.ID, env.Category, env.Tags, env.Attributes = it.ID, it.Category, it.Tags, it.Attrs
	env.Created, env.Active = it.Created, active
	env.Slot, env.Items = "", nil
	env.Categories = env.Categories[:0]
	if it.Category != "" {
		env.Categories = append(env.Categories, it.Category)
	}
}

// itemFilter returns r's filter and boost as a predicate on catalog
// entries (nil when r has neither), for the catalog fallback, whose
// items may have no row yet. e.mu is held.
func (e *Engine) itemFilter(r RecRequest) func(Item) bool {
	if r.Filter == nil && r.Boost == nil {
		return nil
	}
	ctx := e.filterContext(r, e.cfg.Now())
	env := &filter.Env{}
	return func(it Item) bool {
		env.Context = ctx
		fillItem(env, it, it.Active)
		return (r.Filter == nil || r.Filter.Eval(nil, env)) && (r.Boost == nil || r.Boost.Value(nil, env) > 0)
	}
}

// FilterContext returns the context an expression reads for a request:
// its segment, campaign, referrer host and device, the page item's
// catalog entry and the time (to the minute). e.mu is held.
func (e *itemCatalog) filterContext(r RecRequest, now time.Time) filter.Context {
	c := filter.Context{Campaign: r.Campaign, Referrer: referrerHost(r.Referrer), Device: r.Device,
		Now: now.UTC().Truncate(time.Minute)}
	if keys := segmentKeys(r.Campaign, r.Referrer, r.Device); len(keys) > 0 {
		c.Segment = keys[0]
	}
	if r.Item != "" {
		it := e.catalog[r.Item]
		c.Page = filter.Page{ID: r.Item, Category: it.Category, Tags: it.Tags, Attributes: it.Attrs}
	}
	return c
}

// filterView returns the view of r's filter and boost (nil when it has
// neither). e.mu is held for reading.
func (e *Engine) filterView(r RecRequest, fx, bx *filter.Expr) *filter.View {
	if fx == nil && bx == nil {
		return nil
	}
	ctx := e.filterContext(r, e.cfg.Now())
	return e.views.Get(filterCatalog{&e.itemCatalog}, fx, bx, &ctx)
}

// prepareViews computes, without holding the catalog's lock for long,
// the views r's ranking will read that are not cached yet (its filter and
// boost, and its promotion's), so that the first request with a new
// expression holds up catalog writers for one chunk of rows at most
// (filter.Views.Prepare), not a whole catalog's evaluation. e.mu is not
// held.
func (e *Engine) prepareViews(r RecRequest) {
	e.prepareView(r, r.Filter, r.Boost)
	if p := r.Promote; p != nil && p.Share > 0 {
		e.prepareView(r, and(r.Filter, p.FilterExpr), times(r.Boost, p.BoostExpr))
	}
}

func (e *Engine) prepareView(r RecRequest, fx, bx *filter.Expr) {
	if fx == nil && bx == nil {
		return
	}
	e.mu.RLock()
	ctx := e.filterContext(r, e.cfg.Now())
	e.mu.RUnlock()
	e.views.Prepare(filterCatalog{&e.itemCatalog}, e.readLockCatalog, fx, bx, &ctx)
}

// readLockCatalog takes the catalog's lock for reading and returns its
// release.
func (e *Engine) readLockCatalog() (unlock func()) {
	e.mu.RLock()
	return e.mu.RUnlock
}

package attention

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Interface guard.
var _ Store = (*MapStore)(nil)

// MapStore is the Store of every backend, written once on storage.Maps.
//
// Layout: one map per page under the key "att:<page>", with the field
// "e:<element>" → the element's dwell in ms (an integer; OtherElement
// is "e:(other)") and the field "n" → the number of elements other than
// OtherElement. Dwell is only added to (commutative across replicas);
// a write that adds elements to a page sets n guarded by its value as
// read (IfEquals, or IfAbsent for a new page), so that the MaxElements
// bound stays exact when several replicas write one page: of concurrent
// writers that add elements, one wins and the others read again and
// retry. Every write is guarded by n, so a page that expires between the
// read and the write is read again too. The map expires at the write's
// ExpireAt.
type MapStore struct {
	m storage.Maps
}

// NewStore returns the dwell kept in m.
func NewStore(m storage.Maps) *MapStore { return &MapStore{m: m} }

// Fields of a page map.
const (
	countField = "n"
	elemPrefix = "e:"
	otherField = elemPrefix + OtherElement
	// maxReads bounds the concurrent reads of one write.
	maxReads = 8
	// maxAttempts bounds the retries of a write that lost to concurrent
	// writers adding elements to one of its pages.
	maxAttempts = 32
)

// PageMapKey returns the key of a page's map.
func PageMapKey(page string) string { return "att:" + page }

// pageWrite is the deltas of one page, summed per element.
type pageWrite struct {
	key   string
	els   []string // in first-seen order
	ms    []int64
	field []string // "e:" + element, then countField
}

// AddDwell reads the touched elements and the element count of each page
// the write touches (one Fields call per page, concurrently), then applies
// the write of each page in one storage.Txn on the page's map: OpIncr of
// every element (new elements past MaxElements go to OtherElement), the
// new count when the page gains elements, and the page's expiry. A page
// whose count changed meanwhile is read again and retried. One Txn per
// page keeps each on one map, as a sharded backend needs (storage.Txn);
// on an error, the pages written before it stay written.
func (s *MapStore) AddDwell(ctx context.Context, w Write) error {
	if err := w.Check(); err != nil {
		return fmt.Errorf("attention store: add dwell: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("attention store: add dwell: %w", err)
	}
	if len(w.Deltas) == 0 {
		return nil
	}
	pages := groupPages(w.Deltas)
	for range maxAttempts {
		ts, err := s.txns(ctx, pages, &w)
		if err != nil {
			return fmt.Errorf("attention store: add dwell: %w", err)
		}
		var retry []*pageWrite
		for i, t := range ts {
			switch err := s.m.Apply(ctx, t); {
			case errors.Is(err, errs.Conflict):
				retry = append(retry, pages[i])
			case err != nil:
				return fmt.Errorf("attention store: add dwell: %w", err)
			}
		}
		if pages = retry; len(pages) == 0 {
			return nil
		}
	}
	return errs.New(errs.Conflict, "attention store: add dwell: pages are being changed concurrently; retry")
}

// groupPages sums the deltas per page and element.
func groupPages(ds []Delta) []*pageWrite {
	var out []*pageWrite
	byPage := make(map[string]*pageWrite, 4)
	for i := range ds {
		d := &ds[i]
		p := byPage[d.Page]
		if p == nil {
			p = &pageWrite{key: PageMapKey(d.Page)}
			byPage[d.Page] = p
			out = append(out, p)
		}
		j := indexOf(p.els, d.Element)
		if j < 0 {
			p.els = append(p.els, d.Element)
			p.ms = append(p.ms, 0)
			p.field = append(p.field, elemPrefix+d.Element)
			j = len(p.els) - 1
		}
		p.ms[j] += d.Ms
	}
	for _, p := range out {
		p.field = append(p.field, countField)
	}
	return out
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// txns reads the pages' state (one Fields call per page, concurrently:
// one round trip's latency) and builds the write's transaction of each
// page.
func (s *MapStore) txns(ctx context.Context, pages []*pageWrite, w *Write) ([]storage.Txn, error) {
	cur := make([]map[string]string, len(pages))
	if len(pages) == 1 {
		h, err := s.m.Fields(ctx, pages[0].key, pages[0].field)
		if err != nil {
			return nil, err
		}
		cur[0] = h
	} else {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(maxReads)
		for i, p := range pages {
			g.Go(func() error {
				h, err := s.m.Fields(gctx, p.key, p.field)
				cur[i] = h
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	ts := make([]storage.Txn, len(pages))
	for i, p := range pages {
		// Derived counters: no disk sync of their own.
		ts[i] = storage.Txn{Lazy: true, Ops: make([]storage.Op, 0, len(p.els)+3)}
		if err := p.ops(&ts[i], cur[i], w); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// ops appends to t the page's changes given its fields h as read.
func (p *pageWrite) ops(t *storage.Txn, h map[string]string, w *Write) error {
	n := 0
	nv, hasN := h[countField]
	if hasN {
		var err error
		if n, err = strconv.Atoi(nv); err != nil || n < 0 {
			return fmt.Errorf("%w: %s: field %q = %q is not a count", errs.Internal, p.key, countField, nv)
		}
		t.IfEquals(p.key, countField, nv)
	} else {
		t.IfAbsent(p.key, countField)
	}
	added := 0
	var other int64
	for i, el := range p.els {
		f := p.field[i]
		_, exists := h[f]
		switch {
		case exists || el == OtherElement:
		case n+added < w.MaxElements:
			added++
		default:
			other += p.ms[i]
			continue
		}
		t.Incr(p.key, f, p.ms[i])
	}
	if other > 0 {
		t.Incr(p.key, otherField, other)
	}
	if added > 0 || !hasN {
		t.Set(p.key, countField, strconv.Itoa(n+added))
	}
	if !w.ExpireAt.IsZero() {
		t.Expire(p.key, w.ExpireAt)
	}
	return nil
}

// PageDwell reads the page's map; the backend leaves it out when it
// expired.
func (s *MapStore) PageDwell(ctx context.Context, page string) ([]ElementDwell, error) {
	key := PageMapKey(page)
	ms, err := s.m.Maps(ctx, []string{key})
	if err != nil {
		return nil, fmt.Errorf("attention store: page dwell: %w", err)
	}
	var h map[string]string
	if len(ms) == 1 {
		h = ms[0]
	}
	out := make([]ElementDwell, 0, len(h))
	for f, v := range h {
		el, ok := strings.CutPrefix(f, elemPrefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("attention store: page dwell: %w: %s: field %q: %q is not an integer", errs.Internal, key, f, v)
		}
		out = append(out, ElementDwell{Element: el, Ms: n})
	}
	return out, nil
}

package promo

import (
	"slices"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// op is the operation of a compiled condition node.
type op uint8

const (
	opAll op = iota
	opAny
	opNot
	opCount
	opDwell
	opScroll
	opExit
	opAffinity
	opSession
)

// node is a compiled condition.
type node struct {
	op   op
	kids []node

	types                       []signals.Type
	typeMask                    uint16 // known types of types (bit typeCode)
	otherTypes                  bool   // types has custom (unknown) types
	item, offer, category, page string
	element                     string // dwell on a custom element (batch only)
	win                         window
	min, max                    float64 // max < 0: none
	minEvents                   int
	minDur                      time.Duration
}

// compileCond compiles a decoded (valid) condition.
func compileCond(c *Cond) node {
	switch {
	case c.All != nil || c.Any != nil:
		n := node{op: opAll}
		src := c.All
		if c.Any != nil {
			n.op, src = opAny, c.Any
		}
		n.kids = make([]node, len(src))
		for i := range src {
			n.kids[i] = compileCond(&src[i])
		}
		return n
	case c.Not != nil:
		return node{op: opNot, kids: []node{compileCond(c.Not)}}
	case c.Count != nil:
		n := leaf(opCount, &c.Count.Filter, winSession)
		n.types = c.Count.Type
		for _, t := range n.types {
			if code := typeCode(t); code != 0 {
				n.typeMask |= 1 << code
			} else {
				n.otherTypes = true
			}
		}
		n.min, n.max = float64(c.Count.Min), -1
		if c.Count.Max != nil {
			n.max = float64(*c.Count.Max)
		}
		return n
	case c.Dwell != nil:
		n := leaf(opDwell, &c.Dwell.Filter, winSession)
		n.min = c.Dwell.MinMs
		el := c.Dwell.Element
		switch {
		case strings.HasPrefix(el, "item:") && n.item == "":
			n.item = el[len("item:"):]
		case strings.HasPrefix(el, "offer:") && n.offer == "":
			n.offer = el[len("offer:"):]
		default:
			n.element = el
		}
		return n
	case c.Scroll != nil:
		n := leaf(opScroll, &c.Scroll.Filter, winSession)
		n.min = c.Scroll.Min
		return n
	case c.Exit != nil:
		return leaf(opExit, &c.Exit.Filter, winBatch)
	case c.Affinity != nil:
		return node{op: opAffinity, offer: c.Affinity.Offer, min: c.Affinity.Min}
	case c.Session != nil:
		return node{op: opSession, minEvents: c.Session.MinEvents, minDur: time.Duration(c.Session.MinDuration)}
	}
	return node{op: opAny} // empty: never holds (decodeCond refuses it)
}

// knownTypes are the event types with a code (their index + 1).
var knownTypes = [...]signals.Type{signals.TypeView, signals.TypeClick, signals.TypeLike, signals.TypeDwell,
	signals.TypeScroll, signals.TypeAddToCart, signals.TypeConversion, signals.TypeImpression,
	signals.TypeIdentify, signals.TypeExit}

// typeCode returns the code of a known type, 0 for others.
func typeCode(t signals.Type) uint8 {
	for i, k := range knownTypes {
		if t == k {
			return uint8(i + 1)
		}
	}
	return 0
}

func leaf(o op, f *Filter, def windowKind) node {
	w, _ := parseWindow("", f.Within, def)
	return node{op: o, item: f.Item, offer: f.Offer, category: f.Category, page: f.Page, win: w}
}

// evalCtx is one visitor's state after a batch, as conditions see it.
// It is reused (pooled): reset fills it.
type evalCtx struct {
	hist  []engine.HistoryEvent // oldest first, ends with the batch
	fresh []signals.Event       // the batch, aligned with hist[tail:]
	tail  int
	view  []engine.HistoryEvent // hist in time order (hist itself when sorted)
	buf   []engine.HistoryEvent
	ref   time.Time // the newest event time of the visitor
	sess  engine.Session

	e     *Engine   // categories and affinities (nil: none known)
	x     []float32 // the visitor's factors
	vcats []string  // category of each event of view, looked up on first use
	vhas  []bool
	vtype []uint8 // typeCode of each event of view
	affs  []affMemo
}

type affMemo struct {
	offer string
	a     float64
	ok    bool
}

// reset prepares c for a visitor change.
func (c *evalCtx) reset(ch *engine.VisitorChange) {
	c.hist = ch.Visitor.History
	c.fresh = ch.Fresh
	c.tail = max(0, len(c.hist)-len(c.fresh))
	c.sess = ch.Visitor.Session
	c.view = c.hist
	if !slices.IsSortedFunc(c.hist, byTime) {
		c.buf = append(c.buf[:0], c.hist...)
		slices.SortStableFunc(c.buf, byTime)
		c.view = c.buf
	}
	c.vtype = c.vtype[:0]
	for i := range c.view {
		c.vtype = append(c.vtype, typeCode(c.view[i].Type))
	}
	c.ref = time.Time{}
	if len(c.view) > 0 {
		c.ref = c.view[len(c.view)-1].Time
	}
	c.vcats = c.vcats[:0]
	c.vhas = c.vhas[:0]
	c.affs = c.affs[:0]
}

func byTime(a, b engine.HistoryEvent) int { return a.Time.Compare(b.Time) }

// events returns the events of window w and the index in view of the
// first (-1 when they are not a part of view).
func (c *evalCtx) events(w window) ([]engine.HistoryEvent, int) {
	switch w.kind {
	case winBatch:
		if len(c.view) > 0 && &c.view[0] == &c.hist[0] {
			return c.hist[c.tail:], c.tail
		}
		return c.hist[c.tail:], -1
	case winAll:
		return c.view, 0
	case winSession:
		return c.since(c.sess.Start)
	}
	return c.since(c.ref.Add(-w.d))
}

// since returns the events at or after t, and the index of the first.
func (c *evalCtx) since(t time.Time) ([]engine.HistoryEvent, int) {
	lo, hi := 0, len(c.view)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.view[m].Time.Before(t) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return c.view[lo:], lo
}

// categoryAt returns the category of the item of event i of view (or,
// when i < 0, of item).
func (c *evalCtx) categoryAt(i int, item string) string {
	if i < 0 {
		return c.categoryOf(item)
	}
	if len(c.vhas) == 0 {
		c.vhas = append(c.vhas, make([]bool, len(c.view))...)
		c.vcats = append(c.vcats, make([]string, len(c.view))...)
	}
	if !c.vhas[i] {
		c.vcats[i] = c.categoryOf(c.view[i].Item)
		c.vhas[i] = true
	}
	return c.vcats[i]
}

func (c *evalCtx) categoryOf(item string) string {
	if item == "" || c.e == nil || c.e.model == nil {
		return ""
	}
	if it, ok := c.e.model.CachedItem(item); ok {
		return it.Category
	}
	return ""
}

func (c *evalCtx) affinityOf(offer string) (float64, bool) {
	for _, m := range c.affs {
		if m.offer == offer {
			return m.a, m.ok
		}
	}
	var a float64
	var ok bool
	if c.e != nil {
		a, ok = c.e.Affinity(c.x, offer)
	}
	c.affs = append(c.affs, affMemo{offer, a, ok})
	return a, ok
}

// match reports whether h, event i of view (-1: not in view), passes the
// leaf's filter (types excepted when typ is set: the leaf's own type).
func (n *node) match(c *evalCtx, h *engine.HistoryEvent, i int, typ signals.Type) bool {
	if typ != "" {
		if h.Type != typ {
			return false
		}
	} else if len(n.types) > 0 {
		var code uint8
		if i >= 0 {
			code = c.vtype[i]
		} else {
			code = typeCode(h.Type)
		}
		if code != 0 {
			if n.typeMask&(1<<code) == 0 {
				return false
			}
		} else if !n.otherTypes || !slices.Contains(n.types, h.Type) {
			return false
		}
	}
	if n.item != "" && h.Item != n.item {
		return false
	}
	if n.offer != "" && h.Offer != n.offer {
		return false
	}
	if n.page != "" && !strings.Contains(h.Page, n.page) {
		return false
	}
	if n.category != "" && c.categoryAt(i, h.Item) != n.category {
		return false
	}
	return true
}

// eval evaluates the condition on c.
func (n *node) eval(c *evalCtx) bool {
	switch n.op {
	case opAll:
		for i := range n.kids {
			if !n.kids[i].eval(c) {
				return false
			}
		}
		return true
	case opAny:
		for i := range n.kids {
			if n.kids[i].eval(c) {
				return true
			}
		}
		return false
	case opNot:
		return !n.kids[0].eval(c)
	case opCount:
		evs, at := c.events(n.win)
		cnt := 0.0
		for i := range evs {
			if n.match(c, &evs[i], idx(at, i), "") {
				cnt++
				if n.max < 0 && cnt >= n.min {
					return true
				}
				if n.max >= 0 && cnt > n.max {
					return false
				}
			}
		}
		return cnt >= n.min && (n.max < 0 || cnt <= n.max)
	case opDwell:
		sum := 0.0
		if n.element != "" {
			for i := c.tail; i < len(c.hist); i++ {
				if c.fresh[i-c.tail].Element == n.element && n.match(c, &c.hist[i], -1, signals.TypeDwell) {
					sum += c.hist[i].Value
				}
			}
			return sum >= n.min
		}
		evs, at := c.events(n.win)
		for i := range evs {
			if n.match(c, &evs[i], idx(at, i), signals.TypeDwell) {
				if sum += evs[i].Value; sum >= n.min {
					return true
				}
			}
		}
		return false
	case opScroll:
		evs, at := c.events(n.win)
		for i := range evs {
			if evs[i].Value >= n.min && n.match(c, &evs[i], idx(at, i), signals.TypeScroll) {
				return true
			}
		}
		return false
	case opExit:
		evs, at := c.events(n.win)
		for i := range evs {
			if n.match(c, &evs[i], idx(at, i), signals.TypeExit) {
				return true
			}
		}
		return false
	case opAffinity:
		a, ok := c.affinityOf(n.offer)
		return ok && a >= n.min
	case opSession:
		return c.sess.Events >= n.minEvents && c.sess.Last.Sub(c.sess.Start) >= n.minDur
	}
	return false
}

// idx is the view index of element i of a window starting at at.
func idx(at, i int) int {
	if at < 0 {
		return -1
	}
	return at + i
}

// compiledRule is a rule ready to evaluate.
type compiledRule struct {
	Rule
	root node
}

// compileRules compiles the active rules, highest priority first (ties:
// ascending id).
func compileRules(rules []Rule) []*compiledRule {
	out := make([]*compiledRule, 0, len(rules))
	for i := range rules {
		if !rules[i].Active {
			continue
		}
		out = append(out, &compiledRule{Rule: rules[i], root: compileCond(&rules[i].When)})
	}
	slices.SortFunc(out, func(a, b *compiledRule) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

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
	ref   time.Time // the newest event time of the batch
	sess  engine.Session

	e    *Engine   // categories and affinities (nil: none known)
	x    []float32 // the visitor's factors
	cats map[string]string
	affs []affMemo
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
	c.ref = time.Time{}
	for i := c.tail; i < len(c.hist); i++ {
		if t := c.hist[i].Time; t.After(c.ref) {
			c.ref = t
		}
	}
	if c.ref.IsZero() && len(c.hist) > 0 {
		c.ref = c.hist[len(c.hist)-1].Time
	}
	c.view = c.hist
	if !slices.IsSortedFunc(c.hist, byTime) {
		c.buf = append(c.buf[:0], c.hist...)
		slices.SortStableFunc(c.buf, byTime)
		c.view = c.buf
	}
	clear(c.cats)
	c.affs = c.affs[:0]
}

func byTime(a, b engine.HistoryEvent) int { return a.Time.Compare(b.Time) }

// events returns the events of window w.
func (c *evalCtx) events(w window) []engine.HistoryEvent {
	switch w.kind {
	case winBatch:
		return c.hist[c.tail:]
	case winAll:
		return c.view
	case winSession:
		return c.since(c.sess.Start)
	}
	return c.since(c.ref.Add(-w.d))
}

// since returns the events at or after t.
func (c *evalCtx) since(t time.Time) []engine.HistoryEvent {
	lo, hi := 0, len(c.view)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.view[m].Time.Before(t) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return c.view[lo:]
}

func (c *evalCtx) categoryOf(item string) string {
	if item == "" || c.e == nil || c.e.model == nil {
		return ""
	}
	if cat, ok := c.cats[item]; ok {
		return cat
	}
	var cat string
	if it, ok := c.e.model.CachedItem(item); ok {
		cat = it.Category
	}
	if c.cats == nil {
		c.cats = map[string]string{}
	}
	c.cats[item] = cat
	return cat
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

// match reports whether h passes the leaf's filter (types excepted when
// typ is set: the leaf's own type).
func (n *node) match(c *evalCtx, h *engine.HistoryEvent, typ signals.Type) bool {
	if typ != "" {
		if h.Type != typ {
			return false
		}
	} else if len(n.types) > 0 && !slices.Contains(n.types, h.Type) {
		return false
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
	if n.category != "" && c.categoryOf(h.Item) != n.category {
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
		evs := c.events(n.win)
		cnt := 0.0
		for i := range evs {
			if n.match(c, &evs[i], "") {
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
				if c.fresh[i-c.tail].Element == n.element && n.match(c, &c.hist[i], signals.TypeDwell) {
					sum += c.hist[i].Value
				}
			}
			return sum >= n.min
		}
		evs := c.events(n.win)
		for i := range evs {
			if n.match(c, &evs[i], signals.TypeDwell) {
				if sum += evs[i].Value; sum >= n.min {
					return true
				}
			}
		}
		return false
	case opScroll:
		evs := c.events(n.win)
		for i := range evs {
			if evs[i].Value >= n.min && n.match(c, &evs[i], signals.TypeScroll) {
				return true
			}
		}
		return false
	case opExit:
		evs := c.events(n.win)
		for i := range evs {
			if n.match(c, &evs[i], signals.TypeExit) {
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

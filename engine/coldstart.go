package engine

import (
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
)

// Cold start (see the package documentation, "Cold start").
//
// A request may carry its context: the item of the current page, the
// referrer, the UTM campaign and the device class. A visitor without
// learning events is answered from that context: the page item's
// neighbours (cosine of factors) blended with the recency-weighted trending
// of the most specific segment the request belongs to (campaign, else
// referrer host, else device class, else everyone). From the first
// learning event on, the visitor's fold-in scores are blended in with a
// confidence n/(n+κ) that grows with the visitor's n learning events
// (model.Blend, κ = 8 by default, chosen on MovieLens 100K), and the
// popularity part is the items' all-time popularity (distinct visitors,
// what a retrain fits the prior on; see popularity) instead of the
// segment's trending; from Config.BlendBelow events on, the fold-in alone
// ranks (through the approximate index for large catalogs) — unless the
// loaded snapshot carries a popularity prior ρ > 0 (fitted on validation
// by the retrain), which keeps a share of popularity in every visitor's
// ranking: then these visitors are ranked by the blend of their fold-in
// and popularity (not the page's context; strategy "als"), whose
// candidates include the fold-in's top through the same index.

// segmentKeys returns the trending segments an event or request belongs
// to, most specific first.
func segmentKeys(campaign, referrer, device string) []string {
	var keys []string
	if campaign != "" {
		keys = append(keys, "campaign:"+campaign)
	}
	if host := referrerHost(referrer); host != "" {
		keys = append(keys, "referrer:"+host)
	}
	if device != "" {
		keys = append(keys, "device:"+device)
	}
	return keys
}

func referrerHost(r string) string {
	if r == "" {
		return ""
	}
	u, err := url.Parse(r)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
}

// eventSegments are the segments of an event: its utm_campaign and device
// props and its referrer.
func eventSegments(ev *signals.Event) []string {
	return segmentKeys(ev.Props["utm_campaign"], ev.Referrer, ev.Props["device"])
}

// segment is the trending counter of one segment.
type segment struct {
	trend  *model.Trending
	events int
}

// minSegmentEvents is the volume from which a segment's trending is used.
const minSegmentEvents = 20

// countSegmentsLocked adds a learning event to its segments' trending
// (new segments only while fewer than Config.MaxSegments exist). e.mu must
// be held for writing.
func (e *Engine) countSegmentsLocked(ev *signals.Event, row int32, w float64) {
	for _, k := range eventSegments(ev) {
		s := e.segmentLocked(k)
		if s == nil {
			continue
		}
		s.trend.Add(int(row), w, ev.Time.Time)
		s.events++
	}
}

// trendingFor returns the trending scores for a request: the most specific
// segment with enough volume, else everyone's. e.mu must be held.
func (e *itemCatalog) trendingFor(r RecRequest) (scores []float32, segment string) {
	for _, k := range segmentKeys(r.Campaign, r.Referrer, r.Device) {
		if s, ok := e.segments[k]; ok && s.events >= minSegmentEvents {
			return s.trend.Scores(), k
		}
	}
	return e.trending.Scores(), ""
}

// learningEvents counts the learning events of a history.
func learningEvents(hist []HistoryEvent) int {
	n := 0
	for _, h := range hist {
		if h.Weight > 0 && h.Item != "" {
			n++
		}
	}
	return n
}

// blendCandidates is the least number of candidates each part supplies.
const blendCandidates = 50

func dot(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

func norm(a []float32) float64 { return math.Sqrt(dot(a, a)) }

// moments returns the item moments of o. They are computed (O(n·k²))
// synchronously only for a model without any; when the model changed and
// they are over momentsTTL old, they are recomputed in the background and
// the previous ones serve meanwhile.
func (e *serving) moments(o *model.Online) *model.Moments {
	e.candMu.Lock()
	m, of, at, busy := e.mom, e.momOf, e.momAt, e.momBusy
	stale := m == nil || of != o || (m.Version != o.Version() && time.Since(at) >= momentsTTL)
	if stale && m != nil && of == o && !busy {
		e.momBusy = true
		// Untracked on purpose: a computation without I/O that ends on
		// its own (momBusy bounds it to one), started by requests that
		// may outlive Run.
		go func() {
			fresh := o.Moments()
			e.candMu.Lock()
			e.mom, e.momAt, e.momBusy = fresh, time.Now(), false
			e.candMu.Unlock()
		}()
	}
	e.candMu.Unlock()
	if m != nil && of == o {
		return m
	}
	// None for this model yet: one request computes them, the others wait.
	e.momMu.Lock()
	defer e.momMu.Unlock()
	e.candMu.Lock()
	if e.mom != nil && e.momOf == o {
		m = e.mom
		e.candMu.Unlock()
		return m
	}
	e.candMu.Unlock()
	fresh := o.Moments()
	e.candMu.Lock()
	e.mom, e.momOf, e.momAt = fresh, o, time.Now()
	e.candMu.Unlock()
	return fresh
}

// Cache lifetimes of the blend's candidates and statistics.
const (
	momentsTTL    = 10 * time.Second
	trendingTTL   = time.Second
	neighboursTTL = 30 * time.Second
	maxNeighbours = 4096 // cached page items
)

// trendTop is a cached trending top list with the mean and deviation of
// log(1 + trending) over all items.
type trendTop struct {
	at       time.Time
	rows     []int32
	mean, sd float64
}

// popularityKey is the trendingTop key of the all-time popularity
// (segment keys are never empty-prefixed like this one).
const popularityKey = "\x00popularity"

// popularity returns each item row's number of distinct visitors in o (at
// most trendingTTL old), or nil while no item has one: the popularity a
// retrain fits the blend's prior on (offline: the training pairs of each
// item), with every event learnt since. A visitor ranked with factors
// gets it in the blend instead of the segment's 24-hour trending, which
// predicts the next event far worse (prequential Recall@10 of the two as
// rankers, second half of each log, kairos eval stream --modes
// pop,trending: ml-100k 0.0783 against 0.0619,
// ml-latest-small 0.0349 against 0.0111, diginetica 0.0096 against
// 0.0035) and is not what the prior was fitted with.
//
// One request refreshes it (popBusy); the others keep the previous one
// meanwhile.
func (e *serving) popularity(o *model.Online) []float32 {
	e.candMu.Lock()
	if e.popOf == o && (e.popBusy || time.Since(e.popAt) < trendingTTL) {
		p := e.pop
		e.candMu.Unlock()
		return p
	}
	e.popBusy = true
	e.candMu.Unlock()
	p := o.Popularity(nil)
	if !slices.ContainsFunc(p, func(v float32) bool { return v > 0 }) {
		p = nil
	}
	e.candMu.Lock()
	e.pop, e.popOf, e.popAt, e.popBusy = p, o, time.Now(), false
	e.candMu.Unlock()
	return p
}

// trendingTop returns the (cached) top-m rows of a trending vector and its
// statistics; nil when it is empty.
func (e *Engine) trendingTop(key string, trend []float32, m int) *trendTop {
	e.candMu.Lock()
	defer e.candMu.Unlock()
	if t, ok := e.trendTops[key]; ok && time.Since(t.at) < trendingTTL && len(t.rows) >= min(m, len(trend)) {
		return t
	}
	var sum, sq float64
	for _, v := range trend {
		l := math.Log1p(max(float64(v), 0))
		sum += l
		sq += l * l
	}
	if len(trend) == 0 {
		return nil
	}
	n := float64(len(trend))
	t := &trendTop{at: time.Now(), mean: sum / n, sd: math.Sqrt(max(sq/n-(sum/n)*(sum/n), 0))}
	var sc model.Scorer
	for _, c := range sc.SelectTop(nil, trend, m, e.inactive, nil) {
		t.rows = append(t.rows, c.Item)
	}
	e.trendTops[key] = t
	return t
}

// neighbours returns the (cached) m rows most similar to row.
func (e *Engine) neighbours(o *model.Online, row int32, m int) []int32 {
	e.candMu.Lock()
	if n, ok := e.neigh[row]; ok && time.Since(n.at) < neighboursTTL && len(n.rows) >= m {
		e.candMu.Unlock()
		return n.rows
	}
	e.candMu.Unlock()
	var sc model.Scorer
	top, err := e.similar(o, &sc, nil, int(row), model.Query{N: m, Exclude: e.inactive})
	if err != nil {
		return nil
	}
	rows := make([]int32, len(top))
	for i, t := range top {
		rows[i] = t.Item
	}
	e.candMu.Lock()
	if len(e.neigh) >= maxNeighbours {
		clear(e.neigh)
	}
	e.neigh[row] = &cachedRows{at: time.Now(), rows: rows}
	e.candMu.Unlock()
	return rows
}

// cachedRows is a cached candidate list.
type cachedRows struct {
	at   time.Time
	rows []int32
}

// catalogFallback returns active catalog items, most recently updated
// first: the answer when nothing has been learnt yet. e.mu must be held.
func (e *itemCatalog) catalogFallback(n int, exclude model.Bitset, category string, keep func(Item) bool) []Rec {
	items := make([]Item, 0, len(e.catalog))
	for _, it := range e.catalog {
		if !it.Active || (category != "" && it.Category != category) || (keep != nil && !keep(it)) {
			continue
		}
		if row, ok := e.rowOf[it.ID]; ok && exclude.Has(int(row)) {
			continue
		}
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b Item) int {
		if c := b.Updated.Compare(a.Updated); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := make([]Rec, 0, min(n, len(items)))
	for _, it := range items[:min(n, len(items))] {
		out = append(out, Rec{Item: it.ID, Title: it.Title, Category: it.Category})
	}
	return out
}

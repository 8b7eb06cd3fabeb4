package engine

import (
	"net/url"
	"slices"
	"strings"

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
// (model.Blend, κ = 8 by default, chosen on MovieLens 100K); from
// Config.BlendBelow events on, the fold-in alone ranks (through the
// approximate index for large catalogs).

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
		s, ok := e.segments[k]
		if !ok {
			if len(e.segments) >= e.cfg.MaxSegments {
				continue
			}
			s = &segment{trend: model.NewTrending(e.cfg.TrendingHalfLife)}
			e.segments[k] = s
		}
		s.trend.Add(int(row), w, ev.Time.Time)
		s.events++
	}
}

// trendingFor returns the trending scores for a request: the most specific
// segment with enough volume, else everyone's. e.mu must be held.
func (e *Engine) trendingFor(r RecRequest) (scores []float32, segment string) {
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

// blendRank ranks by model.Blend of the visitor's fold-in scores (x may be
// nil), the page item's neighbours and the segment's trending. e.mu must be
// held for reading; s.exclude is the candidates' complement.
func (e *Engine) blendRank(s *scratch, x []float32, events int, r RecRequest, keep func(int) bool) ([]model.Scored, Strategy) {
	o := e.model()
	n := o.Len()
	trend, _ := e.trendingFor(r)
	in := model.BlendInput{Events: events, Exclude: s.exclude}
	if len(trend) > 0 {
		s.trend = append(s.trend[:0], trend...)
		s.trend = append(s.trend, make([]float32, max(0, n-len(s.trend)))...)[:n]
		in.Trending = s.trend
	}
	if row, ok := e.rowOf[r.Item]; ok && r.Item != "" {
		s.y = o.ItemFactors(s.y, int(row))
		if !isZero(s.y) {
			s.itemScores = o.ScoreAll(s.itemScores, s.y, true)
			in.Item = s.itemScores
			s.exclude.Set(int(row))
		}
	}
	if x != nil {
		s.personal = o.ScoreAll(s.personal, x, false)
		in.Personal = s.personal
	}
	strategy := StrategyContext
	if x != nil {
		strategy = StrategyBlend
	} else if in.Item == nil && in.Trending == nil {
		return nil, StrategyTrending
	} else if in.Item == nil {
		strategy = StrategyTrending
	}
	s.mixed = e.cfg.Blend.Scores(s.mixed, in)
	return s.scorer.SelectTop(s.top, s.mixed, r.N, s.exclude, keep), strategy
}

// catalogFallback returns active catalog items, most recently updated
// first: the answer when nothing has been learnt yet. e.mu must be held.
func (e *Engine) catalogFallback(n int, exclude model.Bitset, category string) []Rec {
	items := make([]Item, 0, len(e.catalog))
	for _, it := range e.catalog {
		if !it.Active || (category != "" && it.Category != category) {
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

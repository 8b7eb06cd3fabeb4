package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/model"
)

// Trending shared by the replicas.
//
// Each replica counts the learning events it consumes, a share of the
// traffic. Its own counters are one field (named Config.Replica) of the
// store map trendingKey; every StateEvery a replica writes its own and
// reads the others', and serves the sum: e.trending holds its own counts
// plus the peers' as last read (peers), so every replica ranks trending,
// the cold-start blend and the dashboard by the whole traffic, as of at
// most StateEvery ago for the others' share. A replica that stops leaves
// its field: its counts were real traffic, and they decay like the rest
// (a replica that starts again under its name goes on from them); a
// field left unsaved for long is adopted by another replica (mergePeers).
// The segments' counters (campaign, referrer, device) travel in the same
// field, each segment's own events and its top sharedSegmentItems items,
// and are merged the same way (within Config.MaxSegments); a replica's
// own segments are restored from its field when it starts again.

// sharedSegmentItems bounds the items a replica shares per segment: a
// segment's trending serves its top, and 100 segments of a large catalog
// would otherwise write megabytes every StateEvery.
const sharedSegmentItems = 1000

// trendingKey is the store map of every replica's trending counters.
const trendingKey = "engine:trending"

// peerTrending is the peers' part of e.trending: relative scores by
// item id at epoch, and the peers' part of each segment.
type peerTrending struct {
	epoch    time.Time
	scores   map[string]float32
	segments map[string]*peerSegment
}

// peerSegment is the peers' part of one segment's counters.
type peerSegment struct {
	epoch  time.Time
	scores map[string]float32
	events int
}

// segmentState is one segment's counters as a replica shares them.
type segmentState struct {
	Events int       `json:"events"`
	Epoch  time.Time `json:"epoch"`
	Scores []float32 `json:"scores"`
	IDs    []string  `json:"ids"`
}

// ownTrendingLocked returns this replica's own trending counters (those
// of e.trending less the peers'), items with a score only. e.mu is held.
func (e *Engine) ownTrendingLocked() trendingState {
	ts := trendingState{HalfLife: e.trending.HalfLife(), Epoch: e.trending.Epoch()}
	for row, v := range e.trending.Scores() {
		if row >= len(e.idOf) {
			break
		}
		id := e.idOf[row]
		if p, ok := e.peers.scores[id]; ok {
			v -= e.trendingAt(p, e.peers.epoch)
		}
		if v > 0 {
			ts.Scores = append(ts.Scores, v)
			ts.IDs = append(ts.IDs, id)
		}
	}
	for k, seg := range e.segments {
		if own := e.ownSegmentLocked(k, seg); own.Events > 0 || len(own.IDs) > 0 {
			if ts.Segments == nil {
				ts.Segments = map[string]segmentState{}
			}
			ts.Segments[k] = own
		}
	}
	return ts
}

// ownSegmentLocked returns this replica's own counters of segment k (seg
// less the peers' part), its top sharedSegmentItems items only. e.mu is
// held.
func (e *Engine) ownSegmentLocked(k string, seg *segment) segmentState {
	own := segmentState{Events: seg.events, Epoch: seg.trend.Epoch()}
	peer := e.peers.segments[k]
	if peer != nil {
		own.Events -= peer.events
	}
	type scored struct {
		id string
		v  float32
	}
	var items []scored
	for row, v := range seg.trend.Scores() {
		if row >= len(e.idOf) {
			break
		}
		id := e.idOf[row]
		if peer != nil {
			if p, ok := peer.scores[id]; ok {
				v -= model.RescaleTrending(p, peer.epoch, seg.trend.Epoch(), seg.trend.HalfLife())
			}
		}
		if v > 0 {
			items = append(items, scored{id, v})
		}
	}
	if len(items) > sharedSegmentItems {
		slices.SortFunc(items, func(a, b scored) int { return cmp.Or(cmp.Compare(b.v, a.v), cmp.Compare(a.id, b.id)) })
		items = items[:sharedSegmentItems]
	}
	for _, it := range items {
		own.IDs = append(own.IDs, it.id)
		own.Scores = append(own.Scores, it.v)
	}
	own.Events = max(own.Events, 0)
	return own
}

// trendingAt converts the relative score s at epoch to e.trending's.
func (e *Engine) trendingAt(s float32, epoch time.Time) float32 {
	return model.RescaleTrending(s, epoch, e.trending.Epoch(), e.trending.HalfLife())
}

// shareTrending writes this replica's own trending counters to the store
// and merges the peers' into e.trending.
func (e *Engine) shareTrending(ctx context.Context) error {
	e.mu.RLock()
	ts := e.ownTrendingLocked()
	e.mu.RUnlock()
	ts.Saved = e.cfg.Now()
	own, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	var txn storage.Txn
	txn.Set(trendingKey, e.cfg.Replica, string(own))
	if err := e.store.Apply(ctx, txn); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	all, err := e.store.Maps(ctx, []string{trendingKey})
	if err != nil {
		return fmt.Errorf("read the peers': %w", err)
	}
	e.mergePeers(ctx, all[0])
	return nil
}

// mergePeers replaces the peers' part of e.trending with the counters of
// the fields of the trending map other than this replica's. A field not
// saved for abandonAfter belongs to a replica that is gone (a renamed
// pod, say): this replica adopts its counts as its own and deletes it
// (if no other replica did first), so that the map does not grow with
// every name a replica ever had.
func (e *Engine) mergePeers(ctx context.Context, fields map[string]string) {
	next := peerTrending{scores: map[string]float32{}, segments: map[string]*peerSegment{}}
	var adopted []trendingState
	for name, v := range fields {
		if name == e.cfg.Replica {
			continue
		}
		var ts trendingState
		if err := json.Unmarshal([]byte(v), &ts); err != nil || ts.HalfLife != e.cfg.TrendingHalfLife || len(ts.IDs) != len(ts.Scores) {
			e.log.LogAttrs(ctx, slog.LevelWarn, "a peer's trending counters ignored", slog.String("peer", name), slog.Any("err", err))
			continue
		}
		if e.cfg.Now().Sub(ts.Saved) > e.abandonAfter() && e.adopt(ctx, name, v) {
			adopted = append(adopted, ts)
			continue
		}
		if next.epoch.IsZero() {
			next.epoch = ts.Epoch
		}
		for i, id := range ts.IDs {
			next.scores[id] += model.RescaleTrending(ts.Scores[i], ts.Epoch, next.epoch, ts.HalfLife)
		}
		for k, ss := range ts.Segments {
			next.addSegment(k, ss, ts.HalfLife)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mergePeerSegmentsLocked(&next, adopted)
	for id, s := range e.peers.scores {
		if row, ok := e.rowOf[id]; ok {
			e.trending.AddRelative(int(row), -s, e.peers.epoch)
		}
	}
	for id, s := range next.scores {
		row, ok := e.rowOf[id]
		if !ok {
			delete(next.scores, id) // an item unknown here: not counted
			continue
		}
		e.trending.AddRelative(int(row), s, next.epoch)
	}
	e.peers = next
	for _, ts := range adopted {
		for i, id := range ts.IDs {
			if row, ok := e.rowOf[id]; ok {
				e.trending.AddRelative(int(row), ts.Scores[i], ts.Epoch)
			}
		}
	}
}

// abandonAfter is how long a replica's trending field may go unsaved
// before another adopts it: many state periods, and at least 10 minutes.
func (e *Engine) abandonAfter() time.Duration { return max(10*time.Minute, 60*e.cfg.StateEvery) }

// adopt deletes the peer's field if it still holds v, and reports whether
// it did (false when it changed, or the store failed: the field is then
// counted as a peer's this time).
func (e *Engine) adopt(ctx context.Context, name, v string) bool {
	var txn storage.Txn
	txn.IfEquals(trendingKey, name, v)
	txn.Del(trendingKey, name)
	if err := e.store.Apply(ctx, txn); err != nil {
		return false
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "adopted the trending counters of a replica gone", slog.String("peer", name))
	return true
}

// addSegment adds a peer's counters of segment k (with half-life hl) to
// the peers' part.
func (p *peerTrending) addSegment(k string, ss segmentState, hl time.Duration) {
	if len(ss.IDs) != len(ss.Scores) {
		return
	}
	ps := p.segments[k]
	if ps == nil {
		ps = &peerSegment{epoch: ss.Epoch, scores: map[string]float32{}}
		p.segments[k] = ps
	}
	ps.events += max(ss.Events, 0)
	for i, id := range ss.IDs {
		ps.scores[id] += model.RescaleTrending(ss.Scores[i], ss.Epoch, ps.epoch, hl)
	}
}

// mergePeerSegmentsLocked replaces the peers' part of every segment with
// next's, and adds the adopted replicas' segments as this replica's own.
// A peer's segment that this replica has no room for (Config.MaxSegments)
// is left out of next. e.mu is held for writing.
func (e *Engine) mergePeerSegmentsLocked(next *peerTrending, adopted []trendingState) {
	for k, ps := range e.peers.segments {
		seg, ok := e.segments[k]
		if !ok {
			continue
		}
		for id, v := range ps.scores {
			if row, ok := e.rowOf[id]; ok {
				seg.trend.AddRelative(int(row), -v, ps.epoch)
			}
		}
		seg.events = max(seg.events-ps.events, 0)
	}
	for k, ps := range next.segments {
		seg := e.segmentLocked(k)
		if seg == nil {
			delete(next.segments, k)
			continue
		}
		for id, v := range ps.scores {
			row, ok := e.rowOf[id]
			if !ok {
				delete(ps.scores, id) // an item unknown here: not counted
				continue
			}
			seg.trend.AddRelative(int(row), v, ps.epoch)
		}
		seg.events += ps.events
	}
	for _, ts := range adopted {
		e.addOwnSegmentsLocked(ts.Segments)
	}
}

// addOwnSegmentsLocked adds segment counters to this replica's own (an
// adopted replica's, or its own saved ones at start). e.mu is held for
// writing.
func (e *Engine) addOwnSegmentsLocked(segments map[string]segmentState) {
	for k, ss := range segments {
		seg := e.segmentLocked(k)
		if seg == nil || len(ss.IDs) != len(ss.Scores) {
			continue
		}
		for i, id := range ss.IDs {
			if row, ok := e.rowOf[id]; ok {
				seg.trend.AddRelative(int(row), ss.Scores[i], ss.Epoch)
			}
		}
		seg.events += max(ss.Events, 0)
	}
}

// segmentLocked returns segment k, created if there is room for it (nil
// when Config.MaxSegments are kept already). e.mu is held for writing.
func (e *Engine) segmentLocked(k string) *segment {
	seg, ok := e.segments[k]
	if !ok {
		if len(e.segments) >= e.cfg.MaxSegments {
			return nil
		}
		seg = &segment{trend: model.NewTrending(e.cfg.TrendingHalfLife)}
		e.segments[k] = seg
	}
	return seg
}

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

// peerScores is the peers' part of one trending counter: relative
// scores by item id at epoch.
type peerScores struct {
	epoch  time.Time
	scores map[string]float32
}

// add adds counters (relative scores at epoch, half-life hl) to p.
func (p *peerScores) add(ids []string, scores []float32, epoch time.Time, hl time.Duration) {
	if p.scores == nil {
		p.epoch, p.scores = epoch, map[string]float32{}
	}
	for i, id := range ids {
		p.scores[id] += model.RescaleTrending(scores[i], epoch, p.epoch, hl)
	}
}

// peerTrending is the peers' part of e.trending, and of each segment.
type peerTrending struct {
	peerScores
	segments map[string]*peerSegment
}

// peerSegment is the peers' part of one segment's counters.
type peerSegment struct {
	peerScores
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
	ts.IDs, ts.Scores = e.ownScoresLocked(e.trending, &e.peers.peerScores, 0)
	for k, seg := range e.segments {
		own := segmentState{Events: seg.events, Epoch: seg.trend.Epoch()}
		peer := e.peers.segments[k]
		if peer == nil {
			peer = &peerSegment{}
		}
		own.Events = max(own.Events-peer.events, 0)
		own.IDs, own.Scores = e.ownScoresLocked(seg.trend, &peer.peerScores, sharedSegmentItems)
		if own.Events > 0 || len(own.IDs) > 0 {
			if ts.Segments == nil {
				ts.Segments = map[string]segmentState{}
			}
			ts.Segments[k] = own
		}
	}
	return ts
}

// ownScoresLocked returns the items with a score of t less the peers'
// part peer, at most limit of them, the highest (0: all, in row order).
// e.mu is held.
func (e *Engine) ownScoresLocked(t *model.Trending, peer *peerScores, limit int) (ids []string, scores []float32) {
	for row, v := range t.Scores() {
		if row >= len(e.idOf) {
			break
		}
		id := e.idOf[row]
		if p, ok := peer.scores[id]; ok {
			v -= model.RescaleTrending(p, peer.epoch, t.Epoch(), t.HalfLife())
		}
		if v > 0 {
			ids, scores = append(ids, id), append(scores, v)
		}
	}
	if limit > 0 && len(ids) > limit {
		order := make([]int, len(ids))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Or(cmp.Compare(scores[b], scores[a]), cmp.Compare(ids[a], ids[b])) })
		topIDs, topScores := make([]string, limit), make([]float32, limit)
		for i, j := range order[:limit] {
			topIDs[i], topScores[i] = ids[j], scores[j]
		}
		ids, scores = topIDs, topScores
	}
	return ids, scores
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
	next := peerTrending{segments: map[string]*peerSegment{}}
	var adopted []trendingState
	for name, v := range fields {
		if name == e.cfg.Replica {
			continue
		}
		var ts trendingState
		if err := json.Unmarshal([]byte(v), &ts); err != nil || ts.HalfLife != e.cfg.TrendingHalfLife || len(ts.IDs) != len(ts.Scores) {
			// A peer with another half-life is misconfigured (every
			// replica must use the same) or not yet restarted with it.
			e.log.LogAttrs(ctx, slog.LevelWarn, "a peer's trending counters ignored", slog.String("peer", name), slog.Any("err", err),
				slog.Duration("peer_half_life", ts.HalfLife), slog.Duration("half_life", e.cfg.TrendingHalfLife))
			continue
		}
		if e.cfg.Now().Sub(ts.Saved) > e.abandonAfter() && e.adopt(ctx, name, v) {
			adopted = append(adopted, ts)
			continue
		}
		next.add(ts.IDs, ts.Scores, ts.Epoch, ts.HalfLife)
		for k, ss := range ts.Segments {
			if len(ss.IDs) != len(ss.Scores) {
				continue
			}
			ps := next.segments[k]
			if ps == nil {
				ps = &peerSegment{}
				next.segments[k] = ps
			}
			ps.add(ss.IDs, ss.Scores, ss.Epoch, ts.HalfLife)
			ps.events += max(ss.Events, 0)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mergePeerSegmentsLocked(&next)
	e.replacePeerScoresLocked(e.trending, &e.peers.peerScores, &next.peerScores)
	e.peers = next
	for _, ts := range adopted {
		e.addScoresLocked(e.trending, ts.IDs, ts.Scores, ts.Epoch)
		e.addOwnSegmentsLocked(ts.Segments)
	}
}

// replacePeerScoresLocked replaces the peers' part old of t with next:
// old's scores out, next's in. Items unknown here are dropped from next
// (not counted, so not taken out later). e.mu is held for writing.
func (e *Engine) replacePeerScoresLocked(t *model.Trending, old, next *peerScores) {
	for id, v := range old.scores {
		if row, ok := e.rowOf[id]; ok {
			t.AddRelative(int(row), -v, old.epoch)
		}
	}
	for id, v := range next.scores {
		row, ok := e.rowOf[id]
		if !ok {
			delete(next.scores, id)
			continue
		}
		t.AddRelative(int(row), v, next.epoch)
	}
}

// addScoresLocked adds counters (relative scores at epoch) to t, items
// unknown here left out. e.mu is held for writing.
func (e *Engine) addScoresLocked(t *model.Trending, ids []string, scores []float32, epoch time.Time) {
	for i, id := range ids {
		if row, ok := e.rowOf[id]; ok && i < len(scores) {
			t.AddRelative(int(row), scores[i], epoch)
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

// mergePeerSegmentsLocked replaces the peers' part of every segment with
// next's. A peer's segment that this replica has no room for
// (Config.MaxSegments) is left out of next. e.mu is held for writing.
func (e *Engine) mergePeerSegmentsLocked(next *peerTrending) {
	for k, ps := range e.peers.segments {
		if seg, ok := e.segments[k]; ok {
			e.replacePeerScoresLocked(seg.trend, &ps.peerScores, &peerScores{})
			seg.events = max(seg.events-ps.events, 0)
		}
	}
	for k, ps := range next.segments {
		seg := e.segmentLocked(k)
		if seg == nil {
			delete(next.segments, k)
			continue
		}
		e.replacePeerScoresLocked(seg.trend, &peerScores{}, &ps.peerScores)
		seg.events += ps.events
	}
}

// addOwnSegmentsLocked adds segment counters to this replica's own (an
// adopted replica's, or its own saved ones at start). e.mu is held for
// writing.
func (e *Engine) addOwnSegmentsLocked(segments map[string]segmentState) {
	for k, ss := range segments {
		if seg := e.segmentLocked(k); seg != nil {
			e.addScoresLocked(seg.trend, ss.IDs, ss.Scores, ss.Epoch)
			seg.events += max(ss.Events, 0)
		}
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

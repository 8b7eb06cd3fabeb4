package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
// (a replica that starts again under its name goes on from them). The
// segments' counters (campaign, referrer, device) stay per replica.

// trendingKey is the store map of every replica's trending counters.
const trendingKey = "engine:trending"

// peerTrending is the peers' part of e.trending: relative scores by
// item id at epoch.
type peerTrending struct {
	epoch  time.Time
	scores map[string]float32
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
	return ts
}

// trendingAt converts the relative score s at epoch to e.trending's.
func (e *Engine) trendingAt(s float32, epoch time.Time) float32 {
	return model.RescaleTrending(s, epoch, e.trending.Epoch(), e.trending.HalfLife())
}

// shareTrending writes this replica's own trending counters to the store
// and merges the peers' into e.trending.
func (e *Engine) shareTrending(ctx context.Context) error {
	e.mu.RLock()
	own, err := json.Marshal(e.ownTrendingLocked())
	e.mu.RUnlock()
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
// the fields of the trending map other than this replica's.
func (e *Engine) mergePeers(ctx context.Context, fields map[string]string) {
	next := peerTrending{scores: map[string]float32{}}
	for name, v := range fields {
		if name == e.cfg.Replica {
			continue
		}
		var ts trendingState
		if err := json.Unmarshal([]byte(v), &ts); err != nil || ts.HalfLife != e.cfg.TrendingHalfLife || len(ts.IDs) != len(ts.Scores) {
			e.log.LogAttrs(ctx, slog.LevelWarn, "a peer's trending counters ignored", slog.String("peer", name), slog.Any("err", err))
			continue
		}
		if next.epoch.IsZero() {
			next.epoch = ts.Epoch
		}
		for i, id := range ts.IDs {
			next.scores[id] += model.RescaleTrending(ts.Scores[i], ts.Epoch, next.epoch, ts.HalfLife)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
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
}

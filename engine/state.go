package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/signals"
)

// Blob names of the engine's persisted state (blobTrending: the trending
// counters of earlier releases, read once; see trending_share.go).
const (
	blobXtX      = "engine/xtx"
	blobTrending = "engine/trending"
)

// SaveState persists the engine's in-memory state now (Run does it
// periodically and at shutdown; tools that drive Handle themselves call it
// before they exit).
func (e *Engine) SaveState(ctx context.Context) error { return e.saveState(ctx) }

// saveState persists the item rows this replica changed (full state, to
// the store) and broadcasts their deltas to the peers, then saves XᵀX and
// shares the trending counters. Item factors are derived state: a crash loses at
// most the item nudges since the last save (never histories, never user
// factors, which each commit makes durable); a retrain restores them.
func (e *Engine) saveState(ctx context.Context) error {
	e.handleMu.Lock()
	deltas := make([]model.ItemRowState, 0, len(e.learn.dirty))
	for _, d := range e.learn.dirty {
		deltas = append(deltas, *d)
	}
	clear(e.learn.dirty)
	e.handleMu.Unlock()
	var errs []error
	if len(deltas) > 0 {
		states := make([]ItemState, len(deltas))
		for i, d := range deltas {
			f, c, n := e.model().ItemRow(int(d.Row), nil, nil)
			states[i] = ItemState{Row: d.Row, Factors: f, Curv: c, Count: n}
		}
		if err := e.store.SaveItemStates(ctx, states); err != nil {
			errs = append(errs, fmt.Errorf("save item states: %w", err))
		}
		if e.bus != nil {
			if err := e.bus.Broadcast(ctx, signals.TopicUpdates, e.encodeDeltas(deltas)); err != nil {
				errs = append(errs, fmt.Errorf("broadcast item updates: %w", err))
			}
		}
	}
	if err := e.store.PutBlob(ctx, blobXtX, encodeFloat64s(e.model().XtX())); err != nil {
		errs = append(errs, fmt.Errorf("save XᵀX: %w", err))
	}
	if err := e.shareTrending(ctx); err != nil {
		errs = append(errs, fmt.Errorf("share trending: %w", err))
	}
	return errors.Join(errs...)
}

// trendingState is the persisted form of the trending counters, keyed by
// item id so that it survives any row renumbering.
type trendingState struct {
	HalfLife time.Duration `json:"half_life"`
	Epoch    time.Time     `json:"epoch"`
	Scores   []float32     `json:"scores"`
	IDs      []string      `json:"ids"`
	// Saved is when a replica last shared them (zero in earlier releases).
	Saved time.Time `json:"saved,omitzero"`
	// Segments are the replica's own counters of each trending segment
	// (campaign, referrer, device; none in earlier releases).
	Segments map[string]segmentState `json:"segments,omitempty"`
}

// loadState restores XᵀX and the trending counters, when saved.
func (e *Engine) loadState(ctx context.Context) error {
	b, err := e.store.Blob(ctx, blobXtX)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return fmt.Errorf("engine: load XᵀX: %w", err)
	default:
		if xtx, derr := decodeFloat64s(b); derr != nil || e.model().SetXtX(xtx) != nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "stored XᵀX ignored (other k?)", slog.Int("bytes", len(b)))
		}
	}
	return e.loadTrending(ctx)
}

// loadTrending restores this replica's own trending counters and merges
// its peers' (trending_share.go). Before any replica shared its own, the
// counters of earlier releases (one blob, the last saver's) are this
// replica's own.
func (e *Engine) loadTrending(ctx context.Context) error {
	all, err := e.store.Maps(ctx, []string{trendingKey})
	if err != nil {
		return fmt.Errorf("engine: load trending: %w", err)
	}
	own, shared := all[0][e.cfg.Replica]
	if len(all[0]) == 0 {
		b, err := e.store.Blob(ctx, blobTrending)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("engine: load trending: %w", err)
		default:
			own, shared = string(b), true
		}
	}
	if shared {
		e.restoreTrending(ctx, own)
	}
	e.mergePeers(ctx, all[0])
	return nil
}

// restoreTrending sets the trending counters to the saved state s. Counters
// kept with another half-life (Config.TrendingHalfLife changed) are
// loaded as they are and decay with the new one from then on: an
// approximation of the counts the new half-life would have given, and a
// far better start than none (visitors without factors would get the
// catalog fallback until traffic rebuilt them).
func (e *Engine) restoreTrending(ctx context.Context, s string) {
	var ts trendingState
	if err := json.Unmarshal([]byte(s), &ts); err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "stored trending counters ignored", slog.Any("err", err))
		return
	}
	if ts.HalfLife != e.cfg.TrendingHalfLife {
		e.log.LogAttrs(ctx, slog.LevelWarn, "stored trending counters kept with another half-life: loaded as they are, decaying with the new one from now",
			slog.Duration("stored_half_life", ts.HalfLife), slog.Duration("half_life", e.cfg.TrendingHalfLife))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, id := range ts.IDs {
		if row, ok := e.rowOf[id]; ok && i < len(ts.Scores) {
			e.trending.Set(int(row), ts.Scores[i], ts.Epoch)
		}
	}
	e.addOwnSegmentsLocked(ts.Segments)
}

// Update message kinds on signals.TopicUpdates.
const (
	msgItemDeltas byte = 'I'
	msgCatalog    byte = 'C'
)

// encodeDeltas encodes item deltas: kind, replica, model generation, count, then per row
// its id, row, count delta and k factor and curvature deltas (float32 LE).
func (e *Engine) encodeDeltas(ds []model.ItemRowState) []byte {
	var b bytes.Buffer
	b.WriteByte(msgItemDeltas)
	writeString(&b, e.cfg.Replica)
	b.Write(binary.AppendUvarint(nil, uint64(e.gen.Load())))
	b.Write(binary.AppendUvarint(nil, uint64(len(ds))))
	for _, d := range ds {
		writeString(&b, e.itemID(d.Row))
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(d.Row)))
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(d.Count)))
		for _, v := range d.Factors {
			b.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
		}
		for _, v := range d.Curv {
			b.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
		}
	}
	return b.Bytes()
}

func writeString(b *bytes.Buffer, s string) {
	b.Write(binary.AppendUvarint(nil, uint64(len(s))))
	b.WriteString(s)
}

// onPeerUpdate applies a peer's broadcast (ignoring this replica's own).
func (e *Engine) onPeerUpdate(msg []byte) {
	if len(msg) == 0 {
		return
	}
	var err error
	switch msg[0] {
	case msgItemDeltas:
		err = e.applyPeerDeltas(msg[1:])
	case msgCatalog:
		err = e.applyPeerCatalog(msg[1:])
	default:
		err = fmt.Errorf("unknown message kind %q", msg[0])
	}
	if err != nil {
		e.log.LogAttrs(context.Background(), slog.LevelWarn, "peer update ignored", slog.Any("err", err))
	}
}

func (e *Engine) applyPeerDeltas(b []byte) error {
	r := bytes.NewReader(b)
	replica, err := readString(r)
	if err != nil || replica == e.cfg.Replica {
		return err
	}
	gen, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("bad generation")
	}
	if uint32(gen) != e.gen.Load() {
		return nil // deltas of another model generation (a swap in progress)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1<<24 {
		return fmt.Errorf("bad delta count")
	}
	k := e.cfg.Params.Factors
	ds := make([]model.ItemRowState, 0, n)
	for range n {
		id, err := readString(r)
		if err != nil {
			return err
		}
		var hdr [8]byte
		if _, err := r.Read(hdr[:]); err != nil {
			return err
		}
		d := model.ItemRowState{Row: int32(binary.LittleEndian.Uint32(hdr[:])), Count: int32(binary.LittleEndian.Uint32(hdr[4:])),
			Factors: make([]float32, k), Curv: make([]float32, k)}
		for _, dst := range [][]float32{d.Factors, d.Curv} {
			for f := range dst {
				var w [4]byte
				if _, err := r.Read(w[:]); err != nil {
					return fmt.Errorf("truncated delta")
				}
				dst[f] = math.Float32frombits(binary.LittleEndian.Uint32(w[:]))
			}
		}
		e.mu.Lock()
		e.setRowLocked(id, d.Row)
		e.mu.Unlock()
		ds = append(ds, d)
	}
	e.handleMu.Lock()
	defer e.handleMu.Unlock()
	return e.model().AddItems(ds)
}

func readString(r *bytes.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) {
		return "", fmt.Errorf("bad string in update")
	}
	b := make([]byte, n)
	_, err = r.Read(b)
	return string(b), err
}

func encodeFloat64s(v []float64) []byte {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func decodeFloat64s(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("length %d is not a multiple of 8", len(b))
	}
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if math.IsNaN(v[i]) || math.IsInf(v[i], 0) {
			return nil, errors.New("non-finite value")
		}
	}
	return v, nil
}

package embedded

import (
	"fmt"
	"maps"
	"slices"

	"github.com/kairoshq/kairos/engine"
)

// state is the whole content of a Store, in memory. Values reachable from
// it are never modified in place once stored (a Commit replaces a
// visitor's record, it does not edit it; a history grows only past the
// length any older record sees), so a clone that copies the maps is a
// consistent snapshot that compaction can write without holding the lock.
type state struct {
	visitors map[string]*visitor
	seen     seenSet
	rows     map[string]int32
	rowIDs   []string // by row
	// states holds the item states saved since the snapshot, which
	// override those of base, the snapshot's (statebase.go).
	states map[int32]engine.ItemState
	base   *stateBase
	// noRowIndex: rows records only append to rowIDs (reading a
	// snapshot; indexRows).
	noRowIndex bool
	links      map[string]string // anonymous id → user (links.go)

	// The storage primitives (prims.go), copied on write: gen is the
	// current generation.
	colls map[string]*docColl
	kv    map[string]*kvMap
	logs  map[string]kvLog
	gen   uint64
	// staged counts the transactions staged on the state (from 1: a
	// kvMap's zero stage is none; txnStage.key).
	staged uint64
}

type visitor struct {
	factors []float32
	session engine.Session
	history []engine.HistoryEvent
}

func newState(cfg Config) *state {
	return &state{
		visitors: make(map[string]*visitor),
		seen:     newSeenSet(cfg.DedupWindow),
		rows:     make(map[string]int32),
		states:   make(map[int32]engine.ItemState),
		links:    make(map[string]string),
		colls:    make(map[string]*docColl),
		kv:       make(map[string]*kvMap),
		logs:     make(map[string]kvLog),
	}
}

// clone returns a snapshot of st sharing every immutable value (the
// counters, modified in place, are copied; the primitives' collections
// and maps are shared, and st starts a new generation so that its next
// write of one copies it).
func (st *state) clone() *state {
	st.gen++
	return &state{
		visitors: maps.Clone(st.visitors),
		seen:     st.seen.clone(),
		rows:     nil, // rebuilt from rowIDs when needed
		rowIDs:   slices.Clone(st.rowIDs),
		states:   maps.Clone(st.states),
		base:     st.base,
		links:    maps.Clone(st.links),
		colls:    maps.Clone(st.colls),
		kv:       maps.Clone(st.kv),
		logs:     maps.Clone(st.logs),
		gen:      st.gen - 1,
	}
}

// applyCommit applies one commit made at now (Unix ns). Factors of the
// updates are copied; history events are copied into the visitor's
// history.
func (st *state) applyCommit(now int64, ids []idHash, vs []engine.VisitorUpdate, limit int) {
	for _, h := range ids {
		st.seen.add(h, now)
	}
	for i := range vs {
		u := &vs[i]
		old := st.visitors[u.ID]
		v := &visitor{session: u.Session}
		if old != nil {
			v.factors = old.factors
			if !u.Replace {
				v.history = old.history
			}
		}
		if u.Factors != nil {
			v.factors = slices.Clone(u.Factors)
		}
		v.history = appendHistory(v.history, u.Append, limit)
		st.visitors[u.ID] = v
	}
}

// appendHistory returns h with add appended and trimmed to the newest
// limit events. It writes into h's array only past len(h), so older
// records sharing the array are unaffected; when it must trim, it
// allocates a new array with a quarter of spare room, so that trimming
// costs O(1) per event amortised.
func appendHistory(h, add []engine.HistoryEvent, limit int) []engine.HistoryEvent {
	if len(add) == 0 {
		return h
	}
	if len(h)+len(add) <= limit {
		return append(h, add...)
	}
	if len(add) >= limit {
		add = add[len(add)-limit:]
	}
	keep := h[len(h)-(limit-len(add)):]
	out := make([]engine.HistoryEvent, 0, limit+max(limit/4, 1))
	out = append(out, keep...)
	return append(out, add...)
}

// applyRows assigns rows first, first+1, … to ids. While a snapshot is
// read (noRowIndex) it only appends them: indexRows then builds the id
// index once, at its final size.
func (st *state) applyRows(first int32, ids []string) error {
	if int(first) != len(st.rowIDs) {
		return fmt.Errorf("rows record starts at row %d, %d rows are assigned", first, len(st.rowIDs))
	}
	if st.noRowIndex {
		st.rowIDs = append(st.rowIDs, ids...)
		return nil
	}
	for i, id := range ids {
		if _, ok := st.rows[id]; ok {
			return fmt.Errorf("rows record assigns a second row to an id")
		}
		st.rows[id] = first + int32(i)
	}
	st.rowIDs = append(st.rowIDs, ids...)
	return nil
}

// indexRows builds the index of the rows applied with noRowIndex set,
// and clears it.
func (st *state) indexRows() error {
	st.noRowIndex = false
	if len(st.rows) == 0 {
		st.rows = make(map[string]int32, len(st.rowIDs))
	}
	for row, id := range st.rowIDs {
		if _, ok := st.rows[id]; ok {
			return fmt.Errorf("rows record assigns a second row to an id")
		}
		st.rows[id] = int32(row)
	}
	return nil
}

// applyStates stores copies of states.
func (st *state) applyStates(states []engine.ItemState) {
	for _, s := range states {
		s.Factors = slices.Clone(s.Factors)
		s.Curv = slices.Clone(s.Curv)
		st.states[s.Row] = s
	}
}

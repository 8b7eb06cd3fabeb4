package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
)

// Interface guard.
var _ experiments.Store = (*Store)(nil)

// xpState is the experiments.Store part of the state: definitions, and
// per experiment the assignments, units, counts, bandit weights and
// looks. The inner maps are modified in place under the state lock, so
// clone copies them.
type xpState struct {
	docs    map[string][]byte
	version int64
	assign  map[string]map[string]experiments.Assignment // experiment → subject →
	units   map[string]map[string]experiments.Unit       // experiment → subject key →
	counts  map[string]map[string]experiments.Counts     // experiment → variant →
	weights map[string]experiments.Weights
	looks   map[string]map[int64][]byte // experiment → look time (Unix ms) → look JSON
}

func newXPState() *xpState {
	return &xpState{docs: map[string][]byte{}, assign: map[string]map[string]experiments.Assignment{},
		units: map[string]map[string]experiments.Unit{}, counts: map[string]map[string]experiments.Counts{},
		weights: map[string]experiments.Weights{}, looks: map[string]map[int64][]byte{}}
}

// clone copies xs for a snapshot: O(assignments + units) under the state
// lock (about 50 ms per million).
func (xs *xpState) clone() *xpState {
	c := &xpState{docs: maps.Clone(xs.docs), version: xs.version, weights: maps.Clone(xs.weights),
		assign: make(map[string]map[string]experiments.Assignment, len(xs.assign)),
		units:  make(map[string]map[string]experiments.Unit, len(xs.units)),
		counts: make(map[string]map[string]experiments.Counts, len(xs.counts)),
		looks:  make(map[string]map[int64][]byte, len(xs.looks))}
	for k, m := range xs.assign {
		c.assign[k] = maps.Clone(m)
	}
	for k, m := range xs.units {
		c.units[k] = maps.Clone(m)
	}
	for k, m := range xs.counts {
		c.counts[k] = maps.Clone(m)
	}
	for k, m := range xs.looks {
		c.looks[k] = maps.Clone(m)
	}
	return c
}

// An experiments record (type 15, recExperiments) is one operation:
//
//	recExperiments | op byte | operands
//
//	xpPut      id, JSON (the rest of the record)
//	xpDelete   id (the definition and all its data)
//	xpAssign   experiment, uvarint n, n × (subject, variant, varint at ms, float64 bits propensity)
//	xpUnassign experiment, subject
//	xpUpdate   uvarint n, n × (experiment, key, unit text: "" deletes),
//	           uvarint m, m × (experiment, variant, 10 varints: n, expected, clicks, carts,
//	           conversions, revenue, 4 revenue-square limbs)
//	xpWeights  experiment, weights JSON
//	xpLook     experiment, varint at ms, look JSON
//	xpForget   uvarint n, n × subject
//	xpVersion  varint version (snapshots)
//
// Strings are uvarint length and bytes (appendStr). A record is written
// only once its preconditions hold (an assignment that creates, a
// compare-and-set that matches, the next weights version), so replaying
// it just applies it. A snapshot holds the definitions (xpPut), the
// version, and per experiment its assignments and units in chunks of
// 4,096 (xpAssign, xpUpdate), its counts (one xpUpdate from zero), its
// weights and its looks. Type 15 was added to format version 1 like types
// 7 to 9 and 14: an older build refuses a directory that has it.
const (
	xpPut      = 1
	xpDelete   = 2
	xpAssign   = 3
	xpUnassign = 4
	xpUpdate   = 5
	xpWeights  = 6
	xpLook     = 7
	xpForget   = 8
	xpVersion  = 9

	xpChunk = 4096
)

func encodeXP(b []byte, op byte) []byte { return append(b, recExperiments, op) }

func appendAssignment(b []byte, subject string, a experiments.Assignment) []byte {
	b = appendStr(b, subject)
	b = appendStr(b, a.Variant)
	b = binary.AppendVarint(b, a.At.UnixMilli())
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Propensity))
}

func appendCountsDelta(b []byte, exp, variant string, c *experiments.Counts) []byte {
	b = appendStr(appendStr(b, exp), variant)
	for _, v := range [10]int64{c.N, c.Expected, c.Clicks, c.Carts, c.Conversions, c.Revenue, c.RevenueSq[0], c.RevenueSq[1], c.RevenueSq[2], c.RevenueSq[3]} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func readCountsDelta(r *reader) (exp, variant string, c experiments.Counts) {
	exp, variant = r.str(), r.str()
	c.N, c.Expected, c.Clicks, c.Carts, c.Conversions, c.Revenue = r.varint(), r.varint(), r.varint(), r.varint(), r.varint(), r.varint()
	for i := range c.RevenueSq {
		c.RevenueSq[i] = r.varint()
	}
	return exp, variant, c
}

func encodeXPUpdate(b []byte, u *experiments.Update) []byte {
	b = encodeXP(b, xpUpdate)
	b = binary.AppendUvarint(b, uint64(len(u.Units)))
	for _, w := range u.Units {
		text, _ := w.New.MarshalText()
		b = appendStr(appendStr(appendStr(b, w.Exp), w.Key), string(text))
	}
	b = binary.AppendUvarint(b, uint64(len(u.Counts)))
	for i := range u.Counts {
		b = appendCountsDelta(b, u.Counts[i].Exp, u.Counts[i].Variant, &u.Counts[i].Counts)
	}
	return b
}

// applyXP applies one experiments record (r is after the record type).
func (st *state) applyXP(r *reader) error {
	xs := st.xp
	op := r.byte()
	switch op {
	case xpPut:
		id := r.str()
		doc := slices.Clone(r.b)
		r.b = nil
		if err := r.done(); err != nil {
			return err
		}
		xs.docs[id] = doc
		xs.version++
	case xpDelete:
		id := r.str()
		if err := r.done(); err != nil {
			return err
		}
		delete(xs.docs, id)
		delete(xs.assign, id)
		delete(xs.units, id)
		delete(xs.counts, id)
		delete(xs.weights, id)
		delete(xs.looks, id)
		xs.version++
	case xpAssign:
		exp := r.str()
		n := r.count(12)
		m := xs.assign[exp]
		if m == nil && n > 0 {
			m = map[string]experiments.Assignment{}
			xs.assign[exp] = m
		}
		for range n {
			s, v, at := r.str(), r.str(), r.varint()
			p := math.Float64frombits(binary.LittleEndian.Uint64(r.bytes(8)))
			if r.err != nil {
				return r.err
			}
			m[s] = experiments.Assignment{Variant: v, At: time.UnixMilli(at).UTC(), Propensity: p}
		}
		return r.done()
	case xpUnassign:
		exp, s := r.str(), r.str()
		if err := r.done(); err != nil {
			return err
		}
		delete(xs.assign[exp], s)
	case xpUpdate:
		n := r.count(3)
		for range n {
			exp, key, text := r.str(), r.str(), r.str()
			var u experiments.Unit
			if r.err != nil {
				return r.err
			}
			if err := u.UnmarshalText([]byte(text)); err != nil {
				return fmt.Errorf("%w: %v", errCorruptRecord, err)
			}
			xs.setUnit(exp, key, u)
		}
		m := r.count(12)
		for range m {
			exp, variant, c := readCountsDelta(r)
			if r.err != nil {
				return r.err
			}
			cs := xs.counts[exp]
			if cs == nil {
				cs = map[string]experiments.Counts{}
				xs.counts[exp] = cs
			}
			cur := cs[variant]
			cur.Add(c)
			cs[variant] = cur
		}
		return r.done()
	case xpWeights:
		exp := r.str()
		var w experiments.Weights
		if r.err == nil {
			if err := json.Unmarshal(r.b, &w); err != nil {
				return fmt.Errorf("%w: weights: %v", errCorruptRecord, err)
			}
			r.b = nil
		}
		if err := r.done(); err != nil {
			return err
		}
		xs.weights[exp] = w
	case xpLook:
		exp, at := r.str(), r.varint()
		js := slices.Clone(r.b)
		r.b = nil
		if err := r.done(); err != nil {
			return err
		}
		if xs.looks[exp] == nil {
			xs.looks[exp] = map[int64][]byte{}
		}
		if _, ok := xs.looks[exp][at]; !ok {
			xs.looks[exp][at] = js
		}
	case xpForget:
		n := r.count(1)
		subjects := make([]string, n)
		for i := range subjects {
			subjects[i] = r.str()
		}
		if err := r.done(); err != nil {
			return err
		}
		xs.forget(subjects)
	case xpVersion:
		v := r.varint()
		if err := r.done(); err != nil {
			return err
		}
		xs.version = v
	default:
		return fmt.Errorf("%w: unknown experiments operation %d", errCorruptRecord, op)
	}
	return r.err
}

func (xs *xpState) setUnit(exp, key string, u experiments.Unit) {
	m := xs.units[exp]
	if !u.Exists() {
		delete(m, key)
		return
	}
	if m == nil {
		m = map[string]experiments.Unit{}
		xs.units[exp] = m
	}
	m[key] = u
}

func (xs *xpState) forget(subjects []string) {
	for _, m := range xs.assign {
		for _, s := range subjects {
			delete(m, s)
		}
	}
	for _, m := range xs.units {
		for _, s := range subjects {
			delete(m, s)
		}
	}
}

// writeXP writes the experiments state as snapshot records.
func writeXP(xs *xpState, emit func(func([]byte) []byte) error) error {
	for _, id := range sortedStrings(xs.docs) {
		doc := xs.docs[id]
		if err := emit(func(b []byte) []byte { return append(appendStr(encodeXP(b, xpPut), id), doc...) }); err != nil {
			return err
		}
	}
	if err := emit(func(b []byte) []byte { return binary.AppendVarint(encodeXP(b, xpVersion), xs.version) }); err != nil {
		return err
	}
	for exp, m := range xs.assign {
		subjects := sortedStrings(m)
		for i := 0; i < len(subjects); i += xpChunk {
			chunk := subjects[i:min(i+xpChunk, len(subjects))]
			if err := emit(func(b []byte) []byte {
				b = binary.AppendUvarint(appendStr(encodeXP(b, xpAssign), exp), uint64(len(chunk)))
				for _, s := range chunk {
					b = appendAssignment(b, s, m[s])
				}
				return b
			}); err != nil {
				return err
			}
		}
	}
	for exp, m := range xs.units {
		keys := sortedStrings(m)
		for i := 0; i < len(keys); i += xpChunk {
			u := experiments.Update{}
			for _, k := range keys[i:min(i+xpChunk, len(keys))] {
				u.Units = append(u.Units, experiments.UnitWrite{UnitKey: experiments.UnitKey{Exp: exp, Key: k}, New: m[k]})
			}
			if err := emit(func(b []byte) []byte { return encodeXPUpdate(b, &u) }); err != nil {
				return err
			}
		}
	}
	for exp, m := range xs.counts {
		u := experiments.Update{}
		for _, v := range sortedStrings(m) {
			u.Counts = append(u.Counts, experiments.CountDelta{Exp: exp, Variant: v, Counts: m[v]})
		}
		if err := emit(func(b []byte) []byte { return encodeXPUpdate(b, &u) }); err != nil {
			return err
		}
	}
	for exp, w := range xs.weights {
		js, err := json.Marshal(w)
		if err != nil {
			return err
		}
		if err := emit(func(b []byte) []byte { return append(appendStr(encodeXP(b, xpWeights), exp), js...) }); err != nil {
			return err
		}
	}
	for exp, m := range xs.looks {
		for at, js := range m {
			if err := emit(func(b []byte) []byte {
				return append(binary.AppendVarint(appendStr(encodeXP(b, xpLook), exp), at), js...)
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeXPRecord appends one experiments record and applies it; with
// wait, it returns once the record is as durable as the sync policy
// makes it. check, when not nil, runs under the write lock first: its
// error is returned without writing anything.
func (s *Store) writeXPRecord(op string, b []byte, wait bool, check func() error) error {
	b = sealFrame(b)
	defer s.putBuf(b)
	s.mu.Lock()
	var seq uint64
	err := s.usableLocked()
	if err == nil && check != nil {
		err = check()
	}
	if err == nil {
		if seq, err = s.appendLocked(b); err == nil {
			r := reader{b: b[frameHeader+1:]}
			err = s.st.applyXP(&r)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	if wait {
		return s.syncTo(seq)
	}
	return nil
}

// readXP runs fn under the read lock.
func (s *Store) readXP(ctx context.Context, op string, fn func(xs *xpState)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	fn(s.st.xp)
	return nil
}

// PutExperimentDoc logs and applies the definition (fsynced by the sync
// policy).
func (s *Store) PutExperimentDoc(ctx context.Context, id string, doc []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: put experiment: %w", err)
	}
	if id == "" {
		return fmt.Errorf("embedded: put experiment: %w: empty id", engine.ErrInvalid)
	}
	return s.writeXPRecord("put experiment", append(appendStr(encodeXP(s.getBuf(), xpPut), id), doc...), true, nil)
}

// DeleteExperiment removes the definition and its data, or returns
// engine.ErrNotFound.
func (s *Store) DeleteExperiment(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: delete experiment: %w", err)
	}
	return s.writeXPRecord("delete experiment", appendStr(encodeXP(s.getBuf(), xpDelete), id), true, func() error {
		if _, ok := s.st.xp.docs[id]; !ok {
			return fmt.Errorf("experiment %q: %w", id, engine.ErrNotFound)
		}
		return nil
	})
}

// ExperimentDocs returns the definitions in id order (copies).
func (s *Store) ExperimentDocs(ctx context.Context) ([]experiments.Doc, error) {
	out := []experiments.Doc{}
	err := s.readXP(ctx, "experiment docs", func(xs *xpState) {
		for _, id := range sortedStrings(xs.docs) {
			out = append(out, experiments.Doc{ID: id, JSON: slices.Clone(xs.docs[id])})
		}
	})
	return out, err
}

// ExperimentDocsVersion returns the number of definition writes so far.
func (s *Store) ExperimentDocsVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.readXP(ctx, "experiment docs version", func(xs *xpState) { v = xs.version })
	return v, err
}

// AssignSubject logs the assignment unless the subject has one (decided
// under the write lock), fsynced by the sync policy.
func (s *Store) AssignSubject(ctx context.Context, exp, subject string, a experiments.Assignment) (experiments.Assignment, bool, error) {
	if err := ctx.Err(); err != nil {
		return experiments.Assignment{}, false, fmt.Errorf("embedded: assign: %w", err)
	}
	if exp == "" || subject == "" || a.Variant == "" {
		return experiments.Assignment{}, false, fmt.Errorf("embedded: assign: %w: empty experiment, subject or variant", engine.ErrInvalid)
	}
	a.At = time.UnixMilli(a.At.UnixMilli()).UTC()
	var cur experiments.Assignment
	var exists bool
	b := appendAssignment(binary.AppendUvarint(appendStr(encodeXP(s.getBuf(), xpAssign), exp), 1), subject, a)
	err := s.writeXPRecord("assign", b, true, func() error {
		cur, exists = s.st.xp.assign[exp][subject]
		if exists {
			return errExists
		}
		return nil
	})
	switch {
	case exists:
		return cur, false, nil
	case err != nil:
		return experiments.Assignment{}, false, err
	}
	return a, true, nil
}

// errExists stops writeXPRecord when its precondition does not hold (the
// subject is assigned already, the weights are not the next version, …).
var errExists = errors.New("precondition not met")

// SubjectAssignments returns the subjects' assignments.
func (s *Store) SubjectAssignments(ctx context.Context, exp string, subjects []string) ([]experiments.Assignment, error) {
	out := make([]experiments.Assignment, len(subjects))
	err := s.readXP(ctx, "assignments", func(xs *xpState) {
		for i, sub := range subjects {
			out[i] = xs.assign[exp][sub]
		}
	})
	return out, err
}

// UnassignSubject removes the assignment if it is to variant.
func (s *Store) UnassignSubject(ctx context.Context, exp, subject, variant string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: unassign: %w", err)
	}
	err := s.writeXPRecord("unassign", appendStr(appendStr(encodeXP(s.getBuf(), xpUnassign), exp), subject), true, func() error {
		if s.st.xp.assign[exp][subject].Variant != variant {
			return errExists
		}
		return nil
	})
	if err != nil && !isExists(err) {
		return err
	}
	return nil
}

func isExists(err error) bool { return errors.Is(err, errExists) }

// ExperimentUnits returns the records of the keys.
func (s *Store) ExperimentUnits(ctx context.Context, keys []experiments.UnitKey) ([]experiments.Unit, error) {
	out := make([]experiments.Unit, len(keys))
	err := s.readXP(ctx, "experiment units", func(xs *xpState) {
		for i, k := range keys {
			out[i] = xs.units[k.Exp][k.Key]
		}
	})
	return out, err
}

// UpdateExperimentUnits compares every write's old record under the write
// lock and, when all match, logs and applies the update as one record.
// Like AddCounts it does not wait for an fsync (the next Commit's fsync
// covers it).
func (s *Store) UpdateExperimentUnits(ctx context.Context, u experiments.Update) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: update experiment units: %w", err)
	}
	for _, w := range u.Units {
		if w.Exp == "" || w.Key == "" {
			return fmt.Errorf("embedded: update experiment units: %w: empty experiment or unit key", engine.ErrInvalid)
		}
	}
	for _, d := range u.Counts {
		if d.Exp == "" || d.Variant == "" {
			return fmt.Errorf("embedded: update experiment units: %w: empty experiment or variant", engine.ErrInvalid)
		}
	}
	if u.Empty() {
		return nil
	}
	return s.writeXPRecord("update experiment units", encodeXPUpdate(s.getBuf(), &u), false, func() error {
		for _, w := range u.Units {
			if !s.st.xp.units[w.Exp][w.Key].Equal(w.Old) {
				return fmt.Errorf("unit %s/%s: %w", w.Exp, w.Key, experiments.ErrStaleUnits)
			}
		}
		return nil
	})
}

// ExperimentCounts returns a copy of the experiment's counts.
func (s *Store) ExperimentCounts(ctx context.Context, exp string) (map[string]experiments.Counts, error) {
	var out map[string]experiments.Counts
	err := s.readXP(ctx, "experiment counts", func(xs *xpState) { out = maps.Clone(xs.counts[exp]) })
	if out == nil {
		out = map[string]experiments.Counts{}
	}
	return out, err
}

// BanditWeights returns the experiment's weights.
func (s *Store) BanditWeights(ctx context.Context, exp string) (experiments.Weights, error) {
	var w experiments.Weights
	err := s.readXP(ctx, "bandit weights", func(xs *xpState) { w = xs.weights[exp] })
	w.Weights = maps.Clone(w.Weights)
	return w, err
}

// SetBanditWeights logs the weights if they are the next version
// (decided under the write lock).
func (s *Store) SetBanditWeights(ctx context.Context, exp string, w experiments.Weights) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("embedded: set bandit weights: %w", err)
	}
	w.At = time.UnixMilli(w.At.UnixMilli()).UTC()
	js, err := json.Marshal(w)
	if err != nil {
		return false, fmt.Errorf("embedded: set bandit weights: %w", err)
	}
	err = s.writeXPRecord("set bandit weights", append(appendStr(encodeXP(s.getBuf(), xpWeights), exp), js...), true, func() error {
		if s.st.xp.weights[exp].Version+1 != w.Version {
			return errExists
		}
		return nil
	})
	if isExists(err) {
		return false, nil
	}
	return err == nil, err
}

// AddExperimentLook logs the look unless one exists at its time.
func (s *Store) AddExperimentLook(ctx context.Context, exp string, l experiments.Look) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: add look: %w", err)
	}
	l.At = time.UnixMilli(l.At.UnixMilli()).UTC()
	js, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("embedded: add look: %w", err)
	}
	at := l.At.UnixMilli()
	err = s.writeXPRecord("add look", append(binary.AppendVarint(appendStr(encodeXP(s.getBuf(), xpLook), exp), at), js...), false, func() error {
		if _, ok := s.st.xp.looks[exp][at]; ok {
			return errExists
		}
		return nil
	})
	if isExists(err) {
		return nil
	}
	return err
}

// ExperimentLooks returns the experiment's looks in time order.
func (s *Store) ExperimentLooks(ctx context.Context, exp string) ([]experiments.Look, error) {
	var raw map[int64][]byte
	if err := s.readXP(ctx, "looks", func(xs *xpState) { raw = maps.Clone(xs.looks[exp]) }); err != nil {
		return nil, err
	}
	out := make([]experiments.Look, 0, len(raw))
	for _, at := range slices.Sorted(maps.Keys(raw)) {
		var l experiments.Look
		if err := json.Unmarshal(raw[at], &l); err != nil {
			return nil, fmt.Errorf("embedded: looks: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// ForgetExperimentSubjects logs and applies the erasure of the subjects'
// assignments and units.
func (s *Store) ForgetExperimentSubjects(ctx context.Context, subjects []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: forget experiment subjects: %w", err)
	}
	if len(subjects) == 0 {
		return nil
	}
	b := binary.AppendUvarint(encodeXP(s.getBuf(), xpForget), uint64(len(subjects)))
	for _, sub := range subjects {
		b = appendStr(b, sub)
	}
	return s.writeXPRecord("forget experiment subjects", b, true, nil)
}

package experimentstest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
)

// Mem is the in-memory reference experiments.Store: the contract's
// meaning in a few lines, used by the engine's unit tests and checked by
// the same suite as the adapters.
type Mem struct {
	mu      sync.Mutex
	docs    map[string][]byte
	version int64
	assign  map[string]map[string]experiments.Assignment // exp → subject →
	units   map[experiments.UnitKey]experiments.Unit
	counts  map[string]map[string]experiments.Counts // exp → variant →
	weights map[string]experiments.Weights
	looks   map[string]map[int64]experiments.Look // exp → At ms →
	// Stale, when set, makes the next n UpdateExperimentUnits calls fail
	// with ErrStaleUnits (tests of the retry).
	Stale int
}

// Interface guard.
var _ experiments.Store = (*Mem)(nil)

// NewMem returns an empty store.
func NewMem() *Mem {
	return &Mem{docs: map[string][]byte{}, assign: map[string]map[string]experiments.Assignment{},
		units: map[experiments.UnitKey]experiments.Unit{}, counts: map[string]map[string]experiments.Counts{},
		weights: map[string]experiments.Weights{}, looks: map[string]map[int64]experiments.Look{}}
}

// PutExperimentDoc implements experiments.DefStore.
func (m *Mem) PutExperimentDoc(ctx context.Context, id string, doc []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("mem: %w: empty id", engine.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.docs[id] = slices.Clone(doc)
	m.version++
	return nil
}

// DeleteExperiment implements experiments.DefStore.
func (m *Mem) DeleteExperiment(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.docs[id]; !ok {
		return fmt.Errorf("mem: experiment %q: %w", id, engine.ErrNotFound)
	}
	delete(m.docs, id)
	delete(m.assign, id)
	delete(m.counts, id)
	delete(m.weights, id)
	delete(m.looks, id)
	for k := range m.units {
		if k.Exp == id {
			delete(m.units, k)
		}
	}
	m.version++
	return nil
}

// ExperimentDocs implements experiments.DefStore.
func (m *Mem) ExperimentDocs(ctx context.Context) ([]experiments.Doc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []experiments.Doc{}
	for _, id := range slices.Sorted(maps.Keys(m.docs)) {
		out = append(out, experiments.Doc{ID: id, JSON: slices.Clone(m.docs[id])})
	}
	return out, nil
}

// ExperimentDocsVersion implements experiments.DefStore.
func (m *Mem) ExperimentDocsVersion(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, ctx.Err()
}

// AssignSubject implements experiments.AssignmentStore.
func (m *Mem) AssignSubject(ctx context.Context, exp, subject string, a experiments.Assignment) (experiments.Assignment, bool, error) {
	if err := ctx.Err(); err != nil {
		return experiments.Assignment{}, false, err
	}
	if a.Variant == "" || subject == "" {
		return experiments.Assignment{}, false, fmt.Errorf("mem: %w: empty variant or subject", engine.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	as := m.assign[exp]
	if as == nil {
		as = map[string]experiments.Assignment{}
		m.assign[exp] = as
	}
	if cur, ok := as[subject]; ok {
		return cur, false, nil
	}
	a.At = time.UnixMilli(a.At.UnixMilli()).UTC()
	as[subject] = a
	return a, true, nil
}

// SubjectAssignments implements experiments.AssignmentStore.
func (m *Mem) SubjectAssignments(ctx context.Context, exp string, subjects []string) ([]experiments.Assignment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]experiments.Assignment, len(subjects))
	for i, s := range subjects {
		out[i] = m.assign[exp][s]
	}
	return out, nil
}

// UnassignSubject implements experiments.AssignmentStore.
func (m *Mem) UnassignSubject(ctx context.Context, exp, subject, variant string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.assign[exp][subject].Variant == variant {
		delete(m.assign[exp], subject)
	}
	return nil
}

// ExperimentUnits implements experiments.UnitStore.
func (m *Mem) ExperimentUnits(ctx context.Context, keys []experiments.UnitKey) ([]experiments.Unit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]experiments.Unit, len(keys))
	for i, k := range keys {
		out[i] = m.units[k]
	}
	return out, nil
}

// UpdateExperimentUnits implements experiments.UnitStore.
func (m *Mem) UpdateExperimentUnits(ctx context.Context, u experiments.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckUpdate(u); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Stale > 0 {
		m.Stale--
		return fmt.Errorf("mem: %w", experiments.ErrStaleUnits)
	}
	for _, w := range u.Units {
		if !m.units[w.UnitKey].Equal(w.Old) {
			return fmt.Errorf("mem: unit %s/%s: %w", w.Exp, w.Key, experiments.ErrStaleUnits)
		}
	}
	for _, w := range u.Units {
		if w.New.Exists() {
			m.units[w.UnitKey] = w.New
		} else {
			delete(m.units, w.UnitKey)
		}
	}
	for _, d := range u.Counts {
		cs := m.counts[d.Exp]
		if cs == nil {
			cs = map[string]experiments.Counts{}
			m.counts[d.Exp] = cs
		}
		c := cs[d.Variant]
		c.Add(d.Counts)
		cs[d.Variant] = c
	}
	return nil
}

// CheckUpdate reports a malformed update (an empty experiment, key or
// variant) with engine.ErrInvalid; the adapters apply the same check.
func CheckUpdate(u experiments.Update) error {
	for _, w := range u.Units {
		if w.Exp == "" || w.Key == "" {
			return fmt.Errorf("%w: unit write with an empty experiment or key", engine.ErrInvalid)
		}
	}
	for _, d := range u.Counts {
		if d.Exp == "" || d.Variant == "" {
			return fmt.Errorf("%w: count delta with an empty experiment or variant", engine.ErrInvalid)
		}
	}
	return nil
}

// ExperimentCounts implements experiments.UnitStore.
func (m *Mem) ExperimentCounts(ctx context.Context, exp string) (map[string]experiments.Counts, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.counts[exp]), nil
}

// BanditWeights implements experiments.WeightStore.
func (m *Mem) BanditWeights(ctx context.Context, exp string) (experiments.Weights, error) {
	if err := ctx.Err(); err != nil {
		return experiments.Weights{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.weights[exp]
	w.Weights = maps.Clone(w.Weights)
	return w, nil
}

// SetBanditWeights implements experiments.WeightStore.
func (m *Mem) SetBanditWeights(ctx context.Context, exp string, w experiments.Weights) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.Version != m.weights[exp].Version+1 {
		return false, nil
	}
	w.Weights = maps.Clone(w.Weights)
	w.At = time.UnixMilli(w.At.UnixMilli()).UTC()
	m.weights[exp] = w
	return true, nil
}

// AddExperimentLook implements experiments.LookStore.
func (m *Mem) AddExperimentLook(ctx context.Context, exp string, l experiments.Look) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ls := m.looks[exp]
	if ls == nil {
		ls = map[int64]experiments.Look{}
		m.looks[exp] = ls
	}
	at := l.At.UnixMilli()
	if _, ok := ls[at]; !ok {
		ls[at] = experiments.Look{At: time.UnixMilli(at).UTC(), Counts: maps.Clone(l.Counts)}
	}
	return nil
}

// ExperimentLooks implements experiments.LookStore.
func (m *Mem) ExperimentLooks(ctx context.Context, exp string) ([]experiments.Look, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []experiments.Look{}
	for _, l := range m.looks[exp] {
		out = append(out, experiments.Look{At: l.At, Counts: maps.Clone(l.Counts)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// ForgetExperimentSubjects implements experiments.SubjectEraser.
func (m *Mem) ForgetExperimentSubjects(ctx context.Context, subjects []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, as := range m.assign {
		for _, s := range subjects {
			delete(as, s)
		}
	}
	for k := range m.units {
		if slices.Contains(subjects, k.Key) {
			delete(m.units, k)
		}
	}
	return nil
}

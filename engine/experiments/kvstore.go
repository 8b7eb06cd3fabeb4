package experiments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// DefsCollection is the defstore collection of the experiment
// definitions.
const DefsCollection = "experiments"

// BackendStore keeps everything engine/experiments keeps durably on the
// storage primitives of any backend (storage.Backend), written once:
//
//	documents "experiments"   id → definition JSON (defstore; its version is what replicas poll)
//	map {xp}/<id>/as            subject key (a:<visitor>, u:<user>) → "<variant> <Unix ms> <propensity>"
//	map {xp}/<id>/un            subject key → Unit.MarshalText ("v <variant> <t0 ms> <flags> <revenue> <propensity>",
//	                          or "= <subject key>" for an alias)
//	map {xp}/<id>/ct            "<name>/<variant>" → integer, name one of n, e (expected, millionths), clk,
//	                          cart, conv, rev (cents), rq0…rq3 (Σx² of revenue in cents², limbs)
//	map {xp}/<id>/w             "v" → version, "w" → Weights JSON
//	map {xp}/<id>/lk            look time (Unix ms, decimal) → Look JSON
//
// Every map key has the hash tag {xp} (storage.Txn: the keys of one Txn
// share a hash tag), so on a Redis Cluster every experiment's maps are in
// one slot; the keys were xp/<id>/<part> before (Redis storage format 2,
// embedded format 2): New moves them (MigrateLegacyKeys). Experiment ids
// are ValidID (no '/'). Every change is one storage.Txn:
//
//   - AssignSubject: IfAbsent(as, subject) + Set; on a Conflict it reads
//     the stored assignment back (one of concurrent callers creates);
//   - UnassignSubject: IfEquals(as, subject, the stored value naming the
//     variant) + Del;
//   - UpdateExperimentUnits: for each unit write IfEquals(un, key,
//     MarshalText(Old)) (IfAbsent when Old is the zero Unit) and a Set (a
//     Del for the zero New), plus every count delta as Incr of ct fields,
//     in the same Txn: a Conflict is ErrStaleUnits and nothing is applied;
//   - SetBanditWeights: IfEquals(w, "v", version − 1) (IfAbsent for
//     version 1) + Set of both fields;
//   - AddExperimentLook: IfAbsent(lk, At ms) + Set (a Conflict means the
//     look is there already).
//
// DeleteExperiment deletes the definition first and then the five maps
// (storage.Maps.Delete): a crash between the two leaves only maps no
// definition refers to, which nothing reads (the engine reads the maps
// of defined experiments only); deleting the id again, although it
// answers NotFound, removes them. Re-creating an id whose maps were left
// so would see them: delete again before re-creating after a crash.
//
// The maps are one per experiment and kind (not one per subject) because
// the primitives have no key scan: DeleteExperiment and
// ForgetExperimentSubjects must name every key they change.
type BackendStore struct {
	b    storage.Backend
	defs defstore.Collection
}

// Interface guard: the old port, which BackendStore replaces.
var _ Store = (*BackendStore)(nil)

// NewStore returns the experiments store kept on b.
func NewStore(b storage.Backend) *BackendStore {
	return &BackendStore{b: b, defs: defstore.New(b, DefsCollection)}
}

// Defs returns the collection of the definitions (for a defstore
// watcher).
func (s *BackendStore) Defs() defstore.Collection { return s.defs }

// The parts of an experiment's keys.
const (
	partAssign  = "as"
	partUnits   = "un"
	partCounts  = "ct"
	partWeights = "w"
	partLooks   = "lk"
)

// xpKey is the key of an experiment's map of one part. Every key has the
// hash tag {xp}: UpdateExperimentUnits and ForgetExperimentSubjects change
// the maps of several experiments in one Txn, which a sharded backend (a
// Redis Cluster) applies atomically only within one hash tag (storage.Txn).
func xpKey(exp, part string) string { return "{xp}/" + exp + "/" + part }

func xpKeys(exp string) []string {
	return []string{xpKey(exp, partAssign), xpKey(exp, partUnits), xpKey(exp, partCounts), xpKey(exp, partWeights), xpKey(exp, partLooks)}
}

// PutExperimentDoc creates or replaces the definition id.
func (s *BackendStore) PutExperimentDoc(ctx context.Context, id string, doc []byte) error {
	if id == "" {
		return errs.New(errs.Invalid, "experiment definition with an empty id")
	}
	return s.putDoc(ctx, id, doc, storage.Upsert)
}

func (s *BackendStore) putDoc(ctx context.Context, id string, doc []byte, mode storage.PutMode) error {
	if err := s.b.PutDoc(ctx, DefsCollection, id, doc, mode); err != nil {
		return fmt.Errorf("experiment %q: %w", id, err)
	}
	return nil
}

// CreateExperimentDoc creates the definition id, or returns an error
// wrapping errs.Conflict when it exists (atomically: of concurrent
// creators one succeeds).
func (s *BackendStore) CreateExperimentDoc(ctx context.Context, id string, doc []byte) error {
	return s.putDoc(ctx, id, doc, storage.Create)
}

// UpsertExperimentDoc creates or replaces the definition id with what
// build returns given the stored definition (nil when there is none),
// and reports whether it created it. A concurrent create or delete of id
// makes it build again (defstore.Collection.Upsert).
func (s *BackendStore) UpsertExperimentDoc(ctx context.Context, id string, build func(old []byte) ([]byte, error)) (bool, error) {
	return s.defs.Upsert(ctx, id, func(old []byte) (any, error) {
		b, err := build(old)
		return json.RawMessage(b), err
	})
}

// DeleteExperiment removes the definition, then every map of the
// experiment; it returns an error wrapping errs.NotFound when there was
// no definition (after removing any maps left by an interrupted delete).
func (s *BackendStore) DeleteExperiment(ctx context.Context, id string) error {
	derr := s.defs.Delete(ctx, id)
	if derr != nil && !errors.Is(derr, errs.NotFound) {
		return derr
	}
	if err := s.b.Delete(ctx, xpKeys(id)); err != nil {
		return fmt.Errorf("experiment %q: delete its data: %w", id, err)
	}
	return derr
}

// ExperimentDocs returns every definition in ascending id order.
func (s *BackendStore) ExperimentDocs(ctx context.Context) ([]Doc, error) {
	ds, err := s.defs.All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Doc, len(ds))
	for i, d := range ds {
		out[i] = Doc(d)
	}
	return out, nil
}

// ExperimentDocsVersion returns the definitions' collection version.
func (s *BackendStore) ExperimentDocsVersion(ctx context.Context) (int64, error) {
	return s.defs.Version(ctx)
}

func encodeAssignment(a Assignment) string {
	return a.Variant + " " + strconv.FormatInt(a.At.UnixMilli(), 10) + " " + strconv.FormatFloat(a.Propensity, 'g', -1, 64)
}

func decodeAssignment(v string) (Assignment, error) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return Assignment{}, fmt.Errorf("%w: malformed assignment %q", errs.Internal, v)
	}
	ms, err1 := strconv.ParseInt(f[1], 10, 64)
	p, err2 := strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2); err != nil {
		return Assignment{}, fmt.Errorf("%w: malformed assignment %q", errs.Internal, v)
	}
	return Assignment{Variant: f[0], At: time.UnixMilli(ms).UTC(), Propensity: p}, nil
}

// AssignSubject stores a unless the subject has an assignment, and
// returns the stored one and whether this call created it.
func (s *BackendStore) AssignSubject(ctx context.Context, exp, subject string, a Assignment) (Assignment, bool, error) {
	if exp == "" || subject == "" || a.Variant == "" || strings.ContainsAny(a.Variant, " \t\n") {
		return Assignment{}, false, errs.New(errs.Invalid, "assign: empty experiment, subject or variant, or a variant with a space")
	}
	key, v := xpKey(exp, partAssign), encodeAssignment(a)
	for range 8 {
		var t storage.Txn
		t.IfAbsent(key, subject)
		t.Set(key, subject, v)
		err := s.b.Apply(ctx, t)
		if err == nil {
			stored, err := decodeAssignment(v)
			return stored, true, err
		}
		if !errors.Is(err, errs.Conflict) {
			return Assignment{}, false, fmt.Errorf("assign %s in %s: %w", subject, exp, err)
		}
		got, err := s.b.Fields(ctx, key, []string{subject})
		if err != nil {
			return Assignment{}, false, fmt.Errorf("assign %s in %s: %w", subject, exp, err)
		}
		if cur, ok := got[subject]; ok {
			stored, err := decodeAssignment(cur)
			return stored, false, err
		}
		// Unassigned since the conflict: try again.
	}
	return Assignment{}, false, errs.New(errs.Conflict, "assign %s in %s: assignment changing concurrently; retry", subject, exp)
}

// SubjectAssignments returns each subject's assignment in exp.
func (s *BackendStore) SubjectAssignments(ctx context.Context, exp string, subjects []string) ([]Assignment, error) {
	out := make([]Assignment, len(subjects))
	if len(subjects) == 0 {
		return out, ctx.Err()
	}
	got, err := s.b.Fields(ctx, xpKey(exp, partAssign), subjects)
	if err != nil {
		return nil, fmt.Errorf("assignments in %s: %w", exp, err)
	}
	for i, sub := range subjects {
		if v, ok := got[sub]; ok {
			if out[i], err = decodeAssignment(v); err != nil {
				return nil, fmt.Errorf("assignment of %s in %s: %w", sub, exp, err)
			}
		}
	}
	return out, nil
}

// UnassignSubject removes the subject's assignment if it is to variant.
func (s *BackendStore) UnassignSubject(ctx context.Context, exp, subject, variant string) error {
	key := xpKey(exp, partAssign)
	for range 8 {
		got, err := s.b.Fields(ctx, key, []string{subject})
		if err != nil {
			return fmt.Errorf("unassign %s in %s: %w", subject, exp, err)
		}
		cur, ok := got[subject]
		if !ok {
			return nil
		}
		if a, err := decodeAssignment(cur); err != nil || a.Variant != variant {
			return err
		}
		var t storage.Txn
		t.IfEquals(key, subject, cur)
		t.Del(key, subject)
		if err := s.b.Apply(ctx, t); !errors.Is(err, errs.Conflict) {
			if err != nil {
				return fmt.Errorf("unassign %s in %s: %w", subject, exp, err)
			}
			return nil
		}
	}
	return errs.New(errs.Conflict, "unassign %s in %s: assignment changing concurrently; retry", subject, exp)
}

// ExperimentUnits returns the record of each key (the zero Unit when
// there is none).
func (s *BackendStore) ExperimentUnits(ctx context.Context, keys []UnitKey) ([]Unit, error) {
	out := make([]Unit, len(keys))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// One read per experiment, in order of first appearance.
	var exps []string
	for _, k := range keys {
		if !slices.Contains(exps, k.Exp) {
			exps = append(exps, k.Exp)
		}
	}
	for _, exp := range exps {
		var fields []string
		for _, k := range keys {
			if k.Exp == exp {
				fields = append(fields, k.Key)
			}
		}
		got, err := s.b.Fields(ctx, xpKey(exp, partUnits), fields)
		if err != nil {
			return nil, fmt.Errorf("units of %s: %w", exp, err)
		}
		for i, k := range keys {
			if k.Exp != exp {
				continue
			}
			if v, ok := got[k.Key]; ok {
				if err := out[i].UnmarshalText([]byte(v)); err != nil {
					return nil, fmt.Errorf("unit %s in %s: %w: %w", k.Key, exp, errs.Internal, err)
				}
			}
		}
	}
	return out, nil
}

// The count fields, in Counts order (rq0…rq3 follow).
var countNames = [...]string{"n", "e", "clk", "cart", "conv", "rev", "rq0", "rq1", "rq2", "rq3"}

// countFields returns pointers to the fields of c in countNames order.
func countFields(c *Counts) [10]*int64 {
	return [10]*int64{&c.N, &c.Expected, &c.Clicks, &c.Carts, &c.Conversions, &c.Revenue,
		&c.RevenueSq[0], &c.RevenueSq[1], &c.RevenueSq[2], &c.RevenueSq[3]}
}

// checkUnitsUpdate reports a malformed update (an empty experiment, key or
// variant) with errs.Invalid.
func checkUnitsUpdate(u Update) error {
	for _, w := range u.Units {
		if w.Exp == "" || w.Key == "" {
			return errs.New(errs.Invalid, "unit write with an empty experiment or key")
		}
	}
	for _, d := range u.Counts {
		if d.Exp == "" || d.Variant == "" {
			return errs.New(errs.Invalid, "count delta with an empty experiment or variant")
		}
	}
	return nil
}

// UpdateExperimentUnits applies u in one transaction, or returns an
// error wrapping ErrStaleUnits when a unit record is not Old any more.
func (s *BackendStore) UpdateExperimentUnits(ctx context.Context, u Update) error {
	if err := checkUnitsUpdate(u); err != nil {
		return err
	}
	t := storage.Txn{Lazy: true} // per consumed batch: no disk sync of its own
	for _, w := range u.Units {
		key := xpKey(w.Exp, partUnits)
		old, err := w.Old.MarshalText()
		if err != nil {
			return err
		}
		if w.Old.Exists() {
			t.IfEquals(key, w.Key, string(old))
		} else {
			t.IfAbsent(key, w.Key)
		}
		if !w.New.Exists() {
			t.Del(key, w.Key)
			continue
		}
		nw, err := w.New.MarshalText()
		if err != nil {
			return err
		}
		t.Set(key, w.Key, string(nw))
	}
	for _, d := range u.Counts {
		key := xpKey(d.Exp, partCounts)
		c := d.Counts
		for i, p := range countFields(&c) {
			if *p != 0 || i == 0 { // n always: a variant with a delta has counts
				t.Incr(key, countNames[i]+"/"+d.Variant, *p)
			}
		}
	}
	if t.Empty() {
		return ctx.Err()
	}
	err := s.b.Apply(ctx, t)
	switch {
	case errors.Is(err, errs.Conflict):
		return fmt.Errorf("update units: %w", ErrStaleUnits)
	case err != nil:
		return fmt.Errorf("update units: %w", err)
	}
	return nil
}

// ExperimentCounts returns the counts of every variant of exp that has
// any.
func (s *BackendStore) ExperimentCounts(ctx context.Context, exp string) (map[string]Counts, error) {
	ms, err := s.b.Maps(ctx, []string{xpKey(exp, partCounts)})
	if err != nil {
		return nil, fmt.Errorf("counts of %s: %w", exp, err)
	}
	out := map[string]Counts{}
	for f, v := range ms[0] {
		name, variant, ok := strings.Cut(f, "/")
		i := slices.Index(countNames[:], name)
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || i < 0 || err != nil {
			return nil, fmt.Errorf("counts of %s: %w: malformed field %q = %q", exp, errs.Internal, f, v)
		}
		c := out[variant]
		*countFields(&c)[i] = n
		out[variant] = c
	}
	return out, nil
}

// BanditWeights returns exp's current weights (Version 0 when never set).
func (s *BackendStore) BanditWeights(ctx context.Context, exp string) (Weights, error) {
	got, err := s.b.Fields(ctx, xpKey(exp, partWeights), []string{"w"})
	if err != nil {
		return Weights{}, fmt.Errorf("weights of %s: %w", exp, err)
	}
	var w Weights
	if v, ok := got["w"]; ok {
		if err := json.Unmarshal([]byte(v), &w); err != nil {
			return Weights{}, fmt.Errorf("weights of %s: %w: %w", exp, errs.Internal, err)
		}
		w.At = w.At.UTC()
	}
	return w, nil
}

// SetBanditWeights stores w if w.Version is the stored version + 1.
func (s *BackendStore) SetBanditWeights(ctx context.Context, exp string, w Weights) (bool, error) {
	if w.Version < 1 {
		return false, ctx.Err()
	}
	w.At = time.UnixMilli(w.At.UnixMilli()).UTC()
	b, err := json.Marshal(w)
	if err != nil {
		return false, fmt.Errorf("weights of %s: encode: %w", exp, err)
	}
	key := xpKey(exp, partWeights)
	var t storage.Txn
	if w.Version == 1 {
		t.IfAbsent(key, "v")
	} else {
		t.IfEquals(key, "v", strconv.FormatInt(w.Version-1, 10))
	}
	t.Set(key, "v", strconv.FormatInt(w.Version, 10))
	t.Set(key, "w", string(b))
	switch err := s.b.Apply(ctx, t); {
	case errors.Is(err, errs.Conflict):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("weights of %s: %w", exp, err)
	}
	return true, nil
}

// AddExperimentLook stores l unless exp has a look at l.At already.
func (s *BackendStore) AddExperimentLook(ctx context.Context, exp string, l Look) error {
	l.At = time.UnixMilli(l.At.UnixMilli()).UTC()
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("look of %s: encode: %w", exp, err)
	}
	key, field := xpKey(exp, partLooks), strconv.FormatInt(l.At.UnixMilli(), 10)
	t := storage.Txn{Lazy: true}
	t.IfAbsent(key, field)
	t.Set(key, field, string(b))
	if err := s.b.Apply(ctx, t); err != nil && !errors.Is(err, errs.Conflict) {
		return fmt.Errorf("look of %s: %w", exp, err)
	}
	return nil
}

// ExperimentLooks returns exp's looks in ascending At order.
func (s *BackendStore) ExperimentLooks(ctx context.Context, exp string) ([]Look, error) {
	ms, err := s.b.Maps(ctx, []string{xpKey(exp, partLooks)})
	if err != nil {
		return nil, fmt.Errorf("looks of %s: %w", exp, err)
	}
	out := make([]Look, 0, len(ms[0]))
	for f, v := range ms[0] {
		var l Look
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			return nil, fmt.Errorf("look %s of %s: %w: %w", f, exp, errs.Internal, err)
		}
		l.At = l.At.UTC()
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Look) int { return a.At.Compare(b.At) })
	return out, nil
}

// ForgetExperimentSubjects removes the assignments and unit records of
// the subjects in every defined experiment, in one transaction.
func (s *BackendStore) ForgetExperimentSubjects(ctx context.Context, subjects []string) error {
	docs, err := s.defs.All(ctx)
	if err != nil {
		return err
	}
	var t storage.Txn
	for _, d := range docs {
		for _, sub := range subjects {
			t.Del(xpKey(d.ID, partAssign), sub)
			t.Del(xpKey(d.ID, partUnits), sub)
		}
	}
	if t.Empty() {
		return ctx.Err()
	}
	if err := s.b.Apply(ctx, t); err != nil {
		return fmt.Errorf("forget subjects: %w", err)
	}
	return nil
}

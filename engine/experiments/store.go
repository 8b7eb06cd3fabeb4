package experiments

import (
	"context"
)

// Doc is a stored experiment definition (its JSON).
type Doc struct {
	ID   string
	JSON []byte
}

// DefStore keeps the experiment definitions.
type DefStore interface {
	// PutExperimentDoc creates or replaces the definition id and
	// increments the version.
	PutExperimentDoc(ctx context.Context, id string, doc []byte) error
	// DeleteExperiment removes the definition and everything kept for it
	// (assignments, units, counts, weights, looks) and increments the
	// version, or returns an error wrapping engine.ErrNotFound when there
	// is no definition.
	DeleteExperiment(ctx context.Context, id string) error
	// ExperimentDocs returns every definition in ascending id order.
	ExperimentDocs(ctx context.Context) ([]Doc, error)
	// ExperimentDocsVersion returns a number that changes with every
	// PutExperimentDoc and DeleteExperiment (replicas poll it).
	ExperimentDocsVersion(ctx context.Context) (int64, error)
}

// AssignmentStore keeps the sticky assignments: subject key → variant,
// per experiment.
type AssignmentStore interface {
	// AssignSubject stores a for subject in exp unless the subject has an
	// assignment already; it returns the stored assignment and whether
	// it is a (the call created it). Atomic: of concurrent callers, one
	// creates and the others get its assignment.
	AssignSubject(ctx context.Context, exp, subject string, a Assignment) (Assignment, bool, error)
	// SubjectAssignments returns each subject's assignment in exp (the
	// zero Assignment when it has none).
	SubjectAssignments(ctx context.Context, exp string, subjects []string) ([]Assignment, error)
	// UnassignSubject removes the subject's assignment if it is to
	// variant (an exposure that could not be logged); no error when
	// there is none.
	UnassignSubject(ctx context.Context, exp, subject, variant string) error
}

// UnitStore keeps the units and the counts per variant.
type UnitStore interface {
	// ExperimentUnits returns the record of each key (the zero Unit when
	// there is none).
	ExperimentUnits(ctx context.Context, keys []UnitKey) ([]Unit, error)
	// UpdateExperimentUnits applies u atomically: if every write's Old is
	// still the stored record, it stores every New and adds every count
	// delta; otherwise it changes nothing and returns an error wrapping
	// ErrStaleUnits. Writes of experiments without a definition are
	// applied too (the engine drops those before).
	UpdateExperimentUnits(ctx context.Context, u Update) error
	// ExperimentCounts returns the counts of every variant of exp that
	// has any (empty when none).
	ExperimentCounts(ctx context.Context, exp string) (map[string]Counts, error)
}

// WeightStore keeps the bandit weights.
type WeightStore interface {
	// BanditWeights returns exp's current weights (Version 0 when never
	// set).
	BanditWeights(ctx context.Context, exp string) (Weights, error)
	// SetBanditWeights stores w if w.Version is the stored version + 1
	// (compare-and-set across replicas) and reports whether it did.
	SetBanditWeights(ctx context.Context, exp string, w Weights) (bool, error)
}

// LookStore keeps the looks (snapshots of the counts).
type LookStore interface {
	// AddExperimentLook stores l unless exp has a look at l.At already
	// (replicas taking the same look store it once).
	AddExperimentLook(ctx context.Context, exp string, l Look) error
	// ExperimentLooks returns exp's looks in ascending At order.
	ExperimentLooks(ctx context.Context, exp string) ([]Look, error)
}

// SubjectEraser forgets subjects (visitor erasure).
type SubjectEraser interface {
	// ForgetExperimentSubjects removes the assignments and unit records
	// of the subject keys in every experiment (counts are aggregates
	// and stay).
	ForgetExperimentSubjects(ctx context.Context, subjects []string) error
}

// Store is everything engine/experiments keeps durably. BackendStore
// implements it once on the storage primitives (NewStore) and passes the
// suite of engine/experiments/experimentstest. Errors wrap
// engine.ErrNotFound, engine.ErrInvalid and engine.ErrUnavailable like
// engine.Store's.
type Store interface {
	DefStore
	AssignmentStore
	UnitStore
	WeightStore
	LookStore
	SubjectEraser
}

// port is what the engine uses: Store with atomic definition writes
// (BackendStore).
type port interface {
	Store
	// CreateExperimentDoc creates the definition id or returns an error
	// wrapping errs.Conflict when it exists.
	CreateExperimentDoc(ctx context.Context, id string, doc []byte) error
	// UpsertExperimentDoc creates or replaces the definition id with what
	// build returns given the stored one (nil when none) and reports
	// whether it created it.
	UpsertExperimentDoc(ctx context.Context, id string, build func(old []byte) ([]byte, error)) (bool, error)
}

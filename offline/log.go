package offline

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
)

// DecisionFailed is the decision of a report whose retrain failed.
const DecisionFailed Decision = "failed"

// Report is one retrain as the log keeps it: what was picked, the tail
// figures against the live model and popularity, and the decision.
type Report struct {
	Time     time.Time `json:"time"`
	Decision Decision  `json:"decision"`
	Reason   string    `json:"reason,omitempty"`
	// Error is the failure of a failed retrain.
	Error string `json:"error,omitempty"`
	// Version is the snapshot's version (its creation in nanoseconds).
	Version    uint64        `json:"version,omitempty"`
	Params     *model.Params `json:"params,omitempty"`
	Blend      *model.Blend  `json:"blend,omitempty"`
	Validation *eval.Metrics `json:"validation,omitempty"`
	// BlendConfirm is the check of the fitted blend on the visitors'
	// next events (nil: not checked).
	BlendConfirm *eval.BlendConfirmation `json:"blend_confirm,omitempty"`
	Search       *SearchSummary          `json:"search,omitempty"`
	Reference    string                  `json:"reference,omitempty"`
	HoldoutFrom  time.Time               `json:"holdout_from"`
	Evaluations  []Evaluation            `json:"evaluations,omitempty"`
	Comparisons  []Comparison            `json:"comparisons,omitempty"`
	Events       int                     `json:"events"`
	Users        int                     `json:"users"`
	Items        int                     `json:"items"`
	WallS        float64                 `json:"wall_s"`
}

// reportOf summarises a run (out may be nil when err is set).
func reportOf(out *RunResult, err error, now time.Time) Report {
	rep := Report{Time: now.UTC()}
	if err != nil {
		rep.Decision, rep.Error = DecisionFailed, err.Error()
		return rep
	}
	res := out.RetrainResult
	params, blend := res.Params, res.Blend
	rep.Decision, rep.Reason, rep.WallS = out.Decision, out.Reason, out.WallS
	rep.Params, rep.Blend, rep.Validation, rep.Search = &params, &blend, res.Validation, res.Search
	rep.BlendConfirm = res.BlendConfirm
	rep.Reference, rep.HoldoutFrom, rep.Evaluations, rep.Comparisons = res.Reference, res.HoldoutFrom, res.Evaluations, res.Comparisons
	rep.Events, rep.Users, rep.Items = res.Events, res.Users, res.Items
	if res.Snapshot != nil {
		rep.Version = res.Snapshot.Meta.Version
	}
	return rep
}

// BlobStore keeps named blobs (cmd/kairos adapts engine.Store).
type BlobStore interface {
	PutBlob(ctx context.Context, name string, data []byte) error
	// GetBlob returns the named blob, or nil and no error when there is
	// none.
	GetBlob(ctx context.Context, name string) ([]byte, error)
}

// LogBlob is the blob of the retrain log.
const LogBlob = "model/retrains"

// Log keeps the reports of the last retrains, oldest first, as one JSON
// blob (LogBlob) of the store, so that `kairos retrain` and the server's
// scheduled retrains share it and the dashboard shows both.
type Log struct {
	Store BlobStore
	// Max is the number of reports kept (default 50).
	Max int
	mu  sync.Mutex
}

// Reports returns the kept reports, oldest first.
func (l *Log) Reports(ctx context.Context) ([]Report, error) {
	b, err := l.Store.GetBlob(ctx, LogBlob)
	if err != nil {
		return nil, fmt.Errorf("offline: read the retrain log: %w", err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	var reps []Report
	if err := json.Unmarshal(b, &reps); err != nil {
		return nil, fmt.Errorf("offline: the retrain log is corrupt: %w", err)
	}
	return reps, nil
}

// Append adds a report, dropping the oldest beyond Max. A corrupt log is
// replaced.
func (l *Log) Append(ctx context.Context, rep Report) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	reps, err := l.Reports(ctx)
	if err != nil {
		reps = nil
	}
	keep := l.Max
	if keep <= 0 {
		keep = 50
	}
	reps = append(reps, rep)
	if len(reps) > keep {
		reps = reps[len(reps)-keep:]
	}
	b, err := json.Marshal(reps)
	if err != nil {
		return fmt.Errorf("offline: encode the retrain log: %w", err)
	}
	if err := l.Store.PutBlob(ctx, LogBlob, b); err != nil {
		return fmt.Errorf("offline: write the retrain log: %w", err)
	}
	return nil
}

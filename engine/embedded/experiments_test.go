package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/experiments/experimentstest"
)

func TestExperimentsContract(t *testing.T) {
	experimentstest.Run(t, func(t *testing.T) experiments.Store { return mustOpen(t, t.TempDir(), testConfig()) })
}

// crashing is a store whose Close abandons it like a killed process: the
// reopen replays the log.
type crashing struct{ *Store }

func (c crashing) Close() error { c.abandon(); return nil }

// TestExperimentsPersistence: everything survives a clean Close (the
// snapshot), a crash (the log replayed), and a compaction in between.
func TestExperimentsPersistence(t *testing.T) {
	for _, tt := range []struct {
		name string
		wrap func(s *Store) experimentstest.Closer
	}{
		{"snapshot", func(s *Store) experimentstest.Closer { return s }},
		{"log replay", func(s *Store) experimentstest.Closer { return crashing{s} }},
		{"compacted then log replay", func(s *Store) experimentstest.Closer {
			return compactThenCrash{s}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			experimentstest.RunPersistence(t, func(t *testing.T) func(t *testing.T) experimentstest.Closer {
				dir := t.TempDir()
				return func(t *testing.T) experimentstest.Closer {
					s, err := Open(dir, testConfig())
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					return tt.wrap(s)
				}
			})
		})
	}
}

// compactThenCrash writes a snapshot of everything so far, then dies.
type compactThenCrash struct{ *Store }

func (c compactThenCrash) Close() error {
	if err := c.compact(); err != nil {
		return err
	}
	c.abandon()
	return nil
}

// TestExperimentsSnapshotChunks: more assignments and units than one
// snapshot chunk round-trip.
func TestExperimentsSnapshotChunks(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testConfig())
	ctx := context.Background()
	at := time.UnixMilli(1795430000000).UTC()
	const n = 2*xpChunk + 7
	u := experiments.Update{}
	for i := range n {
		sub := fmt.Sprint("a:v", i)
		if _, _, err := s.AssignSubject(ctx, "x", sub, experiments.Assignment{Variant: "A", At: at, Propensity: 0.5}); err != nil {
			t.Fatal(err)
		}
		u.Units = append(u.Units, experiments.UnitWrite{UnitKey: experiments.UnitKey{Exp: "x", Key: sub}, New: experiments.Unit{Variant: "A", Exposed: at, Propensity: 0.5, Revenue: int64(i)}})
	}
	u.Counts = []experiments.CountDelta{{Exp: "x", Variant: "A", Counts: experiments.Counts{N: n}}}
	if err := s.UpdateExperimentUnits(ctx, u); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, dir, testConfig())
	subs := []string{"a:v0", fmt.Sprint("a:v", xpChunk), fmt.Sprint("a:v", n-1)}
	as, err := s.SubjectAssignments(ctx, "x", subs)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range as {
		if a.Variant != "A" {
			t.Errorf("%s: %+v after reopen", subs[i], a)
		}
	}
	us, err := s.ExperimentUnits(ctx, []experiments.UnitKey{{Exp: "x", Key: fmt.Sprint("a:v", n-1)}})
	if err != nil || us[0].Revenue != n-1 {
		t.Errorf("last unit %+v %v", us, err)
	}
	if cs, _ := s.ExperimentCounts(ctx, "x"); cs["A"].N != n {
		t.Errorf("counts %+v", cs)
	}
}

package embedded

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/kairoshq/kairos/engine"
)

// itemState is row's state of version v, with k = 4.
func itemState(row int32, v float32) engine.ItemState {
	f := float32(row) + v
	return engine.ItemState{Row: row, Count: int32(row%7) + int32(v),
		Factors: []float32{f, -f, f / 2, 1}, Curv: []float32{v, v, v, f}}
}

// wantStates returns the states of rows [0, n) at version 0, with the
// versions of over applied, in row order.
func wantStates(n int32, over map[int32]float32) []engine.ItemState {
	var out []engine.ItemState
	for row := range n {
		out = append(out, itemState(row, 0))
	}
	for row, v := range over {
		if row < n {
			out[row] = itemState(row, v)
		} else {
			out = append(out, itemState(row, v))
		}
	}
	slices.SortFunc(out, func(a, b engine.ItemState) int { return int(a.Row) - int(b.Row) })
	return out
}

func mustStates(t *testing.T, s *Store, want []engine.ItemState, when string) {
	t.Helper()
	got, err := s.ItemStates(context.Background())
	if err != nil {
		t.Fatalf("%s: ItemStates: %v", when, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d item states, want %d", when, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Row != w.Row || g.Count != w.Count || !slices.Equal(g.Factors, w.Factors) || !slices.Equal(g.Curv, w.Curv) {
			t.Fatalf("%s: state %d = %+v, want %+v", when, i, g, w)
		}
	}
}

// TestItemStatesFromSnapshotFile: after a reopen the snapshot's item
// states are read from its file, not held in memory; newer states
// override them, a compaction moves them into the new snapshot (and out
// of memory), and a scan that a compaction overtakes still reads the
// states as of its start.
func TestItemStatesFromSnapshotFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const n = 2*scanBatch + 100 // several batches
	s, err := Open(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveItemStates(ctx, wantStates(n, nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, dir, testConfig())
	if s.st.base == nil || len(s.st.states) != 0 {
		t.Fatalf("after reopen: base %v, %d states in memory; want a base and none", s.st.base != nil, len(s.st.states))
	}
	mustStates(t, s, wantStates(n, nil), "reopened")

	over := map[int32]float32{0: 1, 17: 2, n - 1: 3, n + 5: 4}
	for row, v := range over {
		if err := s.SaveItemStates(ctx, []engine.ItemState{itemState(row, v)}); err != nil {
			t.Fatal(err)
		}
	}
	mustStates(t, s, wantStates(n, over), "newer states")

	// A scan overtaken by a compaction (which replaces the base and
	// closes the old file once the scan is done).
	var scanned []engine.ItemState
	compacted := false
	err = s.ScanItemStates(ctx, func(batch []engine.ItemState) error {
		if !compacted {
			compacted = true
			if err := s.SaveItemStates(ctx, []engine.ItemState{itemState(17, 9)}); err != nil {
				return err
			}
			if err := s.compact(); err != nil {
				return fmt.Errorf("compact: %w", err)
			}
		}
		for _, st := range batch {
			st.Factors, st.Curv = slices.Clone(st.Factors), slices.Clone(st.Curv)
			scanned = append(scanned, st)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	slices.SortFunc(scanned, func(a, b engine.ItemState) int { return int(a.Row) - int(b.Row) })
	want := wantStates(n, over)
	if len(scanned) != len(want) || !slices.EqualFunc(scanned, want, func(a, b engine.ItemState) bool {
		return a.Row == b.Row && a.Count == b.Count && slices.Equal(a.Factors, b.Factors) && slices.Equal(a.Curv, b.Curv)
	}) {
		t.Fatalf("scan overtaken by a compaction: %d states, not those of its start", len(scanned))
	}
	over[17] = 9
	// The compaction kept in memory only the state saved after its
	// snapshot's copy was taken... here none: row 17's second save came
	// before it.
	if len(s.st.states) != 0 {
		t.Fatalf("after compaction: %d states in memory, want 0", len(s.st.states))
	}
	mustStates(t, s, wantStates(n, over), "compacted")

	if err := s.SaveItemStates(ctx, []engine.ItemState{itemState(3, 5)}); err != nil {
		t.Fatal(err)
	}
	over[3] = 5
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, testConfig())
	mustStates(t, s, wantStates(n, over), "reopened after compactions")
}

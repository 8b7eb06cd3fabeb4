package engine_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// TestAppliedAfterCommit: an event is reported applied once its batch is
// committed, under the state it went to (the user's for an identify or a
// linked device's event), with the store's marks or marks kept
// in a map; before that, and for unknown ids, it is not.
func TestAppliedAfterCommit(t *testing.T) {
	for _, marks := range []string{"the store's marks", "marks in a map"} {
		t.Run(marks, func(t *testing.T) {
			var store engine.Store = withLinks(openStore(t, t.TempDir()))
			if marks != "the store's marks" {
				store = &pairMarks{Store: store, marks: map[engine.EventRef]bool{}}
			}
			e := newEngine(t, store, nil)
			mustHandle(t, e, clusterEvents(2, 10, 5, 6, 13))
			first := []signals.Event{
				ev("a1", "view", "phone", "", "c0-item1", 0),
				ev("id1", "identify", "phone", "bob", "", time.Minute),
			}
			later := ev("a2", "click", "phone", "", "c0-item2", 2*time.Minute)
			all := append(slices.Clone(first), later, ev("never", "view", "phone", "", "c0-item3", 0))
			wantApplied(t, e, all, []bool{false, false, false, false})
			mustHandle(t, e, first)
			wantApplied(t, e, all, []bool{true, true, false, false})
			mustHandle(t, e, []signals.Event{later}) // committed to bob's state
			wantApplied(t, e, all, []bool{true, true, true, false})
		})
	}
}

func wantApplied(t *testing.T, e *engine.Engine, evs []signals.Event, want []bool) {
	t.Helper()
	got, err := e.Applied(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
}

// Package backends runs engine-level tests on every backend that is a
// whole engine.Store: the embedded store and Redis, opened through
// engine/storage/backendtest (Redis: skipped when the server does not
// answer, a failure under CI=true).
package backends

import (
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
)

// Each runs f in a subtest per backend (named after it) on a fresh
// store, closed on the subtest's cleanup. The in-memory reference
// backend of backendtest holds only the storage primitives and is left
// out.
func Each(t *testing.T, f func(t *testing.T, store engine.Store)) {
	t.Helper()
	for _, k := range backendtest.Kinds() {
		if k.Name == "mem" {
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			s, ok := k.Open(t).(engine.Store)
			if !ok {
				t.Fatalf("backend %s is not an engine.Store", k.Name)
			}
			f(t, s)
		})
	}
}

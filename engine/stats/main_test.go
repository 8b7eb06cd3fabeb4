package stats_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them (the
// end-to-end test runs an engine, a bus and store clients).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

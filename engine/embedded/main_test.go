package embedded

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// Store must stop its goroutines on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

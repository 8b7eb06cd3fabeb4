package periodic_test

import (
	"context"
	"testing"
	"time"

	"github.com/kairoshq/kairos/internal/periodic"
)

// TestRun: fn runs again and again with the context it was given, and
// Run returns nil once the context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := periodic.Run(ctx, time.Millisecond, func(got context.Context) {
		if got != ctx {
			t.Error("fn got another context")
		}
		if calls++; calls == 3 {
			cancel()
		}
	})
	if err != nil || calls != 3 {
		t.Fatalf("Run = %v after %d calls, want nil after 3", err, calls)
	}
}

//go:build unix

package rabbitmqtest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// lockAlarm takes the machine-wide alarm lock (flock on a file in the
// temporary directory), waiting for other processes' alarms to end; the
// returned function releases it. The lock also goes when the process
// dies.
func lockAlarm(tb testing.TB) (unlock func()) {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kairos-rabbitmq-alarm.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		tb.Fatalf("alarm lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		tb.Fatalf("alarm lock: %v", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

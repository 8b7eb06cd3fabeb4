//go:build !unix

package rabbitmqtest

import "testing"

// lockAlarm does nothing where flock is unavailable: alarms of parallel
// test processes may overlap there.
func lockAlarm(testing.TB) (unlock func()) { return func() {} }

//go:build !unix

package main

import (
	"errors"
	"time"
)

// cpuClock is not available here.
func cpuClock() (func() time.Time, error) {
	return nil, errors.New("--tune-clock cpu needs a Unix system")
}

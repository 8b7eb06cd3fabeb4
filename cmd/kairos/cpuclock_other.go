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

// peakRSSMB is not available here (0: left out of the results).
func peakRSSMB() float64 { return 0 }

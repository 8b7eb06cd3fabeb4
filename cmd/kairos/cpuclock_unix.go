//go:build unix

package main

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// cpuClock returns a clock that advances with the process's CPU time
// (user and system) divided by GOMAXPROCS: a search budgeted on it gets
// the work that the same wall budget buys on an idle machine with that
// many cores, whatever else shares the machine.
func cpuClock() (func() time.Time, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil, fmt.Errorf("cpu clock: %w", err)
	}
	cores := time.Duration(runtime.GOMAXPROCS(0))
	return func() time.Time {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		return time.Unix(0, 0).Add(cpu / cores)
	}, nil
}

// peakRSSMB returns the process's peak resident set size in MB
// (getrusage's ru_maxrss: KiB on Linux, bytes on macOS).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / 1e6
	}
	return float64(ru.Maxrss) * 1024 / 1e6
}

// Package defaults fills the zero fields of configuration structs: the
// Defaults methods of the engine packages' Config types are written with
// it, so that "zero means default" reads the same everywhere.
package defaults

import (
	"log/slog"
	"time"
)

// Set sets *p to v when *p is the zero value of its type.
func Set[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Logger returns l, or a logger that discards everything when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Clock returns now, or time.Now when now is nil.
func Clock(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

package experiments

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes an Engine. Zero fields take their defaults (Defaults).
type Config struct {
	// ReloadEvery is how often Run reloads definitions written by other
	// replicas and bandit weights, and checks whether a re-weighting or a
	// look is due (default 5s).
	ReloadEvery time.Duration
	// LookEvery is the period of the looks (snapshots of the counts)
	// kept for the always-valid p-value and the results' history
	// (default 15m). Looks are aligned: one per experiment at each
	// multiple of LookEvery since the Unix epoch.
	LookEvery time.Duration
	// MaxLinked bounds the anonymous ids of a user whose assignments are
	// looked up when the user has none (default 20).
	MaxLinked int
	// QueueLength bounds the exposures of pushed promotions waiting to be
	// published (default 4096); beyond it they are dropped and counted.
	QueueLength int
	// Logger receives the engine's logs (nil: discard).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Defaults returns c with zero fields set to their defaults.
func (c Config) Defaults() Config {
	defaults.Set(&c.ReloadEvery, 5*time.Second)
	defaults.Set(&c.LookEvery, 15*time.Minute)
	defaults.Set(&c.MaxLinked, 20)
	defaults.Set(&c.QueueLength, 4096)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.ReloadEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("experiments: config: ReloadEvery %v is below 10ms", c.ReloadEvery))
	}
	if c.LookEvery < time.Second {
		errs = append(errs, fmt.Errorf("experiments: config: LookEvery %v is below 1s", c.LookEvery))
	}
	if c.MaxLinked < 0 {
		errs = append(errs, errors.New("experiments: config: MaxLinked is negative"))
	}
	if c.QueueLength < 0 {
		errs = append(errs, errors.New("experiments: config: QueueLength is negative"))
	}
	return errors.Join(errs...)
}

package holdout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/defaults"
)

// Arm is the side of the holdout a subject is on.
type Arm string

// The arms.
const (
	// ArmHoldout gets the non-personalized baseline on every surface.
	ArmHoldout Arm = "holdout"
	// ArmPersonalized gets what the engine would serve anyway.
	ArmPersonalized Arm = "personalized"
)

// DefaultSalt is the salt of the assignment hash (Config.Salt).
const DefaultSalt = "kairos-holdout"

// Defaults of Config.
const (
	DefaultUnitTTL      = 400 * 24 * time.Hour
	DefaultWriteTimeout = 5 * time.Second
	DefaultRemember     = 100_000
)

// Config configures a Holdout. Zero fields take their defaults.
type Config struct {
	// Share is the share of subjects held out, in [0, 0.5]; 0 turns the
	// holdout off (nobody is held out, nothing is counted).
	Share float64
	// Salt of the assignment hash (default DefaultSalt): changing it
	// re-draws every subject's arm.
	Salt string
	// UnitTTL is how long a unit's record lives after its last event
	// (default 400 days); a subject back after it counts as a new unit.
	UnitTTL time.Duration
	// WriteTimeout bounds the store writes of one batch (default 5 s).
	WriteTimeout time.Duration
	// Remember bounds the subjects this replica remembers as counted, to
	// skip their store read on later batches (default 100,000; the set
	// is cleared when full).
	Remember int
	// Logger receives write failures (nil: discard).
	Logger *slog.Logger
	// Now is the clock of the unit expiries and of Results (nil: time.Now).
	Now func() time.Time
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.Salt, DefaultSalt)
	defaults.Set(&c.UnitTTL, DefaultUnitTTL)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	defaults.Set(&c.Remember, DefaultRemember)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if !(c.Share >= 0 && c.Share <= 0.5) { // also NaN
		errs = append(errs, fmt.Errorf("holdout config: share %v: want a number in [0, 0.5]", c.Share))
	}
	if c.UnitTTL < time.Hour {
		errs = append(errs, fmt.Errorf("holdout config: unit TTL %v: want >= 1h", c.UnitTTL))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("holdout config: write timeout %v: want > 0", c.WriteTimeout))
	}
	if c.Remember < 1 {
		errs = append(errs, fmt.Errorf("holdout config: remember %d: want >= 1", c.Remember))
	}
	return errors.Join(errs...)
}

// Holdout assigns subjects to the holdout, counts their outcomes (it is
// an engine.Reactor) and analyses the lift (Results). It is safe for
// concurrent use.
type Holdout struct {
	cfg   Config
	maps  storage.Maps
	links engine.LinkStore

	mu      sync.Mutex // guards counted and users
	counted map[string]bool
	users   map[string]userUnit // user subjects whose unit is recorded (person.go)
}

// Interface guard.
var _ engine.Reactor = (*Holdout)(nil)

// New returns a Holdout keeping its counts in m and resolving visitors to
// their users with links, configured by cfg (after Defaults and
// Validate).
func New(m storage.Maps, links engine.LinkStore, cfg Config) (*Holdout, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil || links == nil {
		return nil, errors.New("holdout: store is nil")
	}
	return &Holdout{cfg: cfg, maps: m, links: links, counted: map[string]bool{}, users: map[string]userUnit{}}, nil
}

// Share returns the configured share of subjects held out.
func (h *Holdout) Share() float64 { return h.cfg.Share }

// On reports whether anybody is held out (Share > 0).
func (h *Holdout) On() bool { return h.cfg.Share > 0 }

// Subject returns the subject key a request is assigned by, as
// engine/experiments keys its units: "u:<user>" for a known user (the
// request's, or the one the visitor is linked to), else "a:<visitor>".
// visitor may be an engine state key of a user ("user:<id>").
func (h *Holdout) Subject(ctx context.Context, visitor, user string) (string, error) {
	if u, ok := strings.CutPrefix(visitor, engine.UserKey("")); ok && user == "" {
		user = u
	}
	if user != "" {
		return experiments.UserKey(user), nil
	}
	if visitor == "" {
		return "", fmt.Errorf("%w: visitor: missing", engine.ErrInvalid)
	}
	users, err := h.links.Resolve(ctx, []string{visitor})
	if err != nil {
		return "", fmt.Errorf("holdout: resolve identity: %w", err)
	}
	if users[0] != "" {
		return experiments.UserKey(users[0]), nil
	}
	return experiments.AnonKey(visitor), nil
}

// ArmOf returns the arm of a subject key: the holdout when
// experiments.Bucket(Salt, subject) < Share — the same hash as an
// experiment's assignment, so an arm is sticky, the same on every
// replica and independent of every experiment (another salt).
func (h *Holdout) ArmOf(subject string) Arm {
	if h.cfg.Share > 0 && experiments.Bucket(h.cfg.Salt, subject) < h.cfg.Share {
		return ArmHoldout
	}
	return ArmPersonalized
}

// Assign returns the arm of the request's subject (see Subject). With
// the holdout off it is ArmPersonalized without a store read.
func (h *Holdout) Assign(ctx context.Context, visitor, user string) (Arm, error) {
	if !h.On() {
		return ArmPersonalized, nil
	}
	s, err := h.Subject(ctx, visitor, user)
	if err != nil {
		return "", err
	}
	if isUserSubject(s) { // the arm it had before signing in (person.go)
		_, arm, err := h.resolveUser(ctx, s, nil)
		return arm, err
	}
	return h.ArmOf(s), nil
}

// cents converts revenue to whole cents (the unit of the counters).
func cents(revenue float64) int64 {
	if !(revenue > 0) || math.IsInf(revenue, 0) {
		return 0
	}
	return int64(math.Round(revenue * 100))
}

// ctxTimeout returns a context for a store write bounded by WriteTimeout,
// which runs even when ctx is cancelled (a shutdown finishing its batch).
func (h *Holdout) ctxTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), h.cfg.WriteTimeout)
}

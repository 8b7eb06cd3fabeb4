package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/defaults"
)

// Defaults of Config.
const (
	DefaultKey      = "replicas"
	DefaultTTL      = 4 * time.Second
	DefaultInterval = time.Second
	// mapLife is how long the lease map outlives its last renewal.
	mapLife = 24 * time.Hour
	// gcAfter (in TTLs) is how long an expired lease stays before a
	// reader deletes it.
	gcAfter = 10
)

// Config configures a Membership.
type Config struct {
	// Maps stores the leases (the store of kairos serve).
	Maps storage.Maps
	// Replica is this replica's name (stable, unique among the live
	// replicas).
	Replica string
	// Key of the lease map (default "replicas"); the store prefixes its
	// namespace.
	Key string
	// TTL is how long a lease lasts without renewal (default 4 s): a dead
	// replica's partitions move after at most TTL + Interval.
	TTL time.Duration
	// Interval is how often the lease is renewed and the members read
	// (default 1 s, and below TTL/2).
	Interval time.Duration
	// Logger receives membership changes and store errors; nil discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
	// Registerer receives the gauges kairos_replicas_live and
	// kairos_partitions_owned (nil: not registered).
	Registerer prometheus.Registerer
}

// Defaults returns c with every zero field set.
func (c Config) Defaults() Config {
	defaults.Set(&c.Key, DefaultKey)
	defaults.Set(&c.TTL, DefaultTTL)
	defaults.Set(&c.Interval, min(DefaultInterval, c.TTL/4))
	c.Now = defaults.Clock(c.Now)
	c.Logger = defaults.Logger(c.Logger)
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Maps == nil {
		errs = append(errs, errors.New("membership config: Maps is nil"))
	}
	if c.Replica == "" {
		errs = append(errs, errors.New("membership config: Replica is empty"))
	}
	if c.TTL <= 0 || c.Interval <= 0 || c.Interval*2 > c.TTL {
		errs = append(errs, fmt.Errorf("membership config: TTL %v, Interval %v: want 0 < 2·Interval <= TTL", c.TTL, c.Interval))
	}
	return errors.Join(errs...)
}

// Membership is one replica's view of the live replicas.
type Membership struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	members  []string // sorted live replicas at the last successful read
	reported []string // disagreeing replicas last logged (reportDisagreement)
	owned    int      // partitions of the last assignment sent
}

// New returns the Membership of cfg.Replica; it fails on an invalid cfg
// (after Defaults).
func New(cfg Config) (*Membership, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Membership{cfg: cfg, log: cfg.Logger.With(slog.String("component", "membership"), slog.String("replica", cfg.Replica))}
	if cfg.Registerer != nil {
		gauges := []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kairos_replicas_live",
				Help: "Live engine replicas (leases in the store) at this replica's last read."},
				func() float64 { return float64(len(m.Members())) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kairos_partitions_owned",
				Help: "Partitions this replica consumes by its last assignment."},
				func() float64 { return float64(m.ownedCount()) }),
		}
		for _, g := range gauges {
			if err := cfg.Registerer.Register(g); err != nil {
				return nil, fmt.Errorf("membership: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// ownedCount returns how many partitions the last assignment gave this
// replica.
func (m *Membership) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned
}

// Members returns the live replicas seen at the last renewal, sorted.
func (m *Membership) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.members)
}

// Assign renews this replica's lease every Interval until ctx is done,
// then deletes it, and sends on the returned channel the sorted
// partitions of 0..n-1 this replica owns: first after the first
// successful renewal, then whenever the set changes. The channel holds
// the latest set only (a reader that falls behind gets the newest) and is
// closed once the lease is deleted.
func (m *Membership) Assign(ctx context.Context, n int) <-chan []int {
	out := make(chan []int, 1)
	go m.run(ctx, n, out)
	return out
}

func (m *Membership) run(ctx context.Context, n int, out chan []int) {
	defer close(out)
	defer m.leave()
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	var last []int
	sent := false
	for {
		members, err := m.renew(ctx, n)
		switch {
		case err != nil && ctx.Err() == nil:
			m.log.LogAttrs(ctx, slog.LevelWarn, "lease renewal failed; keeping the last assignment", slog.Any("err", err))
		case err == nil:
			owned := Owned(members, m.cfg.Replica, n)
			if !sent || !slices.Equal(owned, last) {
				m.log.LogAttrs(ctx, slog.LevelInfo, "partition assignment", slog.Any("members", members),
					slog.Int("owned", len(owned)), slog.Int("partitions", n))
				last, sent = owned, true
				m.mu.Lock()
				m.owned = len(owned)
				m.mu.Unlock()
				select { // replace an unread older set
				case <-out:
				default:
				}
				out <- owned
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lease is one parsed lease value: "<deadline ms>/<partitions>" (a lease
// of an earlier release has no partition count: 0).
type lease struct {
	deadline   time.Time
	partitions int
}

func formatLease(deadline time.Time, partitions int) string {
	return strconv.FormatInt(deadline.UnixMilli(), 10) + "/" + strconv.Itoa(partitions)
}

func parseLease(v string) (lease, bool) {
	msText, nText, counted := strings.Cut(v, "/")
	ms, err := strconv.ParseInt(msText, 10, 64)
	if err != nil {
		return lease{}, false
	}
	l := lease{deadline: time.UnixMilli(ms)}
	if counted {
		if l.partitions, err = strconv.Atoi(nText); err != nil || l.partitions <= 0 {
			return lease{}, false
		}
	}
	return l, true
}

// Check returns an error naming the live replicas that consume a number
// of partitions other than n: the replicas of one deployment must agree
// on it, or a key's events would be applied on two partitions. A
// replica calls it before it joins; to change the number, every replica
// is stopped first (their leases are deleted, or run out within TTL).
func (m *Membership) Check(ctx context.Context, n int) error {
	maps, err := m.cfg.Maps.Maps(ctx, []string{m.cfg.Key})
	if err != nil {
		return fmt.Errorf("membership: read leases: %w", err)
	}
	if others := m.disagreeing(maps[0], n, m.cfg.Now()); len(others) > 0 {
		return fmt.Errorf("membership: %s; this replica was started with %d: every replica must use the same number of partitions (to change it, stop them all, then start them with the new number)",
			strings.Join(others, ", "), n)
	}
	return nil
}

// disagreeing describes the live leases of leases (but this replica's)
// that carry a partition count other than n, sorted.
func (m *Membership) disagreeing(leases map[string]string, n int, now time.Time) []string {
	var out []string
	for name, v := range leases {
		l, ok := parseLease(v)
		if name == m.cfg.Replica || !ok || !l.deadline.After(now) || l.partitions == 0 || l.partitions == n {
			continue
		}
		out = append(out, fmt.Sprintf("replica %q consumes %d partitions", name, l.partitions))
	}
	slices.Sort(out)
	return out
}

// renew writes this replica's lease (consuming n partitions), reads every
// lease, deletes the long expired ones and returns the live members
// (always including this one).
func (m *Membership) renew(ctx context.Context, n int) ([]string, error) {
	c := m.cfg
	now := c.Now()
	var txn storage.Txn
	txn.Set(c.Key, c.Replica, formatLease(now.Add(c.TTL), n))
	txn.Expire(c.Key, now.Add(mapLife))
	if err := c.Maps.Apply(ctx, txn); err != nil {
		return nil, fmt.Errorf("membership: renew lease: %w", err)
	}
	maps, err := c.Maps.Maps(ctx, []string{c.Key})
	if err != nil {
		return nil, fmt.Errorf("membership: read leases: %w", err)
	}
	members := []string{c.Replica}
	var stale storage.Txn
	for name, v := range maps[0] {
		if name == c.Replica {
			continue
		}
		l, ok := parseLease(v)
		if !ok {
			continue // not a lease of this package
		}
		switch {
		case l.deadline.After(now):
			members = append(members, name)
		case now.Sub(l.deadline) > gcAfter*c.TTL:
			stale.IfEquals(c.Key, name, v)
			stale.Del(c.Key, name)
		}
	}
	slices.Sort(members)
	m.reportDisagreement(ctx, maps[0], n, now)
	if !stale.Empty() {
		// A conflict means a stale lease was renewed meanwhile: keep it.
		if err := c.Maps.Apply(ctx, stale); err != nil && ctx.Err() == nil {
			m.log.LogAttrs(ctx, slog.LevelDebug, "stale leases not deleted", slog.Any("err", err))
		}
	}
	m.mu.Lock()
	m.members = members
	m.mu.Unlock()
	return members, nil
}

// reportDisagreement logs, once per change, the live replicas whose
// partition count differs from n (replicas started at the same moment
// with different counts both pass Check).
func (m *Membership) reportDisagreement(ctx context.Context, leases map[string]string, n int, now time.Time) {
	others := m.disagreeing(leases, n, now)
	m.mu.Lock()
	changed := !slices.Equal(others, m.reported)
	m.reported = others
	m.mu.Unlock()
	if changed && len(others) > 0 {
		m.log.LogAttrs(ctx, slog.LevelError, "replicas disagree on the number of partitions: a key's events may be applied on two partitions; stop the replicas started with the wrong --partitions",
			slog.Int("partitions", n), slog.String("others", strings.Join(others, ", ")))
	}
}

// leave deletes this replica's lease, so that the others take its
// partitions at their next read instead of after TTL.
func (m *Membership) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.TTL)
	defer cancel()
	var txn storage.Txn
	txn.Del(m.cfg.Key, m.cfg.Replica)
	if err := m.cfg.Maps.Apply(ctx, txn); err != nil {
		m.log.LogAttrs(ctx, slog.LevelWarn, "lease not deleted; it runs out by itself", slog.Any("err", err))
	}
}

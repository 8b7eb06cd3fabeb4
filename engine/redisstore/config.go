package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/internal/redisconn"
)

// Defaults of Config.
const (
	DefaultURL          = "redis://127.0.0.1:6379/0"
	DefaultPrefix       = "kairos"
	DefaultHistoryLimit = 500
	DefaultDedupWindow  = 7 * 24 * time.Hour
	DefaultDialTimeout  = 5 * time.Second
	DefaultReadTimeout  = 3 * time.Second
	DefaultWriteTimeout = 3 * time.Second
	// DefaultFailoverTimeout is longer than a Redis Cluster failover
	// (cluster-node-timeout, 15 s by default, then an election).
	DefaultFailoverTimeout = 20 * time.Second
)

// Config configures a Store. Zero fields take their Defaults; Open calls
// Defaults and Validate.
type Config struct {
	// URL of the Redis server: redis://[user:password@]host:port/db, or
	// rediss:// for TLS (default DefaultURL); or of a Redis Cluster, in
	// go-redis's cluster form redis://host:port?addr=host:port&addr=…
	// (the seed nodes; see internal/redisconn).
	URL string
	// Prefix of every key (default "kairos"): several deployments, or
	// tests, can share one database with different prefixes. Letters,
	// digits, '.', '-', '_' and ':'.
	Prefix string
	// HistoryLimit is the number of events kept per visitor, the newest
	// (default 500).
	HistoryLimit int
	// DedupWindow is how long a committed event id is reported by Seen
	// (default 7 days): the TTL of its mark, with millisecond precision.
	DedupWindow time.Duration
	// DialTimeout bounds each connection attempt (default 5 s).
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound each network read and write of a
	// command or pipeline (defaults 3 s); the context of the call bounds
	// the whole call.
	ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the maximum number of connections, per node on a
	// cluster (0: go-redis's default, 10 per CPU).
	PoolSize int
	// FailoverTimeout bounds how long a command that failed because a
	// node is down (a connection error, CLUSTERDOWN, …) is tried again,
	// waiting for a failover (default 20 s); the call's context bounds it
	// too. See the Failover notes of retry.go.
	FailoverTimeout time.Duration
	// WaitReplicas, on a Redis Cluster, makes Commit return only once that
	// many replicas of each master it wrote to have the writes (WAIT, on
	// the connection of the writes): a master killed after acknowledging
	// a commit then loses nothing, since the replica promoted in its place
	// has it. 0 (the default) does not wait: Redis replicates
	// asynchronously, and the last writes acknowledged before a master
	// dies may be lost in its failover. Ignored on one server.
	WaitReplicas int
	// WaitTimeout bounds each WAIT (default 1 s); fewer replicas within it
	// fail the commit (engine.ErrUnavailable), which is then retried.
	WaitTimeout time.Duration
	// Logger receives connection events; nil discards.
	Logger *slog.Logger
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.URL, DefaultURL)
	defaults.Set(&c.Prefix, DefaultPrefix)
	defaults.Set(&c.HistoryLimit, DefaultHistoryLimit)
	defaults.Set(&c.DedupWindow, DefaultDedupWindow)
	defaults.Set(&c.DialTimeout, DefaultDialTimeout)
	defaults.Set(&c.ReadTimeout, DefaultReadTimeout)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	defaults.Set(&c.FailoverTimeout, DefaultFailoverTimeout)
	defaults.Set(&c.WaitTimeout, time.Second)
	c.Logger = defaults.Logger(c.Logger)
	return c
}

// Validate reports every problem of c at once (after Defaults, zero
// fields are problems too).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("redisstore config: "+format, args...))
	}
	if err := redisconn.Validate(c.URL); err != nil {
		bad("URL: %v", err)
	}
	if !validPrefix(c.Prefix) {
		bad("Prefix %q: want 1-100 letters, digits, '.', '-', '_' or ':'", c.Prefix)
	}
	if c.HistoryLimit < 1 || c.HistoryLimit > 100_000 {
		bad("HistoryLimit %d: want 1..100000", c.HistoryLimit)
	}
	if c.DedupWindow < time.Millisecond {
		bad("DedupWindow %v: want at least 1ms", c.DedupWindow)
	}
	if c.DialTimeout <= 0 {
		bad("DialTimeout %v: want > 0", c.DialTimeout)
	}
	if c.ReadTimeout <= 0 {
		bad("ReadTimeout %v: want > 0", c.ReadTimeout)
	}
	if c.WriteTimeout <= 0 {
		bad("WriteTimeout %v: want > 0", c.WriteTimeout)
	}
	if c.FailoverTimeout <= 0 {
		bad("FailoverTimeout %v: want > 0", c.FailoverTimeout)
	}
	if c.WaitReplicas < 0 || c.WaitReplicas > 16 {
		bad("WaitReplicas %d: want 0..16", c.WaitReplicas)
	}
	if c.WaitTimeout <= 0 {
		bad("WaitTimeout %v: want > 0", c.WaitTimeout)
	}
	if c.PoolSize < 0 {
		bad("PoolSize %d: want >= 0", c.PoolSize)
	}
	return errors.Join(errs...)
}

func validPrefix(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

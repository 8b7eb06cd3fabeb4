package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/redis/go-redis/v9"
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
)

// Config configures a Store. Zero fields take their Defaults; Open calls
// Defaults and Validate.
type Config struct {
	// URL of the Redis server: redis://[user:password@]host:port/db, or
	// rediss:// for TLS (default DefaultURL).
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
	// PoolSize is the maximum number of connections (0: go-redis's
	// default, 10 per CPU).
	PoolSize int
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
	if _, err := redis.ParseURL(c.URL); err != nil {
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

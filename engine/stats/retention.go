package stats

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Default retention of each resolution (0 keeps the buckets forever).
const (
	DefaultRetention15m = 30 * day
	DefaultRetention1h  = 120 * day
	DefaultRetention1d  = 0
)

const day = 24 * time.Hour

// Retention is the per-resolution retention policy: how long a bucket is
// kept after it ends (its end + the retention is its expiry). Zero keeps
// the buckets of that resolution forever. The zero Retention keeps
// everything forever; DefaultRetention is 15m:30d,1h:120d,1d:0.
type Retention struct {
	Q15m time.Duration // 15-minute buckets
	H1   time.Duration // hourly buckets
	D1   time.Duration // daily buckets
}

// DefaultRetention returns 15m:30d,1h:120d,1d:0 (daily buckets forever).
func DefaultRetention() Retention {
	return Retention{Q15m: DefaultRetention15m, H1: DefaultRetention1h, D1: DefaultRetention1d}
}

// Of returns the retention of res (0: forever, also for an invalid res).
func (p Retention) Of(res Resolution) time.Duration {
	switch res {
	case Res15m:
		return p.Q15m
	case Res1h:
		return p.H1
	case Res1d:
		return p.D1
	}
	return 0
}

func (p *Retention) set(res Resolution, d time.Duration) {
	switch res {
	case Res15m:
		p.Q15m = d
	case Res1h:
		p.H1 = d
	case Res1d:
		p.D1 = d
	}
}

// ExpireAt returns when the bucket of res starting at start (Unix
// seconds) expires, in Unix seconds: its end plus the retention of res;
// 0 when res is kept forever.
func (p Retention) ExpireAt(res Resolution, start int64) int64 {
	d := p.Of(res)
	if d <= 0 {
		return 0
	}
	return start + res.seconds() + int64(d/time.Second)
}

// Validate reports every problem at once: a retention must be 0 (forever)
// or at least one bucket of its resolution, in whole seconds, and at most
// 100 years.
func (p Retention) Validate() error {
	var errs []error
	for _, res := range resolutions {
		d := p.Of(res)
		switch {
		case d == 0:
		case d < 0:
			errs = append(errs, fmt.Errorf("retention of %s: %v is negative (0 keeps the buckets forever)", res, d))
		case d < res.Duration():
			errs = append(errs, fmt.Errorf("retention of %s: %v is shorter than one bucket (%v)", res, d, res.Duration()))
		case d%time.Second != 0:
			errs = append(errs, fmt.Errorf("retention of %s: %v is not a whole number of seconds", res, d))
		case d > maxRetention:
			errs = append(errs, fmt.Errorf("retention of %s: %v is more than 100 years (use 0 to keep the buckets forever)", res, d))
		}
	}
	return errors.Join(errs...)
}

const maxRetention = 100 * 365 * day

// String returns the policy in the form ParseRetention reads, e.g.
// "15m:30d,1h:120d,1d:0".
func (p Retention) String() string {
	var b strings.Builder
	for i, res := range resolutions {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(res.String())
		b.WriteByte(':')
		b.WriteString(formatRetention(p.Of(res)))
	}
	return b.String()
}

// formatRetention writes d in days when it is a whole number of days,
// else as a Go duration; 0 as "0".
func formatRetention(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// ParseRetention reads a policy such as "15m:30d,1h:120d,1d:0": a
// comma-separated list of resolution:retention, where a retention is 0
// (or "forever"), a number of days ("30d"), weeks ("2w") or a Go duration
// ("36h", "90m"). Resolutions not listed keep their default
// (DefaultRetention); the empty string is the default policy. A
// resolution listed twice is an error. The result is validated.
func ParseRetention(s string) (Retention, error) {
	p := DefaultRetention()
	s = strings.TrimSpace(s)
	if s == "" {
		return p, nil
	}
	seen := map[Resolution]bool{}
	var errs []error
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, val, ok := strings.Cut(part, ":")
		if !ok {
			errs = append(errs, fmt.Errorf("%q: want resolution:retention, e.g. 15m:30d", part))
			continue
		}
		res, err := ParseResolution(strings.TrimSpace(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", part, err))
			continue
		}
		if seen[res] {
			errs = append(errs, fmt.Errorf("%q: %s is listed twice", part, res))
			continue
		}
		seen[res] = true
		d, err := parseRetentionValue(strings.TrimSpace(val))
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", part, err))
			continue
		}
		p.set(res, d)
	}
	return p, errors.Join(append(errs, p.Validate())...)
}

func parseRetentionValue(v string) (time.Duration, error) {
	switch v {
	case "0", "forever":
		return 0, nil
	case "":
		return 0, errors.New("the retention is missing (0 keeps the buckets forever)")
	}
	unit := map[byte]time.Duration{'d': day, 'w': 7 * day}[v[len(v)-1]]
	if unit > 0 {
		n, err := strconv.ParseFloat(v[:len(v)-1], 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return 0, fmt.Errorf("%q is not a number of days or weeks", v)
		}
		if n*float64(unit) > float64(math.MaxInt64) || n*float64(unit) < float64(math.MinInt64) {
			return 0, fmt.Errorf("%q is too long", v)
		}
		return time.Duration(n * float64(unit)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a retention (0, forever, 30d, 2w or a duration such as 36h)", v)
	}
	return d, nil
}

package stats

import (
	"fmt"
	"strconv"
	"time"
)

// Resolution is the width of a counter bucket: 15 minutes, an hour or a
// day. Buckets are aligned on the Unix epoch, so on UTC quarter hours,
// hours and midnights (Unix time has no leap seconds: every day is 86,400
// seconds).
type Resolution uint8

// The resolutions, finest first.
const (
	Res15m Resolution = iota + 1 // 15-minute buckets ("15m")
	Res1h                        // hourly buckets ("1h")
	Res1d                        // daily buckets, UTC midnight to midnight ("1d")
)

// resolutions lists every resolution, finest first.
var resolutions = [...]Resolution{Res15m, Res1h, Res1d}

// Resolutions returns every resolution, finest first.
func Resolutions() []Resolution { return resolutions[:] }

// seconds returns the width of r in seconds (0 for an invalid r).
func (r Resolution) seconds() int64 {
	switch r {
	case Res15m:
		return 15 * 60
	case Res1h:
		return 60 * 60
	case Res1d:
		return 24 * 60 * 60
	}
	return 0
}

// Valid reports whether r is one of Res15m, Res1h and Res1d.
func (r Resolution) Valid() bool { return r.seconds() > 0 }

// Duration returns the width of a bucket of r (0 for an invalid r).
func (r Resolution) Duration() time.Duration { return time.Duration(r.seconds()) * time.Second }

// String returns "15m", "1h" or "1d" (the form ParseResolution reads and
// the Redis keys use).
func (r Resolution) String() string {
	switch r {
	case Res15m:
		return "15m"
	case Res1h:
		return "1h"
	case Res1d:
		return "1d"
	}
	return "Resolution(" + strconv.Itoa(int(r)) + ")"
}

// ParseResolution reads "15m", "1h" or "1d".
func ParseResolution(s string) (Resolution, error) {
	for _, r := range resolutions {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%q is not a resolution (want 15m, 1h or 1d)", s)
}

// Bucket returns the start of the bucket of r that holds t, in UTC.
func (r Resolution) Bucket(t time.Time) time.Time {
	return time.Unix(r.StartOf(t.Unix()), 0).UTC()
}

// StartOf returns the start, in Unix seconds, of the bucket of r that holds
// the Unix second sec (rounding down, also before 1970).
func (r Resolution) StartOf(sec int64) int64 {
	w := r.seconds()
	if w == 0 {
		return sec
	}
	q := sec / w
	if sec%w < 0 {
		q--
	}
	return q * w
}

package stats

import (
	"strings"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		res  Resolution
		at   string
		want string
	}{
		{Res15m, "2026-11-23T14:00:00Z", "2026-11-23T14:00:00Z"},
		{Res15m, "2026-11-23T14:14:59.999Z", "2026-11-23T14:00:00Z"},
		{Res15m, "2026-11-23T14:15:00Z", "2026-11-23T14:15:00Z"},
		{Res15m, "2026-11-23T14:59:59Z", "2026-11-23T14:45:00Z"},
		{Res15m, "2026-11-23T23:59:59.999Z", "2026-11-23T23:45:00Z"},
		{Res1h, "2026-11-23T14:00:00Z", "2026-11-23T14:00:00Z"},
		{Res1h, "2026-11-23T14:59:59.999Z", "2026-11-23T14:00:00Z"},
		{Res1h, "2026-11-23T15:00:00Z", "2026-11-23T15:00:00Z"},
		{Res1d, "2026-11-23T00:00:00Z", "2026-11-23T00:00:00Z"},
		{Res1d, "2026-11-23T23:59:59.999Z", "2026-11-23T00:00:00Z"},
		{Res1d, "2026-11-24T00:00:00Z", "2026-11-24T00:00:00Z"},
		// Other zones are bucketed in UTC: 01:30 in Paris (+01:00) is
		// 00:30 UTC, the day of the 23rd; 23:30 in New York is the next
		// UTC day.
		{Res1d, "2026-11-23T01:30:00+01:00", "2026-11-23T00:00:00Z"},
		{Res1d, "2026-11-23T23:30:00-05:00", "2026-11-24T00:00:00Z"},
		// India (+05:30): a quarter-hour boundary in local time is one in UTC too.
		{Res15m, "2026-11-23T14:44:00+05:30", "2026-11-23T09:00:00Z"},
		{Res1h, "2026-11-23T14:44:00+05:30", "2026-11-23T09:00:00Z"},
		// Leap day and year end.
		{Res1d, "2028-02-29T12:00:00Z", "2028-02-29T00:00:00Z"},
		{Res1h, "2026-12-31T23:59:59Z", "2026-12-31T23:00:00Z"},
		// Before 1970 the start still rounds down.
		{Res1h, "1969-12-31T23:30:00Z", "1969-12-31T23:00:00Z"},
		{Res1d, "1969-12-31T23:30:00Z", "1969-12-31T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.res.String()+" "+tt.at, func(t *testing.T) {
			got := tt.res.Bucket(utc(tt.at))
			if want := utc(tt.want); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("Bucket = %v, want %v (UTC)", got, want)
			}
			if s := tt.res.StartOf(utc(tt.at).Unix()); s != got.Unix() {
				t.Errorf("StartOf = %d, Bucket %d", s, got.Unix())
			}
		})
	}
}

func TestResolution(t *testing.T) {
	for _, r := range Resolutions() {
		got, err := ParseResolution(r.String())
		if err != nil || got != r {
			t.Errorf("ParseResolution(%q) = %v, %v", r.String(), got, err)
		}
		if !r.Valid() || r.Duration() <= 0 {
			t.Errorf("%v: Valid %v, Duration %v", r, r.Valid(), r.Duration())
		}
	}
	if d := Res15m.Duration(); d != 15*time.Minute {
		t.Errorf("15m is %v", d)
	}
	if d := Res1d.Duration(); d != 24*time.Hour {
		t.Errorf("1d is %v", d)
	}
	for _, s := range []string{"", "15min", "1H", "60m", "24h", "1w", "15m "} {
		if _, err := ParseResolution(s); err == nil || !strings.Contains(err.Error(), "15m, 1h or 1d") {
			t.Errorf("ParseResolution(%q): %v, want an error listing the resolutions", s, err)
		}
	}
	if Resolution(0).Valid() || Resolution(4).Valid() || Resolution(9).Duration() != 0 {
		t.Error("invalid resolutions look valid")
	}
	if s := Resolution(9).String(); s != "Resolution(9)" {
		t.Errorf("String of an invalid resolution: %q", s)
	}
}

func TestStarts(t *testing.T) {
	base := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	tests := []struct {
		name     string
		res      Resolution
		from, to time.Time
		first    time.Time
		n        int
	}{
		{"aligned", Res1h, at(0), at(3 * time.Hour), at(0), 3},
		{"to inside a bucket", Res1h, at(0), at(3*time.Hour + time.Second), at(0), 4},
		{"to a nanosecond in", Res1h, at(0), at(3*time.Hour + 1), at(0), 4},
		{"from inside a bucket", Res1h, at(time.Second), at(3 * time.Hour), at(time.Hour), 2},
		{"from a nanosecond in", Res1h, at(1), at(3 * time.Hour), at(time.Hour), 2},
		{"no start inside", Res1h, at(time.Minute), at(59 * time.Minute), at(time.Hour), 0},
		{"empty range", Res15m, at(0), at(0), at(0), 0},
		{"one", Res15m, at(0), at(1), at(0), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, n, err := Starts(tt.res, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.n || (n > 0 && first != tt.first.Unix()) {
				t.Errorf("Starts = %v, %d; want %v, %d", time.Unix(first, 0).UTC(), n, tt.first, tt.n)
			}
		})
	}
	if _, _, err := Starts(Res15m, base, base.Add(MaxBuckets*15*time.Minute+time.Second)); err == nil || !strings.Contains(err.Error(), "from, to") {
		t.Errorf("too many buckets: %v", err)
	}
	if _, _, err := Starts(0, base, base.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "resolution") {
		t.Errorf("invalid resolution: %v", err)
	}
}

package stats

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	def := DefaultRetention()
	tests := []struct {
		in   string
		want Retention
		errs []string // fragments of the error, nil: valid
	}{
		{"", def, nil},
		{"15m:30d,1h:120d,1d:0", def, nil},
		{" 1d:0 , 15m:30d ,1h:120d ", def, nil},
		{"15m:7d", Retention{Q15m: 7 * day, H1: def.H1, D1: def.D1}, nil},
		{"1d:365d", Retention{Q15m: def.Q15m, H1: def.H1, D1: 365 * day}, nil},
		{"15m:36h,1h:2w,1d:forever", Retention{Q15m: 36 * time.Hour, H1: 14 * day, D1: 0}, nil},
		{"15m:0,1h:0", Retention{}, nil},
		{"15m:1.5d", Retention{Q15m: 36 * time.Hour, H1: def.H1}, nil},
		{"15m:15m", Retention{Q15m: 15 * time.Minute, H1: def.H1}, nil},
		{"15m", def, []string{`"15m": want resolution:retention`}},
		{"5m:1d", def, []string{`"5m:1d"`, "15m, 1h or 1d"}},
		{"15m:1d,15m:2d", def, []string{"listed twice"}},
		{"1h:abc", def, []string{`"abc" is not a retention`}},
		{"1h:", def, []string{"missing"}},
		{"1h:xd", def, []string{"not a number of days"}},
		{"1h:-1d", def, []string{"negative"}},
		{"1h:30m", def, []string{"retention of 1h", "shorter than one bucket"}},
		{"1d:1h", def, []string{"retention of 1d", "shorter than one bucket"}},
		{"15m:40000d", def, []string{"more than 100 years"}},
		{"15m:1e300d", def, []string{"too long"}},
		{"15m:20m500ms", def, []string{"whole number of seconds"}},
		// Every problem at once.
		{"15m:x,1h:-1d,2d:3", def, []string{`"x"`, "negative", `"2d:3"`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRetention(tt.in)
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if got != tt.want {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				back, err := ParseRetention(got.String())
				if err != nil || back != got {
					t.Fatalf("String %q parses to %v, %v", got.String(), back, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %v", got)
			}
			for _, f := range tt.errs {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not contain %q", err, f)
				}
			}
		})
	}
}

func TestRetentionString(t *testing.T) {
	if s := DefaultRetention().String(); s != "15m:30d,1h:120d,1d:0" {
		t.Errorf("default: %q", s)
	}
	if s := (Retention{Q15m: 36 * time.Hour}).String(); s != "15m:36h0m0s,1h:0,1d:0" {
		t.Errorf("%q", s)
	}
}

func TestRetentionExpireAt(t *testing.T) {
	p := DefaultRetention()
	start := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC).Unix()
	if got, want := p.ExpireAt(Res15m, start), start+15*60+30*86400; got != want {
		t.Errorf("15m: %d, want %d (bucket end + 30 days)", got, want)
	}
	if got, want := p.ExpireAt(Res1h, start), start+3600+120*86400; got != want {
		t.Errorf("1h: %d, want %d", got, want)
	}
	if got := p.ExpireAt(Res1d, start); got != 0 {
		t.Errorf("1d kept forever: %d, want 0", got)
	}
	if got := p.ExpireAt(0, start); got != 0 {
		t.Errorf("invalid resolution: %d", got)
	}
}

// FuzzParseRetention: any input parses to a valid policy or fails; a
// valid one round-trips through String.
func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"", "15m:30d,1h:120d,1d:0", "1h:2w", "15m:36h", "1d:forever", "15m:1.5d", "x", "15m:-1d", "1h:1e9d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseRetention(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParseRetention(%q) = %v, which does not validate: %v", s, p, err)
		}
		back, err := ParseRetention(p.String())
		if err != nil || back != p {
			t.Fatalf("ParseRetention(%q) = %v; its String %q parses to %v, %v", s, p, p.String(), back, err)
		}
	})
}

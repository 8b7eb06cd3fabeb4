package defaults

import (
	"log/slog"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	n := 0
	Set(&n, 5)
	if n != 5 {
		t.Fatalf("zero int: got %d, want 5", n)
	}
	Set(&n, 7)
	if n != 5 {
		t.Fatalf("set int: got %d, want 5 (kept)", n)
	}
	d := time.Duration(-1)
	Set(&d, time.Second)
	if d != -1 {
		t.Fatalf("negative duration: got %v, want -1ns (kept)", d)
	}
	s := ""
	Set(&s, "x")
	if s != "x" {
		t.Fatalf("empty string: got %q, want x", s)
	}
}

func TestLoggerAndClock(t *testing.T) {
	if Logger(nil) == nil {
		t.Fatal("Logger(nil) is nil")
	}
	l := slog.Default()
	if Logger(l) != l {
		t.Fatal("Logger(l) did not return l")
	}
	if Clock(nil) == nil {
		t.Fatal("Clock(nil) is nil")
	}
	fixed := time.Unix(42, 0)
	if got := Clock(func() time.Time { return fixed })(); !got.Equal(fixed) {
		t.Fatalf("Clock(f)() = %v, want %v", got, fixed)
	}
}

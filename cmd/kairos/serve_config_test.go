package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestDedupWindowFlag: --dedup-window reaches the configuration, and a
// window too short to cover a redelivery is refused with the flag's name.
func TestDedupWindowFlag(t *testing.T) {
	base := []string{"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", ""}
	cfg, err := parseServeConfig(append(base, "--dedup-window", "36h"), io.Discard)
	if err != nil || cfg.DedupWindow != 36*time.Hour {
		t.Fatalf("--dedup-window 36h: window %v, err %v", cfg.DedupWindow, err)
	}
	cfg, err = parseServeConfig(base, io.Discard)
	if err != nil || cfg.DedupWindow != 7*24*time.Hour {
		t.Fatalf("default: window %v, err %v; want 168h", cfg.DedupWindow, err)
	}
	if _, err := parseServeConfig(append(base, "--dedup-window", "30s"), io.Discard); err == nil || !strings.Contains(err.Error(), "--dedup-window 30s") {
		t.Fatalf("--dedup-window 30s: err %v, want one naming the flag", err)
	}
}

package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
)

// bareStore is a store with only engine.Store's methods: it keeps no
// promotions, experiments, counters or attention.
type bareStore struct{ engine.Store }

// noAttention is the embedded store without attention's capability (the
// field hides the method attention.Store needs).
type noAttention struct {
	*embedded.Store
	AddDwell struct{}
}

// TestServeRefusesStoreWithoutFeature checks that kairos serve refuses a
// store that cannot serve one of its features, naming the feature and the
// capability it lacks, and accepts the embedded store.
func TestServeRefusesStoreWithoutFeature(t *testing.T) {
	cfg, err := parseServeConfig([]string{"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := embedded.Open(filepath.Join(t.TempDir(), "state"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := checkFeatures(cfg, s); err != nil {
		t.Fatalf("the embedded store: %v", err)
	}
	for _, tc := range []struct {
		name  string
		store engine.Store
		want  string
	}{
		{"bare", bareStore{s}, "feature stats: the embedded store cannot serve it: it does not implement stats.Store"},
		{"no attention", noAttention{Store: s}, "feature attention: the embedded store cannot serve it: it does not implement attention.Store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkFeatures(cfg, tc.store)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("checkFeatures = %v, want %q", err, tc.want)
			}
		})
	}
	// A feature that is off needs nothing.
	demo := features[len(features)-1]
	if demo.name != "demo" || demo.on(cfg) {
		t.Errorf("the demo is on without --demo")
	}
	if !strings.Contains(checkFeatures(cfg, bareStore{s}).Error(), "stats") {
		t.Error("the first missing feature is not named")
	}
}

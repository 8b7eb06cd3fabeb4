package embedded

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
)

func TestAttentionContract(t *testing.T) {
	attentiontest.Run(t, func(t *testing.T) attention.Store { return mustOpen(t, t.TempDir(), testConfig()) })
}

// TestAttentionPersistence writes dwell, reopens the directory after a
// Close (snapshot) or a crash (log replay), and checks that the pages,
// their bound and their expiry are as before; expired pages are not in
// the snapshot, and pruned by a later write.
func TestAttentionPersistence(t *testing.T) {
	for _, tt := range []struct {
		name  string
		close func(s *Store)
	}{
		{"snapshot", func(s *Store) { s.Close() }},
		{"log replay", func(s *Store) { s.abandon() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: countsT0}
			cfg := testConfig()
			cfg.Now = clock.Now
			dir := t.TempDir()
			s := mustOpen(t, dir, cfg)
			ctx := context.Background()
			add := func(s *Store, exp time.Time, deltas ...attention.Delta) {
				t.Helper()
				if err := s.AddDwell(ctx, attention.Write{Deltas: deltas, MaxElements: 2, ExpireAt: exp}); err != nil {
					t.Fatal(err)
				}
			}
			long, short := countsT0.Add(24*time.Hour), countsT0.Add(time.Hour)
			add(s, long, attention.Delta{Page: "/a", Element: "x", Ms: 10}, attention.Delta{Page: "/a", Element: "y", Ms: 20},
				attention.Delta{Page: "/b", Element: "x", Ms: 1})
			add(s, short, attention.Delta{Page: "/short", Element: "x", Ms: 5})
			add(s, long, attention.Delta{Page: "/a", Element: "z", Ms: 40}, attention.Delta{Page: "/a", Element: "x", Ms: 1})
			want := map[string]int64{"x": 11, "y": 20, attention.OtherElement: 40}
			if got := attentiontest.MustPage(t, s, "/a"); !maps.Equal(got, want) {
				t.Fatalf("before: /a = %v, want %v", got, want)
			}
			clock.Add(2 * time.Hour) // /short expires
			tt.close(s)

			s2 := mustOpen(t, dir, cfg)
			if got := attentiontest.MustPage(t, s2, "/a"); !maps.Equal(got, want) {
				t.Fatalf("after reopen: /a = %v, want %v", got, want)
			}
			if got := attentiontest.MustPage(t, s2, "/short"); len(got) != 0 {
				t.Fatalf("expired page after reopen: %v", got)
			}
			// The bound holds after the reopen: w is a third element.
			add(s2, long, attention.Delta{Page: "/a", Element: "w", Ms: 2})
			want[attention.OtherElement] += 2
			if got := attentiontest.MustPage(t, s2, "/a"); !maps.Equal(got, want) {
				t.Fatalf("bound after reopen: /a = %v, want %v", got, want)
			}
			s2.mu.RLock()
			_, kept := s2.st.dwell.pages["/short"]
			s2.mu.RUnlock()
			if kept {
				t.Fatal("an expired page is still in memory after a write (prune)")
			}
		})
	}
}

// TestAttentionReplayDecidesExpiryAsWritten: a page written before its
// expiry and again after it starts from zero at the second write, also
// when the log is replayed long after both.
func TestAttentionReplayDecidesExpiryAsWritten(t *testing.T) {
	clock := &fakeClock{t: countsT0}
	cfg := testConfig()
	cfg.Now = clock.Now
	dir := t.TempDir()
	s := mustOpen(t, dir, cfg)
	ctx := context.Background()
	w := func(ms int64) attention.Write {
		return attention.Write{Deltas: []attention.Delta{{Page: "/p", Element: "x", Ms: ms}}, MaxElements: 5, ExpireAt: clock.Now().Add(time.Hour)}
	}
	if err := s.AddDwell(ctx, w(7)); err != nil {
		t.Fatal(err)
	}
	clock.Add(30 * time.Minute)
	if err := s.AddDwell(ctx, w(3)); err != nil { // before expiry: adds up (10), now expires at +1h30
		t.Fatal(err)
	}
	clock.Add(2 * time.Hour)
	if err := s.AddDwell(ctx, w(5)); err != nil { // after expiry: starts again (5)
		t.Fatal(err)
	}
	s.abandon()
	clock.Add(30 * time.Minute)
	s2 := mustOpen(t, dir, cfg)
	if got := attentiontest.MustPage(t, s2, "/p"); got["x"] != 5 {
		t.Fatalf("after replay: %v, want x: 5", got)
	}
}

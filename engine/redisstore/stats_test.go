package redisstore

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/engine/stats/statstest"
	"github.com/kairoshq/kairos/signals"
)

func TestCountsContract(t *testing.T) {
	url := redistest.URL(t)
	statstest.Run(t, func(t *testing.T) stats.Store {
		return mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	})
}

// TestCountsKeysAndTTL checks the documented key layout and hash fields,
// and that each hash expires at its delta's ExpireAt (EXPIREAT), or never.
func TestCountsKeysAndTTL(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := mustOpen(t, Config{URL: url, Prefix: prefix})
	ctx := context.Background()
	b := statstest.Base()
	now := time.Now()
	start := stats.Res15m.StartOf(b.Unix())
	expire := now.Add(30 * 24 * time.Hour).Unix()
	statstest.MustAdd(t, s,
		stats.Delta{Res: stats.Res15m, Subject: stats.Item("sku:1"), Start: start, ExpireAt: expire, Type: signals.TypeView, Count: 2},
		stats.Delta{Res: stats.Res15m, Subject: stats.Item("sku:1"), Start: start, ExpireAt: expire, Type: signals.TypeConversion, Count: 1, Sum: 19.5},
		stats.Delta{Res: stats.Res1d, Subject: stats.Offer("o1"), Start: stats.Res1d.StartOf(b.Unix()), Type: signals.TypeClick, Count: 4},
	)
	key := prefix + ":st:15m:i:sku:1:" + itoa(start)
	got, err := s.Client().HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"view": "2", "conversion": "1", "conversion:v": "19.5"}
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", key, got, want)
	}
	for f, v := range want {
		if got[f] != v {
			t.Fatalf("%s = %v, want %v", key, got, want)
		}
	}
	ttl, err := s.CountTTL(ctx, stats.Res15m, stats.Item("sku:1"), start)
	if err != nil {
		t.Fatal(err)
	}
	if wantTTL := time.Unix(expire, 0).Sub(now); ttl > wantTTL+time.Second || ttl < wantTTL-5*time.Second {
		t.Errorf("TTL %v, want about %v (EXPIREAT %d)", ttl, wantTTL, expire)
	}
	dayKey := prefix + ":st:1d:o:o1:" + itoa(stats.Res1d.StartOf(b.Unix()))
	if v, err := s.Client().HGet(ctx, dayKey, "click").Result(); err != nil || v != "4" {
		t.Fatalf("%s click = %q, %v; want 4", dayKey, v, err)
	}
	if ttl, err := s.CountTTL(ctx, stats.Res1d, stats.Offer("o1"), stats.Res1d.StartOf(b.Unix())); err != nil || ttl != -1 {
		t.Errorf("kept-forever bucket: TTL %v, %v; want -1 (no expiry)", ttl, err)
	}
	if _, err := s.CountTTL(ctx, stats.Res1h, stats.Item("none"), start); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("TTL of a missing bucket: %v, want ErrNotFound", err)
	}
}

// TestCountsReactorTTL runs stats.Stats over the store with the default
// retention: each resolution's hashes expire at bucket end + retention.
func TestCountsReactorTTL(t *testing.T) {
	url := redistest.URL(t)
	s := mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	ret := stats.DefaultRetention()
	st, err := stats.New(s, stats.Config{Retention: ret})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-2 * time.Hour)
	st.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{
		{ID: "e1", Type: signals.TypeView, Visitor: "v", Item: "sku-1", Time: signals.Timestamp{Time: at}},
	}}})
	now := time.Now()
	for _, res := range stats.Resolutions() {
		start := res.StartOf(at.Unix())
		ttl, err := s.CountTTL(context.Background(), res, stats.Item("sku-1"), start)
		if err != nil {
			t.Fatalf("%v: %v", res, err)
		}
		if ret.Of(res) == 0 {
			if ttl != -1 {
				t.Errorf("%v: TTL %v, want none (kept forever)", res, ttl)
			}
			continue
		}
		want := time.Unix(start, 0).Add(res.Duration() + ret.Of(res)).Sub(now)
		if ttl > want+time.Second || ttl < want-5*time.Second {
			t.Errorf("%v: TTL %v, want about %v", res, ttl, want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// BenchmarkReact: stats.Stats.React of one batch (256 events over ~100
// items) with the Redis store: aggregation plus one MULTI/EXEC round trip.
func BenchmarkReact(b *testing.B) { statstest.BenchReact(b, benchStore(b)) }

// BenchmarkAddCounts: the Redis write of one batch's deltas alone.
func BenchmarkAddCounts(b *testing.B) { statstest.BenchAdd(b, benchStore(b)) }

package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
)

func TestAttentionContract(t *testing.T) {
	url := redistest.URL(t)
	attentiontest.Run(t, func(t *testing.T) attention.Store {
		return mustOpen(t, Config{URL: url, Prefix: redistest.Prefix(t, url)})
	})
}

// TestAttentionKeyAndTTL checks the documented key layout (a hash per
// page, element → ms) and that a write sets the page's expiry.
func TestAttentionKeyAndTTL(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := mustOpen(t, Config{URL: url, Prefix: prefix})
	ctx := context.Background()
	page := "https://shop.example/p/42"
	exp := time.Now().Add(48 * time.Hour)
	if err := s.AddDwell(ctx, attention.Write{MaxElements: 10, ExpireAt: exp, Deltas: []attention.Delta{
		{Page: page, Element: "item:42", Ms: 1500}, {Page: page, Element: "offer:o1", Ms: 20},
	}}); err != nil {
		t.Fatal(err)
	}
	key := prefix + ":att:" + page
	got, err := s.Client().HGetAll(ctx, key).Result()
	if err != nil || len(got) != 2 || got["item:42"] != "1500" || got["offer:o1"] != "20" {
		t.Fatalf("%s = %v, %v", key, got, err)
	}
	ttl, err := s.Client().PTTL(ctx, key).Result()
	if err != nil || ttl < 47*time.Hour || ttl > 48*time.Hour {
		t.Fatalf("TTL %v, %v; want about 48h", ttl, err)
	}
	if err := s.AddDwell(ctx, attention.Write{MaxElements: 10, Deltas: []attention.Delta{{Page: "/never", Element: "x", Ms: 1}}}); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := s.Client().PTTL(ctx, prefix+":att:/never").Result(); ttl != -1 {
		t.Fatalf("TTL of a page without expiry: %v, want none (-1)", ttl)
	}
}

// BenchmarkAddDwell writes a batch of 64 (page, element) counters over 8
// pages: one round trip.
func BenchmarkAddDwell(b *testing.B) {
	url := redistest.URL(b)
	s := mustOpen(b, Config{URL: url, Prefix: redistest.Prefix(b, url)})
	var deltas []attention.Delta
	for p := range 8 {
		for e := range 8 {
			deltas = append(deltas, attention.Delta{Page: "https://shop.example/p/" + itoa(int64(p)), Element: "item:" + itoa(int64(e)), Ms: 700})
		}
	}
	w := attention.Write{Deltas: deltas, MaxElements: 1000, ExpireAt: time.Now().Add(time.Hour)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AddDwell(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
}

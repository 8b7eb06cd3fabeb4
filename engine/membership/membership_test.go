package membership

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustNew(t *testing.T, cfg Config) *Membership {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOwnerSpreadsAndMovesLittle(t *testing.T) {
	const n = 1024
	members := []string{"r0", "r1", "r2"}
	count := map[string]int{}
	for p := range n {
		count[Owner(members, p)]++
	}
	for _, m := range members {
		// n/3 = 341; a uniform hash stays well within ±20 %.
		if c := count[m]; c < n/3*8/10 || c > n/3*12/10 {
			t.Errorf("member %s owns %d of %d partitions, want about %d", m, c, n, n/3)
		}
	}
	// A member leaves: only its partitions move.
	left := []string{"r0", "r2"}
	for p := range n {
		before, after := Owner(members, p), Owner(left, p)
		if before != "r1" && before != after {
			t.Fatalf("partition %d moved from %s to %s when r1 left", p, before, after)
		}
	}
	// A member joins: partitions move only to it.
	joined := []string{"r0", "r1", "r2", "r3"}
	moved := 0
	for p := range n {
		before, after := Owner(members, p), Owner(joined, p)
		if before != after {
			if after != "r3" {
				t.Fatalf("partition %d moved from %s to %s when r3 joined", p, before, after)
			}
			moved++
		}
	}
	if moved < n/4*8/10 || moved > n/4*12/10 {
		t.Errorf("%d partitions moved to the new member, want about %d", moved, n/4)
	}
	// The owned sets partition 0..n-1.
	var all []int
	for _, m := range members {
		all = append(all, Owned(members, m, n)...)
	}
	slices.Sort(all)
	for i, p := range all {
		if p != i {
			t.Fatalf("owned sets do not partition 0..%d: %v", n-1, all)
		}
	}
	if Owner(nil, 0) != "" {
		t.Error("Owner of no members is not empty")
	}
}

func TestLeases(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	store := storagetest.NewMem(clk.now)
	cfg := Config{Maps: store, TTL: 4 * time.Second, Interval: time.Second, Now: clk.now}
	ca, cb := cfg, cfg
	ca.Replica, cb.Replica = "a", "b"
	a, b := mustNew(t, ca), mustNew(t, cb)
	ctx := context.Background()
	renew := func(m *Membership) []string {
		t.Helper()
		got, err := m.renew(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	renew(a)
	if got := renew(b); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("b sees %v, want [a b]", got)
	}
	clk.add(3 * time.Second) // within b's lease
	if got := renew(a); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a sees %v within b's lease, want [a b]", got)
	}
	clk.add(2 * time.Second) // b's lease ran out
	if got := renew(a); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("a sees %v after b's lease ran out, want [a]", got)
	}
	if got := renew(b); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("b renewed: sees %v, want [a b]", got)
	}
	b.leave()
	if got := renew(a); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("a sees %v after b left, want [a]", got)
	}
	// A long-dead lease is deleted.
	cc := cfg
	cc.Replica = "c"
	renew(mustNew(t, cc))
	clk.add(gcAfter*cfg.TTL + 5*time.Second)
	renew(a)
	got, err := store.Fields(ctx, cfg.Defaults().Key, []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("lease of c still stored %v after %d TTLs", got, gcAfter)
	}
}

// TestAssign runs two replicas' Assign loops on one store: once each has
// seen the other their sets split the partitions, and when one stops the
// other owns them all.
func TestAssign(t *testing.T) {
	store := storagetest.NewMem(nil)
	cfg := Config{Maps: store, TTL: 400 * time.Millisecond, Interval: 50 * time.Millisecond}
	ca, cb := cfg, cfg
	ca.Replica, cb.Replica = "a", "b"
	a, b := mustNew(t, ca), mustNew(t, cb)
	const n = 16
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bctx, bcancel := context.WithCancel(ctx)
	sa, sb := a.Assign(ctx, n), b.Assign(bctx, n)
	// wait reads sets from ch until one satisfies ok.
	wait := func(name string, ch <-chan []int, ok func([]int) bool) []int {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case s, open := <-ch:
				if !open {
					t.Fatalf("%s: channel closed", name)
				}
				if ok(s) {
					return s
				}
			case <-timeout:
				t.Fatalf("%s: no satisfying assignment in 20 s", name)
			}
		}
	}
	notAll := func(s []int) bool { return len(s) < n }
	ga := wait("a", sa, notAll)
	gb := wait("b", sb, notAll)
	all := append(slices.Clone(ga), gb...)
	slices.Sort(all)
	if fmt.Sprint(all) != fmt.Sprint(Owned([]string{"x"}, "x", n)) {
		t.Fatalf("a owns %v and b %v: not a partition of 0..%d", ga, gb, n-1)
	}
	bcancel()
	for range sb { // closed once b's lease is deleted
	}
	wait("a", sa, func(s []int) bool { return len(s) == n })
}

package membership

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/engine/storage"
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

func TestAssignmentBalancesAndMovesLittle(t *testing.T) {
	for _, n := range []int{16, 64, 1024} {
		for size := 1; size <= 6; size++ {
			var members []string
			for i := range size {
				members = append(members, fmt.Sprintf("r%d", i))
			}
			owner := Assignment(members, n)
			count := map[string]int{}
			for p, m := range owner {
				if m == "" {
					t.Fatalf("n %d, %d members: partition %d has no owner", n, size, p)
				}
				count[m]++
			}
			for _, m := range members {
				if c := count[m]; c != n/size && c != (n+size-1)/size {
					t.Errorf("n %d, %d members: %s owns %d partitions, want %d or %d", n, size, m, c, n/size, (n+size-1)/size)
				}
			}
			if size < 2 {
				continue
			}
			// A member leaves: its partitions move, and few others.
			left := slices.Delete(slices.Clone(members), 1, 2)
			after := Assignment(left, n)
			others := 0
			for p := range n {
				if owner[p] != members[1] && owner[p] != after[p] {
					others++
				}
			}
			// A member joins: it takes its share, and few others move.
			joined := append(slices.Clone(members), "new")
			grown := Assignment(joined, n)
			besides := 0
			for p := range n {
				if owner[p] != grown[p] && grown[p] != "new" {
					besides++
				}
			}
			if others > n/8+1 || besides > n/8+1 {
				t.Errorf("n %d, %d members: %d partitions of staying members moved when one left, %d moved between old members when one joined; want at most %d",
					n, size, others, besides, n/8+1)
			}
		}
	}
	if got := Assignment(nil, 4); !slices.Equal(got, []string{"", "", "", ""}) {
		t.Errorf("no members: %q", got)
	}
	if a, b := Assignment([]string{"r1", "r0", "r1"}, 16), Assignment([]string{"r0", "r1"}, 16); !slices.Equal(a, b) {
		t.Errorf("order or duplicates of the members changed the assignment: %v vs %v", a, b)
	}
	// The owned sets partition 0..n-1.
	members := []string{"r0", "r1", "r2"}
	var all []int
	for _, m := range members {
		all = append(all, Owned(members, m, 1024)...)
	}
	slices.Sort(all)
	for i, p := range all {
		if p != i {
			t.Fatalf("owned sets do not partition 0..1023: %v", all)
		}
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
		got, err := m.renew(ctx, 16)
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

// TestCheckRefusesAnotherPartitionCount: a replica that would consume a
// number of partitions other than the live replicas' is refused, naming
// them; once they are gone (stopped, or their leases ran out) it may
// start with its own number, and leases of an earlier release (no count)
// are not held against it.
func TestCheckRefusesAnotherPartitionCount(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	store := storagetest.NewMem(clk.now)
	cfg := Config{Maps: store, TTL: 4 * time.Second, Interval: time.Second, Now: clk.now}
	ctx := context.Background()
	replica := func(name string) *Membership {
		c := cfg
		c.Replica = name
		return mustNew(t, c)
	}
	a, b, c := replica("a"), replica("b"), replica("c")
	if err := a.Check(ctx, 16); err != nil {
		t.Fatalf("first replica refused: %v", err)
	}
	for _, m := range []*Membership{a, b} {
		if _, err := m.renew(ctx, 16); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Check(ctx, 16); err != nil {
		t.Fatalf("a replica with the same count refused: %v", err)
	}
	err := c.Check(ctx, 32)
	if err == nil {
		t.Fatal("a replica with 32 partitions accepted beside two with 16")
	}
	for _, want := range []string{`replica "a" consumes 16 partitions`, `replica "b" consumes 16 partitions`, "started with 32"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	a.leave()
	clk.add(5 * time.Second) // b's lease runs out
	if err := c.Check(ctx, 32); err != nil {
		t.Fatalf("refused after the others stopped: %v", err)
	}
	var old storage.Txn // a lease as an earlier release wrote it
	old.Set(cfg.Defaults().Key, "old", strconv.FormatInt(clk.now().Add(time.Minute).UnixMilli(), 10))
	if err := store.Apply(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, 32); err != nil {
		t.Fatalf("refused because of a lease without a count: %v", err)
	}
	if got, err := c.renew(ctx, 32); err != nil || !slices.Equal(got, []string{"c", "old"}) {
		t.Fatalf("members %v (%v), want [c old]: a lease of an earlier release is a member", got, err)
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
	reg := prometheus.NewRegistry()
	ca.Registerer = reg
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
	if live, owned := gauge(t, reg, "kairos_replicas_live"), gauge(t, reg, "kairos_partitions_owned"); live != 2 || owned != float64(len(ga)) {
		t.Errorf("a's gauges: %v live replicas, %v partitions owned; want 2 and %d", live, owned, len(ga))
	}
	bcancel()
	for range sb { // closed once b's lease is deleted
	}
	wait("a", sa, func(s []int) bool { return len(s) == n })
}

// gauge returns the value of the gauge name gathered from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("gauge %s not gathered", name)
	return 0
}

package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, scanned, floor int64
		base, want           int
	}{
		{live: 10 * mb, scanned: 10 * mb, floor: 64 * mb, base: 100, want: 540}, // goal 64 MB
		{live: 10 * mb, scanned: 20 * mb, floor: 64 * mb, base: 100, want: 270}, // stacks and globals count too
		{live: 32 * mb, scanned: 32 * mb, floor: 64 * mb, base: 100, want: 100}, // 2 × live = floor
		{live: 200 * mb, scanned: 200 * mb, floor: 64 * mb, base: 100, want: 100},
		{live: 10 * mb, scanned: 10 * mb, floor: 64 * mb, base: 800, want: 800}, // GOGC already beyond the floor
		{live: 0, scanned: 0, floor: 64 * mb, base: 100, want: 100},
		{live: 1, scanned: 1, floor: 1 << 62, base: 100, want: 1<<31 - 1},
	} {
		if got := Percent(c.live, c.scanned, c.floor, c.base); got != c.want {
			t.Errorf("Percent(live %d, scanned %d, floor %d, base %d) = %d, want %d", c.live, c.scanned, c.floor, c.base, got, c.want)
		}
	}
}

// allocate allocates n bytes in 4 KiB objects that die at once, and
// returns how many collections ran meanwhile.
func allocate(n int) uint32 {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	before := s.NumGC
	for range n / 4096 {
		sink = make([]byte, 4096)
	}
	runtime.ReadMemStats(&s)
	return s.NumGC - before
}

var sink []byte

// TestFloorSpacesCollections allocates the same 512 MiB of short-lived
// garbage over a small live heap with and without a floor of 256 MiB:
// without it the collector runs every few MiB, with it about twice.
func TestFloorSpacesCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	Set(0)
	runtime.GC()
	without := allocate(512 << 20)
	Set(256 << 20)
	runtime.GC() // the first collection with the floor sets the percentage
	runtime.GC()
	with := allocate(512 << 20)
	Set(0)
	t.Logf("collections while allocating 512 MiB: %d without a floor, %d with a floor of 256 MiB", without, with)
	if without < 20 {
		t.Fatalf("only %d collections without a floor: the test's live heap is not small", without)
	}
	if with < 1 || with > 4 {
		t.Errorf("%d collections with a floor of 256 MiB, want 1 to 4 (one per 256 MiB allocated)", with)
	}
}

// TestFloorLeavesCollectorOff checks that a floor does not turn on a
// collector someone turned off (the embedded store's load does).
func TestFloorLeavesCollectorOff(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	Set(256 << 20)
	defer Set(0)
	debug.SetGCPercent(-1)
	runtime.GC()
	runtime.GC()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("GC percentage %d after collections with the collector off, want -1 (off)", p)
	}
}

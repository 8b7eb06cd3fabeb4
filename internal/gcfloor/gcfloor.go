// Package gcfloor keeps Go's garbage collector from running too often on
// a small heap.
//
// With GOGC=100 the collector runs whenever the heap has grown by as much
// as was live after the previous collection. A server whose live heap is
// small (a few tenants loaded, a small catalog) but which allocates fast
// (a flood of event batches) thus collects several times a second, and
// every request that allocates during a collection's mark phase helps
// with the marking: on 2 cores, a noisy tenant's permitted events raised
// a quiet tenant's p99 from 1.1–1.7 ms to 3.2–4.3 ms, and 2.3–2.8 ms with
// a floor of 256 MiB (README, "A noisy neighbour").
//
// A floor sets the heap goal to at least that many bytes: after each
// collection the GC percentage is raised so that the next one starts
// only when the heap reaches max(the goal GOGC gives, floor). A heap
// already above the floor is collected as GOGC says, so a large
// process's resident memory does not grow. GOMEMLIMIT still applies on
// top of the floor, and GOGC=off is left alone.
package gcfloor

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
)

var (
	floor   atomic.Int64 // bytes; 0: off
	base    = 100        // GOGC, read once
	setOnce sync.Once
	// last is the percentage the tuner set last (0: none yet).
	last atomic.Int64
)

// Set sets the process's heap floor to minHeap bytes (0 turns it off and
// gives GOGC back). It takes effect at the next collection and lasts
// until changed; the process has one floor, the last one set.
func Set(minHeap int64) {
	setOnce.Do(start)
	floor.Store(max(0, minHeap))
	if minHeap <= 0 && last.Load() != 0 {
		apply(base)
	}
}

// start reads GOGC and arms the tuner.
func start() {
	switch v := os.Getenv("GOGC"); v {
	case "":
	case "off":
		base = -1
	default:
		if n, err := strconv.Atoi(v); err == nil {
			base = n
		}
	}
	if base < 0 {
		return // the collector is off: nothing to tune
	}
	arm()
}

// sentinel is an object left unreachable at once: its finalizer runs
// after each collection and re-arms a new one.
type sentinel struct {
	_ *int
	_ [16]byte
}

// arm registers the next collection's hook.
func arm() {
	runtime.SetFinalizer(new(sentinel), func(*sentinel) {
		tune()
		arm()
	})
}

// tune sets the GC percentage for the heap live after the collection
// that just ended.
func tune() {
	f := floor.Load()
	if f <= 0 {
		return
	}
	live, goal := heapGoal()
	cur := int(last.Load())
	if cur == 0 {
		cur = base
	}
	apply(Percent(live, goalBase(live, goal, cur), f, base))
}

// apply sets the GC percentage p, unless someone else turned the
// collector off meanwhile (a load that runs without it): then it stays
// off.
func apply(p int) {
	if prev := debug.SetGCPercent(p); prev < 0 {
		debug.SetGCPercent(prev)
		return
	}
	last.Store(int64(p))
}

// Percent returns the GC percentage that makes the heap goal after a
// collection that left live bytes max(goal at base, floor), where the
// collector's goal at percentage p is live + scanned × p/100 (scanned:
// the live heap, stacks and globals, as goalBase finds it).
func Percent(live, scanned, floor int64, base int) int {
	if scanned <= 0 || floor <= live+scanned*int64(base)/100 {
		return base
	}
	p := float64(floor-live) * 100 / float64(scanned)
	return int(min(p, math.MaxInt32))
}

// goalBase returns what the collector multiplies its GC percentage by,
// found from the goal it set at percentage cur: goal = live + base ×
// cur/100. (The runtime counts the heap, its stacks and its globals,
// each its own way; the ratio is what it does.)
func goalBase(live, goal int64, cur int) int64 {
	if cur <= 0 || goal <= live {
		return live
	}
	return (goal - live) * 100 / int64(cur)
}

// heapGoal returns the bytes of heap objects the last collection marked
// live and the heap size at which the next collection starts.
func heapGoal() (live, goal int64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0, 0
	}
	return int64(s[0].Value.Uint64()), int64(s[1].Value.Uint64())
}

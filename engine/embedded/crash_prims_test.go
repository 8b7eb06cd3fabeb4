package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
)

// primsCrashDirEnv, when set, makes TestPrimsCrashChild the child process
// of TestPrimsCrash: it writes the primitives into that directory until
// killed.
const primsCrashDirEnv = "KAIROS_EMBEDDED_PRIMS_CRASH_DIR"

// TestPrimsCrashChild is the child of TestPrimsCrash (skipped
// otherwise). Each worker w loops over n: one transaction incrementing
// the field w of "ctr" and the field n of "ctr:w" (both or neither),
// a document "w-n" and an append of n to the log "log:w"; it reports
// "ok <w> <n> <seq>" after the three are acknowledged, until killed.
func TestPrimsCrashChild(t *testing.T) {
	dir := os.Getenv(primsCrashDirEnv)
	if dir == "" {
		t.Skip("child process of TestPrimsCrash only")
	}
	start, _ := strconv.Atoi(os.Getenv(primsCrashDirEnv + "_START"))
	s, err := Open(dir, Config{CompactBytes: 32 << 10})
	if err != nil {
		fmt.Printf("open-error %v\n", err)
		os.Exit(3)
	}
	ctx := context.Background()
	var out sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second) // never outlive a failed parent for long
	for w := range crashWorkers {
		wg.Go(func() {
			for n := start; time.Now().Before(deadline); n++ {
				var tx storage.Txn
				tx.Incr("ctr", strconv.Itoa(w), 1)
				tx.Incr("ctr:"+strconv.Itoa(w), "n", 1)
				tx.Set("last", strconv.Itoa(w), strconv.Itoa(n))
				err := s.Apply(ctx, tx)
				if err == nil {
					err = s.PutDoc(ctx, "docs", fmt.Sprintf("%d-%d", w, n), []byte(strconv.Itoa(n)), storage.Create)
				}
				var seq uint64
				if err == nil {
					seq, err = s.Append(ctx, "log:"+strconv.Itoa(w), 0, []byte(strconv.Itoa(n)), 1<<20, 0)
				}
				if err != nil {
					fmt.Printf("error %v\n", err)
					os.Exit(4)
				}
				out.Lock()
				fmt.Printf("ok %d %d %d\n", w, n, seq)
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// TestPrimsCrash kills (SIGKILL) a child process in the middle of its
// writes of the primitives, three times over the same directory, and
// checks after each crash that the store opens and holds every write the
// child acknowledged, with each transaction applied whole or not at all.
func TestPrimsCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(2026, 11))
	acked := map[[2]int]uint64{} // (worker, n) -> seq of its log entry
	next := 0
	for round := range 3 {
		cmd := exec.Command(exe, "-test.run=^TestPrimsCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), primsCrashDirEnv+"="+dir, fmt.Sprintf("%s_START=%d", primsCrashDirEnv, next))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 100 + r.IntN(200)
		got, err := readAcksUntilKill(t, round, cmd, stdout, killAfter, func(w, n int, v string) error {
			seq, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return err
			}
			acked[[2]int{w, n}] = seq
			next = max(next, n+1)
			return nil
		})
		if got < killAfter {
			t.Fatalf("round %d: child ended after %d writes (%v), before it was killed", round, got, err)
		}
		t.Logf("round %d: killed after %d acknowledged writes", round, killAfter)
		next += 10 // writes in flight at the kill may be on disk: never reuse their numbers
		checkPrimsCrashDir(t, dir, acked)
	}
}

func checkPrimsCrashDir(t *testing.T, dir string, acked map[[2]int]uint64) {
	t.Helper()
	s, err := Open(dir, Config{})
	if err != nil {
		t.Fatalf("Open after the crash: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	ms, err := s.Maps(ctx, []string{"ctr", "ctr:0", "ctr:1", "last"})
	must(t, err)
	for w := range crashWorkers {
		ackedN := 0
		for k := range acked {
			if k[0] == w {
				ackedN++
			}
		}
		total, _ := strconv.Atoi(ms[0][strconv.Itoa(w)])
		own, _ := strconv.Atoi(ms[1+w]["n"])
		if total != own {
			t.Fatalf("worker %d: a transaction was applied in part: ctr %d, ctr:%d %d", w, total, w, own)
		}
		if total < ackedN {
			t.Fatalf("worker %d: counter %d < %d acknowledged transactions", w, total, ackedN)
		}
		es, err := s.Entries(ctx, "log:"+strconv.Itoa(w), 0, 0)
		must(t, err)
		bySeq := map[uint64]string{}
		for i, e := range es {
			if i > 0 && e.Seq != es[i-1].Seq+1 {
				t.Fatalf("worker %d: log seqs %d then %d", w, es[i-1].Seq, e.Seq)
			}
			bySeq[e.Seq] = string(e.Data)
		}
		for k, seq := range acked {
			if k[0] != w {
				continue
			}
			if bySeq[seq] != strconv.Itoa(k[1]) {
				t.Fatalf("worker %d: acknowledged entry %d (seq %d) reads %q", w, k[1], seq, bySeq[seq])
			}
			if _, err := s.Doc(ctx, "docs", fmt.Sprintf("%d-%d", w, k[1])); err != nil {
				t.Fatalf("acknowledged document %d-%d: %v", w, k[1], err)
			}
		}
	}
}

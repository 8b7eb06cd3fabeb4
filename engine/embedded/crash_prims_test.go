package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

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
	ctx := context.Background()
	runCrashChild(t, primsCrashDirEnv, 32<<10, func(s *Store, w, n int) (string, error) {
		var tx storage.Txn
		tx.Incr("ctr", strconv.Itoa(w), 1)
		tx.Incr("ctr:"+strconv.Itoa(w), "n", 1)
		tx.Set("last", strconv.Itoa(w), strconv.Itoa(n))
		if err := s.Apply(ctx, tx); err != nil {
			return "", err
		}
		if err := s.PutDoc(ctx, "docs", fmt.Sprintf("%d-%d", w, n), []byte(strconv.Itoa(n)), storage.Create); err != nil {
			return "", err
		}
		seq, err := s.Append(ctx, "log:"+strconv.Itoa(w), 0, []byte(strconv.Itoa(n)), 1<<20, 0)
		return strconv.FormatUint(seq, 10), err
	})
}

// TestPrimsCrash kills (SIGKILL) a child process in the middle of its
// writes of the primitives, three times over the same directory, and
// checks after each crash that the store opens and holds every write the
// child acknowledged, with each transaction applied whole or not at all.
func TestPrimsCrash(t *testing.T) {
	acked := map[[2]int]uint64{} // (worker, n) -> seq of its log entry
	crashRounds(t, "TestPrimsCrashChild", primsCrashDirEnv, rand.New(rand.NewPCG(2026, 11)), func(w, n int, v string) error {
		seq, err := strconv.ParseUint(v, 10, 64)
		acked[[2]int{w, n}] = seq
		return err
	}, func(s *Store) { checkPrimsCrashDir(t, s, acked) })
}

func checkPrimsCrashDir(t *testing.T, s *Store, acked map[[2]int]uint64) {
	t.Helper()
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

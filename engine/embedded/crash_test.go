package embedded

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storetest"
)

// crashDirEnv, when set, makes TestCrashChild the child process of
// TestCrash: it commits into that directory until killed.
const crashDirEnv = "KAIROS_EMBEDDED_CRASH_DIR"

const (
	crashWorkers   = 2
	crashBatchSize = 8
)

func crashIDs(w, n int) []string {
	ids := make([]string, crashBatchSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("w%d-n%d-e%d", w, n, i)
	}
	return ids
}

func crashVisitor(w, n int) string { return fmt.Sprintf("w%d-v%d", w, n%3) }

func crashCommit(w, n int) engine.Commit {
	ids := crashIDs(w, n)
	evs := make([]engine.HistoryEvent, len(ids))
	for i, id := range ids {
		evs[i] = engine.HistoryEvent{ID: id, Type: "view", Item: fmt.Sprintf("item-%d", n%50), Weight: 1, Time: time.Unix(int64(n), 0).UTC()}
	}
	return engine.Commit{Events: storetest.MarksOf(crashVisitor(w, n), ids...), Visitors: []engine.VisitorUpdate{
		{ID: crashVisitor(w, n), Append: evs, Factors: []float32{float32(n), 1, 2, 3}},
	}}
}

// TestCrashChild is the child of TestCrash (skipped otherwise). Each of
// its workers commits batches with the default, fsync-always policy and
// reports "ok <worker> <n> <row>" on stdout after each acknowledged
// batch n (and the row its ItemRows call returned), until it is killed.
func TestCrashChild(t *testing.T) {
	runCrashChild(t, crashDirEnv, 64<<10, func(s *Store, w, n int) (string, error) {
		rows, err := s.ItemRows(context.Background(), []string{fmt.Sprintf("w%d-item-%d", w, n)})
		if err != nil {
			return "", err
		}
		if err := s.Commit(context.Background(), crashCommit(w, n)); err != nil {
			return "", err
		}
		return strconv.Itoa(int(rows[0])), nil
	})
}

// TestCrash kills (SIGKILL) a child process in the middle of its commits,
// three times over the same directory, and checks after each crash that
// the store opens cleanly and holds every batch the child acknowledged.
func TestCrash(t *testing.T) {
	acked := map[[2]int]int32{} // (worker, n) -> row of its item
	crashRounds(t, "TestCrashChild", crashDirEnv, rand.New(rand.NewPCG(2025, 1)), func(w, n int, v string) error {
		row, err := strconv.ParseInt(v, 10, 32)
		acked[[2]int{w, n}] = int32(row)
		return err
	}, func(s *Store) { checkCrashDir(t, s, acked) })
}

// runCrashChild is the body of a crash test's child process, run when
// the environment variable env names a directory (the test is skipped
// otherwise): it opens a Store there (compacting past compactBytes) and
// has each of crashWorkers workers call step for n = 0, 1, … (from
// env_START) until it is killed, printing "ok <worker> <n> <value>" once
// step has returned value, or "error …" and exiting when it fails.
func runCrashChild(t *testing.T, env string, compactBytes int64, step func(s *Store, w, n int) (string, error)) {
	dir := os.Getenv(env)
	if dir == "" {
		t.Skip("child process of a crash test only")
	}
	start, _ := strconv.Atoi(os.Getenv(env + "_START"))
	s, err := Open(dir, Config{CompactBytes: compactBytes})
	if err != nil {
		fmt.Printf("open-error %v\n", err)
		os.Exit(3)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second) // never outlive a failed parent for long
	for w := range crashWorkers {
		wg.Go(func() {
			for n := start; time.Now().Before(deadline); n++ {
				v, err := step(s, w, n)
				if err != nil {
					fmt.Printf("error %v\n", err)
					os.Exit(4)
				}
				out.Lock()
				fmt.Printf("ok %d %d %s\n", w, n, v)
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// crashRounds runs the crash test child (a test name) three times over
// one directory, passing it the directory in env, and kills it (SIGKILL)
// after a random number of acknowledged steps, each handed to ack; after
// each kill check inspects the store reopened on the directory. The n the child starts at goes
// past every n acknowledged or in flight before.
func crashRounds(t *testing.T, child, env string, r *rand.Rand, ack func(w, n int, v string) error, check func(s *Store)) {
	t.Helper()
	if testing.Short() {
		t.Skip("short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	next := 0
	for round := range 3 {
		cmd := exec.Command(exe, "-test.run=^"+child+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), env+"="+dir, fmt.Sprintf("%s_START=%d", env, next))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 100 + r.IntN(200) // acknowledged steps before the kill
		got, err := readAcksUntilKill(t, round, cmd, stdout, killAfter, func(w, n int, v string) error {
			next = max(next, n+1)
			return ack(w, n, v)
		})
		if got < killAfter {
			t.Fatalf("round %d: child ended after %d steps (%v), before it was killed", round, got, err)
		}
		t.Logf("round %d: killed after %d acknowledged steps (%d lines read in all)", round, killAfter, got)
		next += 10 // steps in flight at the kill may be on disk: never reuse their numbers
		s, err := Open(dir, Config{})
		if err != nil {
			t.Fatalf("round %d: Open after the crash: %v", round, err)
		}
		func() {
			defer s.Close()
			check(s)
		}()
	}
}

func checkCrashDir(t *testing.T, s *Store, acked map[[2]int]int32) {
	t.Helper()
	ctx := t.Context()
	var marks []engine.EventRef
	for k := range acked {
		marks = append(marks, storetest.MarksOf(crashVisitor(k[0], k[1]), crashIDs(k[0], k[1])...)...)
	}
	seen, err := s.Seen(ctx, marks)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range seen {
		if !b {
			t.Fatalf("acknowledged event %s of %s is not seen after the crash", marks[i].ID, marks[i].Visitor)
		}
	}
	rowIDs, err := s.RowIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, row := range acked {
		id := fmt.Sprintf("w%d-item-%d", k[0], k[1])
		if int(row) >= len(rowIDs) || rowIDs[row] != id {
			t.Fatalf("acknowledged row %d of %s lost (%d rows)", row, id, len(rowIDs))
		}
	}
	// Each visitor's history ends with its last acknowledged batch or a
	// later one (in flight at the kill), whole, with the factors of its
	// last batch.
	for w := range crashWorkers {
		for v := range 3 {
			last := -1
			for k := range acked {
				if k[0] == w && k[1]%3 == v {
					last = max(last, k[1])
				}
			}
			if last < 0 {
				continue
			}
			vs, err := s.Visitors(ctx, []string{crashVisitor(w, v)})
			if err != nil {
				t.Fatal(err)
			}
			h := vs[0].History
			if len(h) == 0 || len(h) < DefaultHistoryLimit && len(h)%crashBatchSize != 0 {
				t.Fatalf("visitor %s: history of %d events is not whole batches", vs[0].ID, len(h))
			}
			var w2, n, e int
			fmt.Sscanf(h[len(h)-1].ID, "w%d-n%d-e%d", &w2, &n, &e)
			if n < last || e != crashBatchSize-1 || vs[0].Factors[0] != float32(n) {
				t.Fatalf("visitor %s: history ends with %s (factors %v), last acknowledged batch %d", vs[0].ID, h[len(h)-1].ID, vs[0].Factors, last)
			}
		}
	}
}

// readAcksUntilKill reads the crash child's "ok <w> <n> <value>" lines,
// hands each to ack, kills the child after killAfter of them, and returns
// how many it read and the child's exit error. A child reporting an error
// fails the test.
func readAcksUntilKill(t *testing.T, round int, cmd *exec.Cmd, stdout io.Reader, killAfter int, ack func(w, n int, v string) error) (int, error) {
	t.Helper()
	sc := bufio.NewScanner(stdout)
	got := 0
	for sc.Scan() {
		line := sc.Text()
		var w, n int
		var v string
		if _, err := fmt.Sscanf(line, "ok %d %d %s", &w, &n, &v); err != nil {
			if strings.HasPrefix(line, "open-error") || strings.HasPrefix(line, "error") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: child: %s", round, line)
			}
			continue
		}
		if err := ack(w, n, v); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child line %q: %v", round, line, err)
		}
		if got++; got == killAfter {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got, cmd.Wait()
}

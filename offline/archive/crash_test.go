package archive

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a writer process: with
// crashChildEnv set, TestMain runs crashChild instead of the tests.
const (
	crashChildEnv  = "KAIROS_ARCHIVE_CRASH_DIR"
	crashRoundEnv  = "KAIROS_ARCHIVE_CRASH_ROUND"
	crashPolicyEnv = "KAIROS_ARCHIVE_CRASH_POLICY"
	crashBaseEnv   = "KAIROS_ARCHIVE_CRASH_BASE"
)

// crashChild appends batches from several goroutines forever and prints
// the id of every event whose Append returned nil, one per line, after
// the Append returned. Its writes are split in two with a pause between
// (Archive.testWriteGap) so that most kills land inside a record. Its clock runs two archive hours per real second so
// that segments roll over under load. The parent kills it with SIGKILL.
func crashChild() {
	dir := os.Getenv(crashChildEnv)
	round := os.Getenv(crashRoundEnv)
	policy, err := ParseSyncPolicy(os.Getenv(crashPolicyEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	baseMs, _ := strconv.ParseInt(os.Getenv(crashBaseEnv), 10, 64)
	base, start := time.UnixMilli(baseMs).UTC(), time.Now()
	clock := func() time.Time { return base.Add(time.Since(start) * 7200) }
	a, err := Open(context.Background(), Options{Dir: dir, Sync: policy, SyncInterval: 20 * time.Millisecond,
		MaxRecordBytes: 64 << 10, Now: clock})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	a.testWriteGap = time.Millisecond // see testWriteGap
	var mu sync.Mutex
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	for g := range 4 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), uint64(len(round))))
			for n := 0; ; n++ {
				batch := mkBatch(rng, fmt.Sprintf("r%s-g%d-n%d", round, g, n), 1+rng.IntN(100), clock())
				if err := a.Append(context.Background(), batch); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				for _, e := range batch {
					out.WriteString(e.ID)
					out.WriteByte('\n')
				}
				out.Flush() // the parent learns of the ack only now
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashKill9 kills a writer process with SIGKILL in the middle of its
// writes, several times over the same directory, and checks after each
// crash that the archive opens consistent and holds every acknowledged
// event exactly once.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, policy := range []SyncPolicy{SyncInterval, SyncAlways} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			acked := map[string]bool{}
			base := time.Now().UTC()
			var torn int64
			for round := range 4 {
				ids := runCrashRound(t, exe, dir, policy, round, base.Add(time.Duration(round)*24*time.Hour))
				if len(ids) == 0 {
					t.Fatalf("round %d: the writer acknowledged nothing", round)
				}
				for _, id := range ids {
					acked[id] = true
				}
				// Reopen (repairing the torn tail) and check.
				a, err := Open(context.Background(), Options{Dir: dir})
				if err != nil {
					t.Fatalf("round %d: Open after kill -9: %v", round, err)
				}
				seen := map[string]bool{}
				err = a.ScanRecords(context.Background(), Query{}, func(r Record) error {
					if seen[r.Event.ID] {
						return fmt.Errorf("event %s archived twice", r.Event.ID)
					}
					seen[r.Event.ID] = true
					return nil
				})
				if err != nil {
					t.Fatalf("round %d: scan: %v", round, err)
				}
				missing := 0
				for id := range acked {
					if !seen[id] {
						missing++
						if missing < 5 {
							t.Errorf("round %d: acknowledged event %s missing", round, id)
						}
					}
				}
				if missing > 0 {
					t.Fatalf("round %d: %d of %d acknowledged events missing", round, missing, len(acked))
				}
				torn += a.Stats().Truncated
				t.Logf("round %d: %d acknowledged, %d archived, %d torn bytes truncated, %d segments",
					round, len(acked), len(seen), a.Stats().Truncated, len(a.Segments()))
				mustClose(t, a)
				if err := NewReader(dir, nil).Verify(context.Background()); err != nil {
					t.Fatalf("round %d: Verify: %v", round, err)
				}
			}
			t.Logf("%d torn bytes truncated over all rounds", torn)
		})
	}
}

// runCrashRound runs one writer process until it has acknowledged a few
// thousand events, kills it with SIGKILL and returns the acknowledged ids.
func runCrashRound(t *testing.T, exe, dir string, policy SyncPolicy, round int, base time.Time) []string {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		crashChildEnv+"="+dir,
		crashRoundEnv+"="+strconv.Itoa(round),
		crashPolicyEnv+"="+string(policy),
		crashBaseEnv+"="+strconv.FormatInt(base.UnixMilli(), 10))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill at a random time after the first acknowledgement, so the kill
	// lands at a different point of a write each time; the child's clock
	// rolls an hour over about every half second.
	rng := rand.New(rand.NewPCG(uint64(round), 99))
	var ids []string
	br := bufio.NewReader(stdout)
	var killed atomic.Bool
	kill := func() {
		if killed.CompareAndSwap(false, true) {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	timeout := time.AfterFunc(20*time.Second, kill)
	defer timeout.Stop()
	for {
		// Lines printed before the kill are still in the pipe: read them
		// all. Only complete lines count: the kill may cut a print short.
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		ids = append(ids, strings.TrimSuffix(line, "\n"))
		if len(ids) == 1 {
			time.AfterFunc(time.Duration(200+rng.IntN(600))*time.Millisecond, kill)
		}
	}
	err = cmd.Wait()
	if !killed.Load() {
		t.Fatalf("writer exited before the kill: %v\n%s", err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
	return ids
}

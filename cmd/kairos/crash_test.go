package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// startChild runs `kairos serve` in a child process (this test binary, see
// TestMain) against RabbitMQ and Redis in namespace ns.
func startChild(t *testing.T, ns, dataDir string) *exec.Cmd {
	t.Helper()
	args := []string{"serve", "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--data-dir", dataDir,
		"--addr", "127.0.0.1:0", "--secret-key", "sk_test_0123456789abcdef", "--publishable-key", "pk_test_0123456789abcdef",
		"--log-level", "warn", "--prefetch", "64"}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KAIROS_E2E_CHILD=1", "KAIROS_E2E_ARGS="+strings.Join(args, "\t"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestCrashMidStreamAppliesEveryEventOnce kills the engine process with
// SIGKILL several times while confirmed events stream in (so kills land
// between publish, commit and ack), restarts it, and checks that in the end
// every confirmed event is in its visitor's history exactly once.
func TestCrashMidStreamAppliesEveryEventOnce(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	dataDir := t.TempDir()
	ctx := context.Background()
	bcfg, err := toolBusConfig(amqpURL(), ns)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := rabbitmq.Dial(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	const visitors, per = 400, 40
	confirmed := map[string][]string{} // visitor → event ids, confirmed by the broker
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // publish as fast as the broker confirms, in batches of 40 visitors
		defer wg.Done()
		now := time.Now()
		for round := range per {
			for start := 0; start < visitors; start += 40 {
				var batch []signals.Event
				for v := start; v < start+40; v++ {
					batch = append(batch, signals.Event{ID: fmt.Sprintf("v%d-e%d", v, round), Type: signals.TypeView,
						Visitor: fmt.Sprintf("v%d", v), Item: fmt.Sprintf("item%d", (v+round)%50), Time: signals.Timestamp{Time: now}})
				}
				if err := bus.Publish(ctx, batch); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				mu.Lock()
				for _, ev := range batch {
					confirmed[ev.Visitor] = append(confirmed[ev.Visitor], ev.ID)
				}
				mu.Unlock()
			}
		}
	}()
	store, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL(), Prefix: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ids := make([]string, 0, visitors)
	for v := range visitors {
		ids = append(ids, fmt.Sprintf("v%d", v))
	}
	applied := func() int {
		vs, err := store.Visitors(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range vs {
			n += len(v.History)
		}
		return n
	}
	midStream := 0
	for i, after := range []time.Duration{30 * time.Millisecond, 120 * time.Millisecond, 60 * time.Millisecond} {
		// Kill once the child is applying (its start-up takes a while on a
		// loaded machine), a little later each time, so that kills land
		// between publish, commit and ack rather than before consuming.
		before := applied()
		child := startChild(t, ns, dataDir)
		for start := time.Now(); applied() == before && time.Since(start) < 30*time.Second; {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(after)
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		child.Wait()
		mu.Lock()
		sent := 0
		for _, evs := range confirmed {
			sent += len(evs)
		}
		mu.Unlock()
		got := applied()
		if got > 0 && got < sent {
			midStream++
		}
		t.Logf("kill %d after %v: %d of %d confirmed events applied", i+1, after, got, sent)
	}
	wg.Wait()
	if midStream == 0 {
		t.Fatal("no kill landed while events were streaming: the test proves nothing")
	}
	child := startChild(t, ns, dataDir)
	defer func() {
		child.Process.Signal(syscall.SIGTERM)
		child.Wait()
	}()
	var problems []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		vs, err := store.Visitors(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		problems = problems[:0]
		total := 0
		for _, v := range vs {
			seen := map[string]int{}
			for _, h := range v.History {
				seen[h.ID]++
			}
			total += len(v.History)
			for id, n := range seen {
				if n > 1 {
					problems = append(problems, fmt.Sprintf("%s applied %d times", id, n))
				}
			}
			for _, id := range confirmed[v.ID] {
				if seen[id] == 0 {
					problems = append(problems, fmt.Sprintf("%s missing", id))
				}
			}
		}
		if len(problems) == 0 {
			t.Logf("all %d confirmed events applied exactly once after 3 kills", total)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d problems, e.g. %v", len(problems), problems[:min(10, len(problems))])
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Every applied event is in the archive (kill -9 cuts torn records;
	// a redelivered batch may be archived twice, never lost).
	child.Process.Signal(syscall.SIGTERM)
	child.Wait()
	arc := archive.NewReader(filepath.Join(dataDir, "archive"), nil)
	archived := map[string]bool{}
	if err := arc.Scan(ctx, time.Time{}, time.Now().Add(time.Hour), func(ev signals.Event) error {
		archived[ev.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, evs := range confirmed {
		for _, id := range evs {
			if !archived[id] {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d applied events missing from the archive", missing)
	}
	t.Logf("the archive holds all %d events", len(archived))
}

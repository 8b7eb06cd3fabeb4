package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// TestEraseReachesEveryReplicasArchive runs two kairos serve replicas on
// RabbitMQ and Redis without --history-stream, each with its own local
// archive. Replica r0 runs alone first, so its archive holds every event:
// those of two devices linked to user u-1, of visitor v-2 and of visitor
// keep. u-1 is erased through replica r1: r0's archive, read as replay
// reads it, no longer yields the events of u-1 and its devices. r0 stops,
// v-2 is erased through r1 meanwhile, and r0 catches up when it starts
// again. After `kairos archive compact` on r0's stopped data directory,
// its segment files hold no event of the erased ids and every event of
// keep. The erasing replica records each tombstone once (its follower
// finds them already recorded).
func TestEraseReachesEveryReplicasArchive(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	dir0 := t.TempDir()
	arc0 := filepath.Join(dir0, "archive")
	flags := []string{"--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns, "--partitions", "4", "--lease-ttl", "1s"}
	r0flags := append(slices.Clone(flags), "--replica", "r0", "--data-dir", dir0)
	r0 := startServer(t, r0flags...)

	const per = 3
	visitors := []string{"dev-a", "dev-b", "v-2", "keep"}
	var evs []map[string]any
	ts := time.Now().Add(-time.Minute).UnixMilli()
	for i := range per {
		for j, v := range visitors {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("x-%s-%d", v, i), "type": "click", "visitor": v, "item": fmt.Sprintf("sku-%d", i+j), "ts": ts + int64(i)})
		}
	}
	r0.postEvents(t, evs)
	for _, d := range []string{"dev-a", "dev-b"} {
		r0.secretJSON(t, "POST", "/v1/identify?wait=2s", `{"anonymous_id":"`+d+`","user_id":"u-1"}`, http.StatusOK)
	}
	total := uint64(len(evs) + 2) // and the two identify events
	waitFor(t, 20*time.Second, "every event in r0's archive", func() bool { return r0.app.archive.Stats().Events >= total })

	r1 := startServer(t, append(slices.Clone(flags), "--replica", "r1")...)
	r1.erase(t, "u-1")
	erasedU1 := []string{"dev-a", "dev-b", "u-1"}
	waitFor(t, 10*time.Second, "u-1's erasure in r0's archive", func() bool {
		return !slices.ContainsFunc(readArchive(t, arc0), func(e signals.Event) bool { return slices.Contains(erasedU1, e.Visitor) })
	})
	// r1 recorded its own erasure at once; its follower finds it covered.
	waitFor(t, 10*time.Second, "r1's follower past its own erasure", func() bool { return r1.app.erasures.Stats().Covered >= 3 })
	if st := r1.app.erasures.Stats(); st.Recorded != 0 {
		t.Errorf("r1's follower recorded %d tombstones of r1's own erasure again", st.Recorded)
	}

	r0.stop(t)
	r1.erase(t, "v-2") // r0 is down
	r0 = startServer(t, r0flags...)
	waitFor(t, 10*time.Second, "v-2's erasure in r0's archive after its restart", func() bool {
		return !slices.ContainsFunc(readArchive(t, arc0), func(e signals.Event) bool { return e.Visitor == "v-2" })
	})
	keep := 0
	for _, e := range readArchive(t, arc0) {
		if e.Visitor == "keep" {
			keep++
		}
	}
	if keep != per {
		t.Fatalf("r0's archive yields %d events of keep, want %d", keep, per)
	}
	r0.stop(t)

	code, out, errs := runCmd(t, "archive", "compact", "--data-dir", dir0)
	if code != 0 {
		t.Fatalf("archive compact of r0: exit %d: %s", code, errs)
	}
	t.Logf("kairos archive compact (r0): %s", out)
	raw := rawSegments(t, arc0)
	for _, v := range append(erasedU1, "v-2") {
		if strings.Contains(raw, `"`+v+`"`) {
			t.Errorf("r0's segment files still hold events of the erased %q", v)
		}
	}
	if c := strings.Count(raw, `"visitor":"keep"`); c != per {
		t.Errorf("%d events of keep left in r0's files, want %d", c, per)
	}
}

// readArchive reads every event of the archive in dir as replay does
// (erased events skipped), while its server may be appending.
func readArchive(t *testing.T, dir string) []signals.Event {
	t.Helper()
	var out []signals.Event
	if err := archive.NewReader(dir, nil).Scan(context.Background(), time.Time{}, time.Time{}, func(e signals.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

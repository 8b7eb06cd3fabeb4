package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
	"github.com/redis/go-redis/v9"
)

// TestRetrainWhileStoppedIsLoadedAtStart: `kairos retrain --data-dir`
// on a stopped deployment publishes a model, and the next `kairos serve`
// loads it (it did not: only announced models were loaded). The model
// is published slim on the embedded store too.
func TestRetrainWhileStoppedIsLoadedAtStart(t *testing.T) {
	dir := t.TempDir()
	arch := importVisitors(t, filepath.Join(dir, "archive"), 2_000, 400)
	retrainPublished(t, "--data-dir", dir, "--archive-dir", arch, "--redis-url", "")
	srv := startServer(t, "--data-dir", dir)
	waitForPublishedModel(t, srv, 400)
	checkSlimModel(t, srv, 2_000)
}

// TestRetrainPublishesALargeModelToRedis: `kairos retrain --redis-url`
// without a broker publishes a model of 10,000 items (about 6 MB, over
// the 4 MiB up to which the store keeps a blob in one Redis value), and a
// `kairos serve` started on that namespace loads it. Before blobs were
// chunked, a model of some 2M visitors exceeded what one Redis value may
// hold. The model is published slim: its 24,000 visitors only as their
// Gram (a full snapshot held every visitor's row).
func TestRetrainPublishesALargeModelToRedis(t *testing.T) {
	requireServices(t)
	ns := testNamespace(t)
	arch := importVisitors(t, filepath.Join(t.TempDir(), "archive"), 24_000, 10_000)
	retrainPublished(t, "--redis-url", redisURL(), "--namespace", ns, "--archive-dir", arch)
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	manifest, err := rdb.Get(t.Context(), ns+":blob:"+offline.ModelBlob).Result()
	if err != nil || !strings.HasPrefix(manifest, "\x00kairos-chunked-blob\x00") {
		t.Fatalf("the published model's key holds %.60q (%v), want a chunk manifest", manifest, err)
	}
	srv := startServer(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns)
	waitForPublishedModel(t, srv, 10_000)
	checkSlimModel(t, srv, 24_000)
}

// checkSlimModel checks that the model srv's store holds is slim: no
// visitor rows, the Gram of users visitors.
func checkSlimModel(t *testing.T, srv *testServer, users int) {
	t.Helper()
	b, err := srv.app.store.Blob(t.Context(), offline.ModelBlob)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := model.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if k := snap.Meta.Params.Factors; snap.Users != nil || snap.UserIDs != nil || snap.UserCount != users || len(snap.UserGram) != k*k {
		t.Fatalf("published snapshot of %d bytes: user rows %v, %d users in a Gram of %d entries; want slim, %d users",
			len(b), snap.Users != nil, snap.UserCount, len(snap.UserGram), users)
	}
	t.Logf("published model: %d bytes for %d items and %d visitors (k = %d)", len(b), len(snap.ItemIDs), snap.UserCount, snap.Meta.Params.Factors)
}

// importVisitors imports a log of visitors who each view 4 of items
// (a multiple of 10) in groups of 10, yesterday, into the archive at dir.
func importVisitors(t *testing.T, dir string, visitors, items int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("user,item,time\n")
	groups := items / 10
	start := time.Now().Add(-24 * time.Hour).Unix()
	for u := range visitors {
		for j := range 4 {
			fmt.Fprintf(&b, "%d,%d,%d\n", u, (u%groups)*10+(u/groups+j)%10, start+int64(u)+int64(j)*60)
		}
	}
	data := filepath.Join(t.TempDir(), "log.csv")
	if err := os.WriteFile(data, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "archive", "import", "--data", data, "--format", "csv", "--type", "view", "--archive-dir", dir); code != 0 {
		t.Fatalf("archive import: exit %d, %s %s", code, out, errOut)
	}
	return dir
}

// retrainPublished runs `kairos retrain --force` without a broker (the
// test script exports KAIROS_AMQP_URL) with flags and checks that it
// published.
func retrainPublished(t *testing.T, flags ...string) {
	t.Helper()
	code, out, errOut := runCmd(t, append([]string{"retrain", "--force", "--amqp-url", ""}, flags...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res struct {
		Decision string `json:"decision"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); code != 0 || err != nil || res.Decision != "published" {
		t.Fatalf("retrain: exit %d, result %q (%v), stderr %s; want published", code, lines[len(lines)-1], err, errOut)
	}
}

// waitForPublishedModel waits until srv's engine runs the published model
// (of items items).
func waitForPublishedModel(t *testing.T, srv *testServer, items int) {
	t.Helper()
	waitFor(t, 30*time.Second, "the model published while stopped to be loaded", func() bool { return srv.app.engine.ModelVersion() != 0 })
	if n := srv.app.engine.Online().Len(); n < items {
		t.Fatalf("the loaded model has %d items, want the %d published", n, items)
	}
}

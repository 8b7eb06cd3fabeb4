package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/internal/fileperm/filepermtest"
	"github.com/kairoshq/kairos/signals"
)

// checkPrivate fails for every entry under dir that the group or others
// may access.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	modes := filepermtest.Check(t, dir)
	for _, must := range []string{"keys.json", "state", "archive", "archive/segments", "archive/index.json", "archive/tombstones.ndjson"} {
		if _, ok := modes[filepath.Join(dir, must)]; !ok {
			t.Errorf("%s was not created", must)
		}
	}
}

// TestServeDataDirPrivate: kairos serve (embedded, generated keys)
// creates its data directory 0700 and every file 0600 (raw events, the
// store holding the offer-token secret, keys.json); a directory an older
// version left 0755/0644 is made private on the next start; a keys.json
// others may read is refused with the file and the fix named.
func TestServeDataDirPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	dir := filepath.Join(t.TempDir(), "kairos-data")
	serve := func() {
		t.Helper()
		cfg, err := parseServeConfig([]string{"--data-dir", dir, "--amqp-url", "", "--redis-url", "", "--log-level", "error", "--addr", "127.0.0.1:0"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		a, err := newApp(ctx, cfg, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		// newApp created the offer-token secret in the store (promo);
		// archive an event, as the engine does.
		ev := signals.Event{ID: "e1", Type: signals.TypeView, Visitor: "v1", Item: "i1"}
		if err := a.archive.Append(ctx, []signals.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	serve()
	checkPrivate(t, dir)
	st, err := embedded.OpenReadOnly(filepath.Join(dir, "state"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := promo.NewStore(st).PromoSecret(context.Background()); err != nil {
		t.Fatalf("the offer-token secret is not in the private store: %v", err)
	}
	st.Close()

	// What an older version left: everything 0755/0644.
	filepermtest.Loosen(t, dir, func(p string) bool { return strings.HasSuffix(p, "keys.json") })
	serve()
	checkPrivate(t, dir)

	keys := filepath.Join(dir, "keys.json")
	if err := os.Chmod(keys, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, "serve", "--data-dir", dir, "--amqp-url", "", "--redis-url", "", "--addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, keys) || !strings.Contains(errs, "chmod 600 "+keys) {
		t.Fatalf("serve with a world-readable keys.json: exit %d: %s; want a refusal naming the file and the fix", code, errs)
	}
}

// A single site and a multi-tenant server never share a data directory:
// each would read the other's store as its own.
func TestSiteAndTenantsKeepTheirDataDirsApart(t *testing.T) {
	site := t.TempDir()
	if _, _, err := api.LoadOrCreateKeys(site); err != nil { // what a first start without --secret-key does
		t.Fatal(err)
	}
	cfg, err := parseServeConfig([]string{"--admin-key", testAdminKey, "--data-dir", site, "--amqp-url", "", "--redis-url", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newTenantServer(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "single site's data") {
		t.Fatalf("multi-tenant server on a site's data directory: %v, want a refusal naming the site's data", err)
	}
	tenants := startTenants(t) // marks its directory
	tenants.stop(t)
	cfg, err = parseServeConfig([]string{"--data-dir", tenants.cfg.DataDir, "--amqp-url", "", "--redis-url", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newApp(context.Background(), cfg, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "multi-tenant server's data") {
		t.Fatalf("single site on a tenants' data directory: %v, want a refusal naming the tenants' data", err)
	}
}

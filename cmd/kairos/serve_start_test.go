package main

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/api"
)

// TestServeBusyAddress starts a second `kairos serve` on the address of a
// running one: it must fail with the listen error naming the address, not
// with an unrelated engine error.
func TestServeBusyAddress(t *testing.T) {
	first := startServer(t)
	addr := strings.TrimPrefix(first.base, "http://")
	code, _, stderr := runCmd(t, "serve", "--addr", addr, "--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", "",
		"--secret-key", "sk_test_0123456789abcdef", "--publishable-key", "pk_test_0123456789abcdef", "--log-level", "error")
	if code != 1 || !strings.Contains(stderr, "listen tcp "+addr) || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("second serve on %s: exit %d, stderr %q; want 1 and \"listen tcp %s: … address already in use\"", addr, code, stderr, addr)
	}
	if strings.Contains(stderr, "engine") {
		t.Errorf("stderr blames the engine: %q", stderr)
	}
	first.postEvents(t, []map[string]any{{"id": "e1", "type": "view", "visitor": "v1", "item": "i1"}}) // the first still serves
}

var exportLine = regexp.MustCompile(`(?m)^  export PK=(\S+) SK=(\S+)$`)

// TestServeFirstStartPrintsKeys checks that the first start on an empty
// data directory prints the generated pair, with an export line that a
// shell accepts as is, and that later starts print nothing.
func TestServeFirstStartPrintsKeys(t *testing.T) {
	dir := t.TempDir()
	noKeys := []string{"--data-dir", dir, "--amqp-url", "", "--redis-url", "", "--secret-key", "", "--publishable-key", ""}
	first := newAppOutput(t, noKeys)
	stored, created, err := api.LoadOrCreateKeys(dir)
	if err != nil || created {
		t.Fatalf("keys.json after the first start: created %v, %v", created, err)
	}
	for _, want := range []string{
		"Generated API keys (stored in " + filepath.Join(dir, api.KeysFile) + "; shown once):",
		"publishable: " + stored.Publishable, "secret:      " + stored.Secret,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first start printed %q, without %q", first, want)
		}
	}
	m := exportLine.FindStringSubmatch(first)
	if m == nil || m[1] != stored.Publishable || m[2] != stored.Secret {
		t.Fatalf("first start printed %q: want \"  export PK=%s SK=%s\"", first, stored.Publishable, stored.Secret)
	}
	out, err := exec.Command("sh", "-c", strings.TrimSpace(m[0])+` && printf '%s %s' "$PK" "$SK"`).Output()
	if err != nil || string(out) != stored.Publishable+" "+stored.Secret {
		t.Fatalf("the export line in sh: %q, %v", out, err)
	}
	if again := newAppOutput(t, noKeys); again != "" {
		t.Errorf("second start printed %q, want nothing", again)
	}
}

// newAppOutput builds (without running) the app of `kairos serve args` and
// returns what it printed on stdout.
func newAppOutput(t *testing.T, args []string) string {
	t.Helper()
	cfg, err := parseServeConfig(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	a, err := newApp(context.Background(), cfg, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return stdout.String()
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// walkthroughMark precedes every README block of the walk-through.
const walkthroughMark = "<!-- walkthrough -->\n```sh\n"

// TestReadmeWalkthrough runs the README's walk-through as a new user
// would: every block marked <!-- walkthrough -->, in order, in bash,
// against a fresh `kairos serve` (embedded) on the address the README
// uses replaced by the test server's, with PK and SK exported and
// `go run ./cmd/kairos` being this binary. Each block must exit 0, and
// every "# …" line after a command must match a line of the block's
// output ("…" stands for anything): the README shows what users get.
func TestReadmeWalkthrough(t *testing.T) {
	blocks := readmeBlocks(t, walkthroughMark, 10)
	dir := t.TempDir()
	// The defaults a user gets (startServer tunes --blend-below for tests).
	srv := startServer(t, "--data-dir", filepath.Join(dir, "kairos-data"), "--blend-below", "20")
	bin := kairosWrapper(t, dir)
	host := strings.TrimPrefix(srv.base, "http://")
	env := append(os.Environ(), "PK=pk_test_0123456789abcdef", "SK=sk_test_0123456789abcdef")
	for i, b := range blocks {
		script := strings.ReplaceAll(b, "localhost:8080", host)
		script = strings.ReplaceAll(script, "go run ./cmd/kairos", bin)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("block %d failed (%v):\n%s\noutput:\n%s", i, err, b, out)
		}
		for _, want := range expectedLines(b) {
			if !matchesSomeLine(want, out) {
				t.Errorf("block %d: no output line matches the README's\n  # %s\noutput:\n%s", i, want, out)
			}
		}
	}
}

// tenantsMark precedes every README block of the tenants' walk-through.
const tenantsMark = "<!-- walkthrough: tenants -->\n```sh\n"

// TestReadmeTenantsWalkthrough runs the README's tenant examples (the
// blocks marked <!-- walkthrough: tenants -->) in order in one bash, so
// that the keys a block keeps reach the next, against a fresh
// multi-tenant `kairos serve` with the README's KAIROS_ADMIN_KEY set to
// the test server's; every "# …" line must match a line of its block's
// output, as in TestReadmeWalkthrough.
func TestReadmeTenantsWalkthrough(t *testing.T) {
	blocks := readmeBlocks(t, tenantsMark, 5)
	srv := startTenants(t, "--blend-below", "20")
	dir := t.TempDir()
	bin := kairosWrapper(t, dir)
	host := strings.TrimPrefix(srv.base, "http://")
	const split = "@@ end of block @@"
	var script strings.Builder
	script.WriteString("set -e -o pipefail\n")
	for _, b := range blocks {
		b = strings.ReplaceAll(b, "localhost:8080", host)
		fmt.Fprintf(&script, "%s\necho %q\n", strings.ReplaceAll(b, "go run ./cmd/kairos", bin), split)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KAIROS_ADMIN_KEY="+testAdminKey, "KAIROS_ADDR="+host)
	out, err := cmd.CombinedOutput()
	outs := bytes.Split(out, []byte(split+"\n"))
	if err != nil || len(outs) != len(blocks)+1 {
		t.Fatalf("the tenant walk-through stopped in block %d (%v):\n%s", len(outs)-1, err, out)
	}
	for i, b := range blocks {
		for _, want := range expectedLines(b) {
			if !matchesSomeLine(want, outs[i]) {
				t.Errorf("tenant block %d: no output line matches the README's\n  # %s\noutput:\n%s", i, want, outs[i])
			}
		}
	}
}

// readmeBlocks returns the README's shell blocks that follow mark, in
// order, failing t when there are fewer than least (the markers are
// gone); it skips t when bash, curl or jq is missing, except under
// CI=true, where it fails.
func readmeBlocks(t *testing.T, mark string, least int) []string {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed to run the README's walk-through: %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := markedBlocks(string(readme), mark)
	if len(blocks) < least {
		t.Fatalf("the README has %d blocks marked %q: the markers are gone", len(blocks), strings.TrimSuffix(mark, "\n```sh\n"))
	}
	return blocks
}

// markedBlocks returns the shell blocks that follow mark, in order.
func markedBlocks(readme, mark string) []string {
	var out []string
	for {
		i := strings.Index(readme, mark)
		if i < 0 {
			return out
		}
		readme = readme[i+len(mark):]
		j := strings.Index(readme, "```")
		if j < 0 {
			return out
		}
		out = append(out, readme[:j])
		readme = readme[j:]
	}
}

// expectedLines returns the "# …" comment lines of a block that follow a
// command (what the README says the command prints).
func expectedLines(block string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// matchesSomeLine reports whether a line of out matches want, where "…"
// in want stands for any text.
func matchesSomeLine(want string, out []byte) bool {
	parts := strings.Split(want, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
	for _, line := range bytes.Split(out, []byte("\n")) {
		if re.Match(bytes.TrimRight(line, "\r\t ")) { // trailing blanks are invisible in the README
			return true
		}
	}
	return false
}

// kairosWrapper writes a script that runs this test binary as the kairos
// command (see TestMain) and returns its path.
func kairosWrapper(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kairos")
	script := fmt.Sprintf("#!/usr/bin/env bash\nIFS=$'\\t'\nKAIROS_E2E_CHILD=1 KAIROS_E2E_ARGS=\"$*\" exec %q\n", self)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

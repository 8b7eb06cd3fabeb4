package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goTestJSON writes a module with the given files into a temporary
// directory and returns the stream of `go test -json -count=1 <pattern>`
// run on it: real test2json output, not a hand-written imitation.
func goTestJSON(t *testing.T, files map[string]string, pattern string) []byte {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module tj\n\ngo 1.26.0\n"
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", pattern)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("go test: %v\n%s", err, stderr.Bytes())
	}
	return out
}

var sample = map[string]string{
	"pass/pass_test.go": `package pass

import "testing"

func TestOK(t *testing.T)   { t.Log("quiet when passing") }
func TestSkip(t *testing.T) { t.Skip("no service") }
`,
	"sub/sub_test.go": `package sub

import "testing"

func TestFine(t *testing.T) {}
func TestSub(t *testing.T) {
	t.Run("x", func(t *testing.T) {})
	t.Run("y", func(t *testing.T) { t.Error("y broke") })
}
`,
	"panics/panics_test.go": `package panics

import "testing"

func TestPanic(t *testing.T) { var m map[string]int; m["a"] = 1 }
`,
	"exits/exits_test.go": `package exits

import (
	"os"
	"testing"
)

func TestBefore(t *testing.T) {}
func TestExits(t *testing.T) {
	t.Log("about to leave")
	os.Exit(3) // as a fatal runtime error or a signal ends the binary: no --- FAIL line
}
`,
	"nobuild/nobuild_test.go": `package nobuild

import "testing"

func TestBuild(t *testing.T) { undefinedFunc() }
`,
	"notests/notests.go": "package notests\n",
}

func TestFailuresAreShownWithTheirOutput(t *testing.T) {
	stream := goTestJSON(t, sample, "./...")
	var stdout, stderr bytes.Buffer
	summary := filepath.Join(t.TempDir(), "summary.txt")
	if code := run(bytes.NewReader(stream), &stdout, &stderr, summary, 0, time.Now()); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	out := stdout.String()
	for _, want := range []string{
		"ok    tj/pass", "1 passed, 1 skipped",
		"FAIL  tj/sub", "1 passed, 1 failed", "      |     sub_test.go:8: y broke", "--- FAIL: TestSub/y",
		"FAIL  tj/panics", "panic: assignment to entry in nil map",
		"FAIL  tj/exits", "1 passed, 1 did not finish", "--- DID NOT FINISH: TestExits", "about to leave",
		"FAIL  tj/nobuild", "undefined: undefinedFunc",
		"packages: 1 passed, 4 failed (1 without test files)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"=== RUN", "quiet when passing", "tj/notests"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, out)
		}
	}
	const last = "tests: 3 passed, 2 failed, 1 skipped\n"
	if !strings.HasSuffix(out, last) {
		t.Errorf("output does not end with %q:\n%s", last, out)
	}
	if b, err := os.ReadFile(summary); err != nil || !strings.HasSuffix(string(b), last) {
		t.Errorf("summary file: %q, %v", b, err)
	}
}

func TestAllPassingExitsZero(t *testing.T) {
	stream := goTestJSON(t, sample, "./pass/...")
	var stdout, stderr bytes.Buffer
	if code := run(bytes.NewReader(stream), &stdout, &stderr, "", 0, time.Now()); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.HasSuffix(stdout.String(), "tests: 1 passed, 0 failed, 1 skipped\n") {
		t.Errorf("output:\n%s", stdout.String())
	}
}

func TestEmptyStreamFails(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(strings.NewReader("go: something went wrong\n"), &stdout, &stderr, "", 0, time.Now()); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"go: something went wrong\n", "packages: none ran"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestHeartbeatNamesRunningPackages uses a hand-made clock: the note
// names the packages whose binary started and has not finished.
func TestHeartbeatNamesRunningPackages(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	r := newReport(&out, func() time.Time { return now })
	r.handle(event{Action: "start", Package: "tj/slow"})
	r.handle(event{Action: "start", Package: "tj/quick"})
	r.printRunning() // the clock has not moved: both are running
	now = now.Add(65 * time.Second)
	r.handle(event{Action: "pass", Package: "tj/quick", Elapsed: 1})
	out.Reset()
	r.printRunning()
	if got, want := out.String(), "[+1m05s] still running: tj/slow (1m05s)\n"; got != want {
		t.Errorf("heartbeat %q, want %q", got, want)
	}
}

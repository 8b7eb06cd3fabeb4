package tracker

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTypesDeclareTheAPI checks that tracker.d.ts declares every method
// of the tracker's API object (window.kairos) and nothing it lacks.
func TestTypesDeclareTheAPI(t *testing.T) {
	src, err := os.ReadFile("tracker.js")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "var api = {")
	if !ok {
		t.Fatal("tracker.js: no var api = {")
	}
	body, _, _ = strings.Cut(body, "\n  };")
	methods := regexp.MustCompile(`(?m)^    (\w+): function`).FindAllStringSubmatch(body, -1)
	if len(methods) < 8 {
		t.Fatalf("found %d methods in tracker.js's api", len(methods))
	}
	_, iface, _ := strings.Cut(string(Types()), "interface Tracker {")
	iface, _, _ = strings.Cut(iface, "\n  }\n")
	declared := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^    (\w+)\(`).FindAllStringSubmatch(iface, -1) {
		declared[m[1]] = true
	}
	for _, m := range methods {
		if !declared[m[1]] {
			t.Errorf("tracker.js's kairos.%s is not declared in tracker.d.ts", m[1])
		}
		delete(declared, m[1])
	}
	for m := range declared {
		t.Errorf("tracker.d.ts declares kairos.%s, which tracker.js lacks", m)
	}
	if !strings.Contains(iface, "readonly version: string;") {
		t.Error("tracker.d.ts does not declare kairos.version")
	}
}

// TestTypesHandler checks how /tracker.d.ts is served.
func TestTypesHandler(t *testing.T) {
	w := httptest.NewRecorder()
	TypesHandler().ServeHTTP(w, httptest.NewRequest("GET", "/tracker.d.ts", nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != TypesContentType || w.Body.String() != string(Types()) ||
		!strings.Contains(w.Header().Get("Cache-Control"), "max-age=300") {
		t.Fatalf("GET: %d %v", w.Code, w.Header())
	}
	etag := w.Header().Get("ETag")
	r := httptest.NewRequest("GET", "/tracker.d.ts", nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	TypesHandler().ServeHTTP(w, r)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Fatalf("If-None-Match %s: %d", etag, w.Code)
	}
	w = httptest.NewRecorder()
	TypesHandler().ServeHTTP(w, httptest.NewRequest("POST", "/tracker.d.ts", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
}

// tsc returns the TypeScript compiler that scripts/tools.sh installs
// from the npm registry into a cache directory. Without npm the test is
// skipped, and fails under CI=true.
func tsc(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("npm not found: scripts/services.sh installs it under CI")
		}
		t.Skip("npm not found: the TypeScript compiler cannot be installed")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "tools.sh"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", script, "tsc").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("scripts/tools.sh tsc: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// TestTypes compiles an app using the tracker with tsc --noEmit
// (strict): it must compile, and testdata/types/bad.ts, whose every line
// misuses the API, must fail on each of those lines.
func TestTypes(t *testing.T) {
	tc := tsc(t)
	dir := filepath.Join("testdata", "types")
	cmd := exec.Command(tc, "-p", "tsconfig.json")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc -p tsconfig.json: %v\n%s", err, out)
	}
	cmd = exec.Command(tc, "--noEmit", "--strict", "--target", "ES2020", "--lib", "ES2020,DOM", "bad.ts")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("bad.ts compiled")
	}
	for _, line := range []string{"(3,", "(4,", "(5,", "(6,", "(7,"} {
		if !strings.Contains(string(out), "bad.ts"+line) {
			t.Errorf("no error on bad.ts line %s\n%s", strings.Trim(line, "(,"), out)
		}
	}
	if n := strings.Count(string(out), "error TS"); n != 5 {
		t.Errorf("%d errors, want 5:\n%s", n, out)
	}
	v, _ := exec.Command(tc, "--version").Output()
	t.Logf("%s: example.ts compiles, bad.ts fails on its 5 lines", strings.TrimSpace(string(v)))
}

package tracker_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/kairoshq/kairos/signals/tracker"
)

// maxGzip is the size budget of the served script.
const maxGzip = 8 << 10

func TestMinifiedIsFresh(t *testing.T) {
	src, err := os.ReadFile("tracker.js")
	if err != nil {
		t.Fatal(err)
	}
	min, err := os.ReadFile("tracker.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(min, tracker.Script()) {
		t.Fatal("Script() differs from tracker.min.js (embed is stale?)")
	}
	m := regexp.MustCompile(`^/\*! Kairos tracker \| source sha256:([0-9a-f]{64}) `).FindSubmatch(min)
	if m == nil {
		t.Fatal("tracker.min.js has no source hash header: run go generate ./signals/tracker")
	}
	sum := sha256.Sum256(src)
	if got, want := string(m[1]), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("tracker.min.js was made from another tracker.js (sha256 %s, source is %s): run go generate ./signals/tracker", got, want)
	}
}

// TestMinifiedReproducible regenerates tracker.min.js with the pinned
// esbuild and compares the bytes. It needs the Go module proxy (or a warm
// module cache) and builds esbuild, so it only runs with
// KAIROS_TRACKER_REGEN_CHECK=1.
func TestMinifiedReproducible(t *testing.T) {
	if os.Getenv("KAIROS_TRACKER_REGEN_CHECK") != "1" {
		t.Skip("set KAIROS_TRACKER_REGEN_CHECK=1 to rebuild tracker.min.js with esbuild and compare")
	}
	out := filepath.Join(t.TempDir(), "tracker.min.js")
	cmd := exec.Command("go", "run", "./internal/minify", "-in", "tracker.js", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("minify: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tracker.Script()) {
		t.Fatal("regenerated tracker.min.js differs from the committed one")
	}
}

func TestScriptGzip(t *testing.T) {
	gz := tracker.ScriptGzip()
	t.Logf("tracker.min.js: %d bytes, %d bytes gzipped (budget %d)", len(tracker.Script()), len(gz), maxGzip)
	if len(gz) > maxGzip {
		t.Errorf("gzipped tracker is %d bytes, over the %d-byte budget", len(gz), maxGzip)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, tracker.Script()) {
		t.Error("ScriptGzip does not decompress to Script")
	}
	if !bytes.Equal(gz, tracker.ScriptGzip()) {
		t.Error("ScriptGzip is not stable")
	}
	sum := sha256.Sum256(tracker.Script())
	if want := `"kt-` + hex.EncodeToString(sum[:8]) + `"`; tracker.ETag() != want {
		t.Errorf("ETag = %s, want %s", tracker.ETag(), want)
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(tracker.Handler())
	defer srv.Close()
	etag := tracker.ETag()
	etagGz := etag[:len(etag)-1] + `-gz"`
	tests := []struct {
		name       string
		method     string
		header     map[string]string
		wantStatus int
		wantBody   []byte // nil: empty
		wantGzip   bool
		wantETag   string
	}{
		{"identity", http.MethodGet, nil, 200, tracker.Script(), false, etag},
		{"gzip", http.MethodGet, map[string]string{"Accept-Encoding": "br, gzip"}, 200, tracker.ScriptGzip(), true, etagGz},
		{"gzip refused", http.MethodGet, map[string]string{"Accept-Encoding": "gzip;q=0, br"}, 200, tracker.Script(), false, etag},
		{"star", http.MethodGet, map[string]string{"Accept-Encoding": "*"}, 200, tracker.ScriptGzip(), true, etagGz},
		{"star but no gzip", http.MethodGet, map[string]string{"Accept-Encoding": "*, gzip;q=0"}, 200, tracker.Script(), false, etag},
		{"head", http.MethodHead, nil, 200, nil, false, etag},
		{"not modified", http.MethodGet, map[string]string{"If-None-Match": etag}, 304, nil, false, etag},
		{"not modified gzip tag", http.MethodGet, map[string]string{"If-None-Match": `"x", W/` + etagGz, "Accept-Encoding": "gzip"}, 304, nil, false, etagGz},
		{"not modified star", http.MethodGet, map[string]string{"If-None-Match": "*"}, 304, nil, false, etag},
		{"old version", http.MethodGet, map[string]string{"If-None-Match": `"kt-0000000000000000"`}, 200, tracker.Script(), false, etag},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+"/tracker.js", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			// A Transport that does not ask for or undo gzip by itself.
			resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body: %d bytes, want %d", len(body), len(tc.wantBody))
			}
			h := resp.Header
			if got := h.Get("ETag"); got != tc.wantETag {
				t.Errorf("ETag %s, want %s", got, tc.wantETag)
			}
			if got := h.Get("Content-Encoding") == "gzip"; got != tc.wantGzip {
				t.Errorf("gzip %v, want %v", got, tc.wantGzip)
			}
			if got := h.Get("Cache-Control"); got != "public, max-age=300" {
				t.Errorf("Cache-Control %q", got)
			}
			if got := h.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary %q", got)
			}
			if tc.wantStatus == 200 { // net/http drops Content-Type from a 304
				if got := h.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
					t.Errorf("Content-Type %q", got)
				}
				n := len(tracker.Script())
				if tc.wantGzip {
					n = len(tracker.ScriptGzip())
				}
				if got := h.Get("Content-Length"); got != strconv.Itoa(n) {
					t.Errorf("Content-Length %s, want %d", got, n)
				}
			}
		})
	}
	t.Run("method not allowed", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/tracker.js", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /tracker.js", tracker.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/tracker.js") // Go's client asks for gzip and undoes it
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	fmt.Println(bytes.Equal(body, tracker.Script()))
	// Output:
	// 200 text/javascript; charset=utf-8 public, max-age=300
	// true
}

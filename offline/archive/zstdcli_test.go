package archive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/klauspost/compress/zstd"
)

// decompressFile decodes a whole segment with the library's stream decoder
// (which, like the CLI, skips the skippable header frames).
func decompressFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(d); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return b.String()
}

// TestZstdCLICompat checks that standard zstd tools read a sealed segment
// as plain NDJSON: the format promise to other tools.
func TestZstdCLICompat(t *testing.T) {
	zstdBin, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd CLI not installed")
	}
	rng := rand.New(rand.NewPCG(31, 32))
	o := testOptions(t, testutil.NewClock(t0))
	a := mustOpen(t, o)
	events := mkBatch(rng, "cli", 500, t0)
	for i := 0; i < len(events); i += 50 {
		mustAppend(t, a, events[i:i+50]) // several records
	}
	mustClose(t, a)

	seg := filepath.Join(o.Dir, segmentDir, segmentName(t0))
	out, err := exec.Command(zstdBin, "-dc", seg).Output()
	if err != nil {
		t.Fatalf("zstd -dc: %v", err)
	}
	want := strings.Join(jsonLines(t, events), "\n") + "\n"
	if string(out) != want {
		t.Fatalf("zstd -dc output differs from the events' JSON (%d vs %d bytes)", len(out), len(want))
	}
	if lib := decompressFile(t, seg); lib != want {
		t.Fatal("library stream decoder output differs")
	}
	if b, err := exec.Command(zstdBin, "-t", seg).CombinedOutput(); err != nil {
		t.Fatalf("zstd -t: %v\n%s", err, b)
	}
	// zstdcat reads a concatenation of segments too.
	if cat, err := exec.LookPath("zstdcat"); err == nil {
		out, err := exec.Command(cat, seg, seg).Output()
		if err != nil || string(out) != want+want {
			t.Fatalf("zstdcat of two segments: %v", err)
		}
	}
}

package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/internal/testutil"
)

// FuzzRecoverSegment damages an active segment arbitrarily (truncation, a
// flipped byte, appended junk) and checks that Open repairs it into a valid
// archive whose events are exactly a prefix of what was written: a torn or
// damaged tail is cut off, never mixed in.
func FuzzRecoverSegment(f *testing.F) {
	rng := rand.New(rand.NewPCG(77, 78))
	clock := testutil.NewClock(t0)
	base := Options{Dir: f.TempDir(), Now: clock.Now, MaxRecordBytes: 4 << 10}
	a := mustOpen(f, base)
	var ids []string
	for i := range 8 {
		b := mkBatch(rng, fmt.Sprintf("b%d", i), 5+rng.IntN(30), t0)
		mustAppend(f, a, b)
		for _, e := range b {
			ids = append(ids, e.ID)
		}
	}
	mustClose(f, a)
	name := segmentName(t0)
	seg, err := os.ReadFile(filepath.Join(base.Dir, segmentDir, name))
	if err != nil {
		f.Fatal(err)
	}

	f.Add(len(seg), -1, byte(0), []byte(nil))
	f.Add(len(seg)/2, -1, byte(0), []byte(nil))
	f.Add(len(seg), 100, byte(1), []byte(nil))
	f.Add(len(seg), len(seg)-3, byte(0x80), []byte("junk"))
	f.Add(3, -1, byte(0), []byte{0x5a, 0x2a, 0x4d, 0x18, 60, 0, 0, 0})
	f.Add(len(seg), -1, byte(0), seg[:headerSize+10])
	f.Fuzz(func(t *testing.T, cut, flip int, xor byte, junk []byte) {
		if cut < 0 || cut > len(seg) || len(junk) > 1<<16 {
			return
		}
		data := slices.Clone(seg[:cut])
		if flip >= 0 && flip < len(data) {
			data[flip] ^= xor
		}
		data = append(data, junk...)

		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, segmentDir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		o := Options{Dir: dir, Now: testutil.NewClock(t0.Add(10 * time.Minute)).Now}
		a, err := Open(context.Background(), o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var got []string
		for _, r := range mustScan(t, a, Query{}) {
			got = append(got, r.Event.ID)
		}
		mustClose(t, a)
		if len(got) > len(ids) || !slices.Equal(got, ids[:len(got)]) {
			t.Fatalf("recovered events are not a prefix of the written ones: %v", got)
		}
		if err := NewReader(dir, nil).Verify(context.Background()); err != nil {
			t.Fatalf("Verify after repair: %v", err)
		}
	})
}

package redisstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore/redistest"
)

// randomBytes returns n reproducible random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunkTTLs returns the PTTL of each chunk of the blob name's current
// manifest (-2: missing, -1: no expiry) and the manifest.
func chunkTTLs(t *testing.T, s *Store, name string) ([]time.Duration, blobManifest) {
	t.Helper()
	ctx := t.Context()
	v, err := s.rdb.Get(ctx, s.blobKey(name)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	m, ok, err := decodeManifest(v)
	if !ok || err != nil {
		t.Fatalf("blob %q is not a manifest (%v): %.40q", name, err, v)
	}
	return manifestTTLs(t, s, name, m), m
}

func manifestTTLs(t *testing.T, s *Store, name string, m blobManifest) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i := range m.Chunks {
		d, err := s.rdb.PTTL(t.Context(), s.chunkKey(name, m.Gen, i)).Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func TestBlobChunks(t *testing.T) {
	// With 1,000-byte chunks a blob of 10,500 bytes is 11 chunks of its
	// own generation under a manifest; replacing it by a blob of 2,500
	// bytes (3 chunks) lets the 11 expire within a minute and keeps the
	// new ones; a small blob replaces that one as one value and lets its
	// chunks expire too; each reads back as written.
	s := mustOpen(t, Config{URL: redistest.URL(t), Prefix: redistest.Prefix(t, redistest.URL(t))})
	s.blobChunk = 1000
	ctx := t.Context()
	first, second, small := randomBytes(10_500, 1), randomBytes(2_500, 2), []byte("small")
	if err := s.PutBlob(ctx, "model/current", first); err != nil {
		t.Fatal(err)
	}
	ttls, m1 := chunkTTLs(t, s, "model/current")
	if m1.Chunks != 11 || m1.Size != len(first) || len(ttls) != 11 {
		t.Fatalf("manifest %+v, chunk TTLs %v; want 11 chunks of 10,500 bytes", m1, ttls)
	}
	for i, d := range ttls {
		if d != -1 {
			t.Fatalf("live chunk %d has TTL %v, want none", i, d)
		}
	}
	readBack(t, s, "model/current", first)

	if err := s.PutBlob(ctx, "model/current", second); err != nil {
		t.Fatal(err)
	}
	ttls, m2 := chunkTTLs(t, s, "model/current")
	if m2.Chunks != 3 || m2.Gen == m1.Gen || ttls[0] != -1 {
		t.Fatalf("second manifest %+v (first %+v), TTLs %v", m2, m1, ttls)
	}
	for i, d := range manifestTTLs(t, s, "model/current", m1) {
		if d <= 0 || d > blobGrace {
			t.Fatalf("replaced chunk %d has TTL %v, want (0, %v]", i, d, blobGrace)
		}
	}
	readBack(t, s, "model/current", second)

	if err := s.PutBlob(ctx, "model/current", small); err != nil {
		t.Fatal(err)
	}
	if v, err := s.rdb.Get(ctx, s.blobKey("model/current")).Bytes(); err != nil || !bytes.Equal(v, small) {
		t.Fatalf("a small blob is stored as %q (%v), want itself", v, err)
	}
	for i, d := range manifestTTLs(t, s, "model/current", m2) {
		if d <= 0 || d > blobGrace {
			t.Fatalf("chunk %d replaced by a small blob has TTL %v", i, d)
		}
	}
	readBack(t, s, "model/current", small)

	// A small blob that begins like a manifest is stored in chunks, so it
	// reads back as itself, not as a manifest.
	tricky := []byte(blobMagic + `{"gen":"x","chunks":1,"size":1,"crc32c":0}`)
	if err := s.PutBlob(ctx, "tricky", tricky); err != nil {
		t.Fatal(err)
	}
	readBack(t, s, "tricky", tricky)
	// A value stored by a build before chunks reads as it is.
	if err := s.rdb.Set(ctx, s.blobKey("legacy"), "plain value", 0).Err(); err != nil {
		t.Fatal(err)
	}
	readBack(t, s, "legacy", []byte("plain value"))
}

func readBack(t *testing.T, s *Store, name string, want []byte) {
	t.Helper()
	got, err := s.Blob(t.Context(), name)
	if err != nil {
		t.Fatalf("Blob(%q): %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Blob(%q): %d bytes, want the %d written", name, len(got), len(want))
	}
}

func TestBlobChunksDamaged(t *testing.T) {
	// A missing chunk, a changed chunk and a broken manifest are errors
	// that name the blob, never ErrNotFound (which would read as "no
	// blob") and never the wrong bytes.
	s := mustOpen(t, Config{URL: redistest.URL(t), Prefix: redistest.Prefix(t, redistest.URL(t))})
	s.blobChunk = 100
	ctx := t.Context()
	data := randomBytes(1_000, 3)
	for _, c := range []struct {
		name, want string
		damage     func(m blobManifest)
	}{
		{"missing", "missing on each of three reads", func(m blobManifest) { s.rdb.Del(ctx, s.chunkKey("missing", m.Gen, 4)) }},
		{"changed", "do not match the manifest", func(m blobManifest) {
			s.rdb.Set(ctx, s.chunkKey("changed", m.Gen, 2), randomBytes(100, 9), 0)
		}},
		{"manifest", "chunked blob manifest", func(blobManifest) {
			s.rdb.Set(ctx, s.blobKey("manifest"), blobMagic+`{"gen":"","chunks":-1}`, 0)
		}},
		{"huge", "chunked blob manifest", func(blobManifest) {
			s.rdb.Set(ctx, s.blobKey("huge"), blobMagic+`{"gen":"g","chunks":1000000000,"size":4000000000000000}`, 0)
		}},
	} {
		if err := s.PutBlob(ctx, c.name, data); err != nil {
			t.Fatal(err)
		}
		_, m := chunkTTLs(t, s, c.name)
		c.damage(m)
		_, err := s.Blob(ctx, c.name)
		if err == nil || errors.Is(err, engine.ErrNotFound) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.name)) {
			t.Errorf("%s: Blob: %v; want an error naming the blob and %q", c.name, err, c.want)
		}
	}
	if _, err := s.Blob(ctx, "never"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Blob(never written): %v, want ErrNotFound", err)
	}
}

// TestBlobChunksOfADeadWriter: a writer that recorded its put and wrote
// its chunks but died before its manifest leaves chunks no reader
// reaches; the next put of the blob lets them expire once the put is
// older than blobOrphanAge, and leaves a younger one (a writer that may
// still be at work) alone.
func TestBlobChunksOfADeadWriter(t *testing.T) {
	s := mustOpen(t, Config{URL: redistest.URL(t), Prefix: redistest.Prefix(t, redistest.URL(t))})
	s.blobChunk = 1000
	ctx := t.Context()
	live := randomBytes(3_500, 1)
	if err := s.PutBlob(ctx, "model/current", live); err != nil {
		t.Fatal(err)
	}
	dead, err := s.putChunks(ctx, "model/current", randomBytes(5_500, 2)) // then the writer dies
	if err != nil {
		t.Fatal(err)
	}
	if ttls := manifestTTLs(t, s, "model/current", dead); len(ttls) != 6 || ttls[0] != -1 {
		t.Fatalf("the dead writer's chunks: TTLs %v, want 6 without one", ttls)
	}
	s.blobOrphanAge = time.Hour // the dead put is younger: kept
	if err := s.PutBlob(ctx, "model/current", randomBytes(2_500, 3)); err != nil {
		t.Fatal(err)
	}
	if ttls := manifestTTLs(t, s, "model/current", dead); ttls[0] != -1 {
		t.Fatalf("a put younger than blobOrphanAge was swept: TTLs %v", ttls)
	}
	s.blobOrphanAge = 0
	third := randomBytes(4_500, 4)
	if err := s.PutBlob(ctx, "model/current", third); err != nil {
		t.Fatal(err)
	}
	for i, d := range manifestTTLs(t, s, "model/current", dead) {
		if d <= 0 || d > blobGrace {
			t.Fatalf("the dead writer's chunk %d has TTL %v, want at most %v", i, d, blobGrace)
		}
	}
	ttls, m := chunkTTLs(t, s, "model/current")
	if m.Chunks != 5 || ttls[0] != -1 {
		t.Fatalf("the live blob's manifest %+v, TTLs %v", m, ttls)
	}
	pending, err := s.rdb.HGetAll(ctx, s.pendingKey("model/current")).Result()
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending puts after the sweep: %v (%v), want none", pending, err)
	}
	readBack(t, s, "model/current", third)
}

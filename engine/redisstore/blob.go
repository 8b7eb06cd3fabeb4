package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/redis/go-redis/v9"
)

// Large blobs
//
// A published snapshot holds every item's factors, statistics and
// neighbours: about 0.5–0.9 KB an item at k = 64, so a catalogue of a few
// hundred thousand items makes a blob of hundreds of MB (before slim
// snapshots it also held every visitor's row, 256 MB per million), which
// would sit on one master of a cluster and hold its connection for
// seconds, and past proto-max-bulk-len (512 MB by default) could not be
// stored at all. A blob larger than blobChunk is therefore stored
// as chunks of at most blobChunk bytes under keys of their own (spread
// over the cluster's slots by their names) and its key holds a manifest:
// blobMagic, then JSON naming the write's generation, the number of
// chunks, the size and the CRC-32C of the whole. The manifest is set last,
// with SET … GET, so a reader sees the previous blob or the new one, never
// a mix, and the writer learns which manifest it replaced: that one's
// chunks expire blobGrace later (readers that read the old manifest just
// before finish meanwhile; one that finds a chunk gone reads the manifest
// again). Blobs of at most blobChunk bytes are stored as they are, as
// before, unless they begin with blobMagic.
//
// A writer that dies (or fails) between its chunks and its manifest would
// leave its chunks behind, never read: a published model's worth of
// memory each time. So a writer first records its generation, the time
// and the chunk count in the hash <blob key>:pending, and removes it once
// its manifest is set. Each chunked put first sweeps that hash: a
// generation recorded more than blobOrphanAge ago that is not the live
// manifest's was abandoned, and its chunks expire blobGrace later. (A
// generation younger than that may be a concurrent writer still at work.)

// blobMagic begins a chunked blob's manifest.
const blobMagic = "\x00kairos-chunked-blob\x00"

// blobChunk is the largest chunk of a chunked blob, and the largest blob
// stored as one value.
const blobChunk = 4 << 20

// blobGrace is how long a replaced blob's chunks stay readable.
const blobGrace = time.Minute

// blobOrphanAge is how long after its start a chunked put that has not
// set its manifest counts as abandoned (a 600 MB put takes about half a
// second).
const blobOrphanAge = time.Hour

// maxBlobChunks bounds a manifest's chunk count (4 TiB in 4 MiB chunks),
// so that a damaged one cannot make a reader or writer loop for ever.
const maxBlobChunks = 1 << 20

// blobChunksPerPipeline bounds the chunks sent in one pipeline.
const blobChunksPerPipeline = 8

// blobManifest describes a chunked blob.
type blobManifest struct {
	Gen    string `json:"gen"`
	Chunks int    `json:"chunks"`
	Size   int    `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkKey is the key of chunk i of the blob name's generation gen.
func (s *Store) chunkKey(name, gen string, i int) string {
	return s.blobKey(name) + ":chunk:" + gen + ":" + strconv.Itoa(i)
}

// PutBlob stores data under name (a string key), replacing any previous
// value; a blob larger than 4 MiB is stored in chunks (see "Large
// blobs").
func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	if err := validBlobName(name); err != nil {
		return fmt.Errorf("redisstore: put blob: %w", err)
	}
	value, gen := data, ""
	if len(data) > s.blobChunk || bytes.HasPrefix(data, []byte(blobMagic)) {
		m, err := s.putChunks(ctx, name, data)
		if err != nil {
			return err
		}
		value, gen = encodeManifest(m), m.Gen
	}
	old, err := s.rdb.SetArgs(ctx, s.blobKey(name), value, redis.SetArgs{Get: true}).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return wrap("put blob", err)
	}
	s.expireChunks(ctx, name, old, gen)
	if gen != "" {
		if err := s.rdb.HDel(ctx, s.pendingKey(name), gen).Err(); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "blob's pending record left behind", slog.String("blob", name), slog.Any("err", err))
		}
	}
	return nil
}

// pendingKey is the hash of the chunked puts of blob name under way: a
// generation → "<start, Unix ms>:<chunks>".
func (s *Store) pendingKey(name string) string { return s.blobKey(name) + ":pending" }

// putChunks sweeps abandoned generations of name, records a new one as
// pending, writes data's chunks under it and returns its manifest.
func (s *Store) putChunks(ctx context.Context, name string, data []byte) (blobManifest, error) {
	var g [8]byte
	if _, err := rand.Read(g[:]); err != nil {
		return blobManifest{}, fmt.Errorf("redisstore: put blob: generation: %w", err)
	}
	m := blobManifest{Gen: hex.EncodeToString(g[:]), Chunks: (len(data) + s.blobChunk - 1) / s.blobChunk,
		Size: len(data), CRC32C: crc32.Checksum(data, castagnoli)}
	s.sweepPending(ctx, name)
	record := strconv.FormatInt(time.Now().UnixMilli(), 10) + ":" + strconv.Itoa(m.Chunks)
	if err := s.rdb.HSet(ctx, s.pendingKey(name), m.Gen, record).Err(); err != nil {
		return blobManifest{}, wrap(fmt.Sprintf("put blob %q: record the put", name), err)
	}
	for lo := 0; lo < m.Chunks; lo += blobChunksPerPipeline {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < min(lo+blobChunksPerPipeline, m.Chunks); i++ {
				p.Set(ctx, s.chunkKey(name, m.Gen, i), data[i*s.blobChunk:min((i+1)*s.blobChunk, len(data))], 0)
			}
			return nil
		})
		if err != nil {
			return blobManifest{}, wrap(fmt.Sprintf("put blob %q chunk %d of %d", name, lo, m.Chunks), err)
		}
	}
	return m, nil
}

// sweepPending lets the chunks of name's abandoned puts expire (see
// "Large blobs") and removes their records. Failures are logged: the
// next put sweeps again.
func (s *Store) sweepPending(ctx context.Context, name string) {
	pending, err := s.rdb.HGetAll(ctx, s.pendingKey(name)).Result()
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "blob's pending puts not swept", slog.String("blob", name), slog.Any("err", err))
		return
	}
	if len(pending) == 0 {
		return
	}
	live := ""
	if v, err := s.rdb.Get(ctx, s.blobKey(name)).Bytes(); err == nil {
		if m, ok, err := decodeManifest(v); ok && err == nil {
			live = m.Gen
		}
	}
	now := time.Now()
	for gen, record := range pending {
		start, chunks, ok := parsePending(record)
		if gen == live || ok && now.Sub(start) < s.blobOrphanAge {
			continue
		}
		s.expireGeneration(ctx, name, blobManifest{Gen: gen, Chunks: chunks})
		if err := s.rdb.HDel(ctx, s.pendingKey(name), gen).Err(); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "blob's pending record left behind", slog.String("blob", name), slog.Any("err", err))
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "abandoned chunks of a blob expire", slog.String("blob", name),
			slog.String("generation", gen), slog.Int("chunks", chunks))
	}
}

// parsePending reads a pending record, "<start, Unix ms>:<chunks>".
func parsePending(record string) (start time.Time, chunks int, ok bool) {
	ms, n, found := strings.Cut(record, ":")
	t, err1 := strconv.ParseInt(ms, 10, 64)
	c, err2 := strconv.Atoi(n)
	if !found || err1 != nil || err2 != nil || c < 0 || c > maxBlobChunks {
		return time.Time{}, 0, false
	}
	return time.UnixMilli(t), c, true
}

// expireChunks lets the chunks of old, the value a put replaced, expire
// after blobGrace, unless old is the put's own manifest (gen: a retried
// SET returns what its first attempt wrote). Failures are logged: the
// chunks are then only left behind.
func (s *Store) expireChunks(ctx context.Context, name string, old []byte, gen string) {
	m, ok, err := decodeManifest(old)
	if !ok || m.Gen == gen {
		return
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "replaced blob's chunks left behind", slog.String("blob", name), slog.Any("err", err))
		return
	}
	s.expireGeneration(ctx, name, m)
}

// expireGeneration lets the chunks of m (of blob name) expire after
// blobGrace; failures are logged (the chunks are then left behind).
func (s *Store) expireGeneration(ctx context.Context, name string, m blobManifest) {
	at := time.Now().Add(blobGrace)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range m.Chunks {
			p.PExpireAt(ctx, s.chunkKey(name, m.Gen, i), at)
		}
		return nil
	})
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "blob's chunks left behind", slog.String("blob", name),
			slog.String("generation", m.Gen), slog.Any("err", err))
	}
}

// Blob returns the data stored under name, or ErrNotFound.
func (s *Store) Blob(ctx context.Context, name string) ([]byte, error) {
	if err := validBlobName(name); err != nil {
		return nil, fmt.Errorf("redisstore: blob: %w", err)
	}
	var err error
	for range 3 {
		var v []byte
		if v, err = s.rdb.Get(ctx, s.blobKey(name)).Bytes(); err != nil {
			return nil, wrap("blob", err)
		}
		m, chunked, merr := decodeManifest(v)
		switch {
		case !chunked:
			return v, nil
		case merr != nil:
			return nil, fmt.Errorf("redisstore: blob %q: %w", name, merr)
		}
		var data []byte
		if data, err = s.readChunks(ctx, name, m); !errors.Is(err, engine.ErrNotFound) {
			return data, err
		}
		// A chunk expired: the blob was replaced meanwhile; read the new one.
	}
	// Not ErrNotFound: the blob exists, its chunks do not (a writer that
	// replaces it faster than it can be read, or keys lost).
	return nil, fmt.Errorf("redisstore: blob %q: a chunk was missing on each of three reads: %v", name, err)
}

// readChunks reads and checks the chunks of m.
func (s *Store) readChunks(ctx context.Context, name string, m blobManifest) ([]byte, error) {
	var data []byte
	for lo := 0; lo < m.Chunks; lo += blobChunksPerPipeline {
		var cmds []*redis.StringCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < min(lo+blobChunksPerPipeline, m.Chunks); i++ {
				cmds = append(cmds, p.Get(ctx, s.chunkKey(name, m.Gen, i)))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, wrap("blob chunks", err)
		}
		for j, c := range cmds {
			b, err := c.Bytes()
			if err != nil {
				return nil, wrap(fmt.Sprintf("blob %q chunk %d of %d", name, lo+j, m.Chunks), err)
			}
			if data == nil && m.Size <= m.Chunks*len(b) {
				// The manifest's size fits its chunks' (all but the last
				// are as long as the first): one allocation.
				data = make([]byte, 0, m.Size)
			}
			data = append(data, b...)
		}
	}
	if len(data) != m.Size || crc32.Checksum(data, castagnoli) != m.CRC32C {
		return nil, fmt.Errorf("redisstore: blob %q: its chunks hold %d bytes that do not match the manifest (%d bytes, CRC-32C %08x)",
			name, len(data), m.Size, m.CRC32C)
	}
	return data, nil
}

func encodeManifest(m blobManifest) []byte {
	b, _ := json.Marshal(m)
	return append([]byte(blobMagic), b...)
}

// decodeManifest reports whether v is a chunked blob's manifest and
// decodes it (an error names what is wrong with one that begins with
// blobMagic).
func decodeManifest(v []byte) (blobManifest, bool, error) {
	rest, ok := bytes.CutPrefix(v, []byte(blobMagic))
	if !ok {
		return blobManifest{}, false, nil
	}
	var m blobManifest
	if err := json.Unmarshal(rest, &m); err != nil {
		return m, true, fmt.Errorf("chunked blob manifest: %w", err)
	}
	if m.Gen == "" || m.Size < 0 || m.Chunks < 0 || m.Chunks > m.Size || m.Chunks > maxBlobChunks || (m.Size > 0 && m.Chunks == 0) {
		return m, true, fmt.Errorf("chunked blob manifest: generation %q, %d chunks of %d bytes out of range", m.Gen, m.Chunks, m.Size)
	}
	return m, true, nil
}

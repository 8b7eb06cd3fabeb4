package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kairoshq/kairos/internal/durable"
)

// SegmentInfo describes one segment. Sealed segments are listed in the
// index file (index.json) with exactly these JSON fields.
type SegmentInfo struct {
	// Name is the file name inside the segments directory.
	Name string `json:"name"`
	// Hour is the UTC hour in which the segment's first record was written.
	Hour time.Time `json:"hour"`
	// Sealed is false for the active segment (still being appended to).
	Sealed bool `json:"sealed"`
	// Events is the number of events (NDJSON lines).
	Events int64 `json:"events"`
	// Records is the number of records (zstd frames holding events).
	Records int64 `json:"records"`
	// Bytes is the file size.
	Bytes int64 `json:"bytes"`
	// FirstSeq and LastSeq are the sequence numbers of the first and last
	// record.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// MinTime and MaxTime bound the events' own timestamps (ts), which may
	// lie outside Hour for late or early events.
	MinTime time.Time `json:"min_ts"`
	MaxTime time.Time `json:"max_ts"`
	// SHA256 is the hex SHA-256 of the whole file (empty while active), so
	// `sha256sum` verifies a copied segment.
	SHA256 string `json:"sha256,omitempty"`
	// Erasures is the number of tombstones (lines of tombstones.ndjson)
	// that Compact has already applied to this segment.
	Erasures int `json:"erasures"`
	// SealedAt is when the segment was sealed (or last compacted).
	SealedAt time.Time `json:"sealed_at,omitzero"`
}

// indexFile is the JSON document stored in index.json.
type indexFile struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// LastSeq is the highest record sequence number assigned when the index
	// was written; sequence numbers never go back, even when retention has
	// deleted every segment.
	LastSeq uint64 `json:"last_seq"`
	// Compacting names the segment being replaced by Compact, if any: on
	// open its entry is rebuilt from the file.
	Compacting string        `json:"compacting,omitempty"`
	Segments   []SegmentInfo `json:"segments"`
}

const (
	indexName   = "index.json"
	indexFormat = "kairos-archive"
)

// readIndex loads dir/index.json; a missing file is an empty index.
func readIndex(dir string) (indexFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, indexName))
	if errors.Is(err, fs.ErrNotExist) {
		return indexFile{Format: indexFormat, Version: 1}, nil
	}
	if err != nil {
		return indexFile{}, fmt.Errorf("archive: read index: %w", err)
	}
	var idx indexFile
	if err := json.Unmarshal(b, &idx); err != nil {
		return indexFile{}, fmt.Errorf("%w: index %s: %w", ErrCorrupt, indexName, err)
	}
	if idx.Format != indexFormat || idx.Version != 1 {
		return indexFile{}, fmt.Errorf("%w: index %s: format %q version %d not supported", ErrCorrupt, indexName, idx.Format, idx.Version)
	}
	for i := range idx.Segments {
		if _, ok := parseSegmentName(idx.Segments[i].Name); !ok {
			return indexFile{}, fmt.Errorf("%w: index %s: bad segment name %q", ErrCorrupt, indexName, idx.Segments[i].Name)
		}
		idx.Segments[i].Sealed = true
	}
	sortSegments(idx.Segments)
	return idx, nil
}

// writeIndex replaces dir/index.json atomically (temporary file, fsync,
// rename, fsync of the directory).
func writeIndex(dir string, idx indexFile) error {
	idx.Format, idx.Version = indexFormat, 1
	if idx.Segments == nil {
		idx.Segments = []SegmentInfo{}
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: encode index: %w", err)
	}
	if err := durable.WriteFile(dir, indexName, append(b, '\n'), true); err != nil {
		return fmt.Errorf("archive: write index: %w", err)
	}
	return nil
}

func sortSegments(s []SegmentInfo) {
	slices.SortFunc(s, func(a, b SegmentInfo) int { return a.Hour.Compare(b.Hour) })
}

// find returns the index of the entry named name, or -1.
func (idx *indexFile) find(name string) int {
	for i := range idx.Segments {
		if idx.Segments[i].Name == name {
			return i
		}
	}
	return -1
}

// put inserts or replaces the entry for s.Name, keeping the order.
func (idx *indexFile) put(s SegmentInfo) {
	s.Sealed = true
	if i := idx.find(s.Name); i >= 0 {
		idx.Segments[i] = s
		return
	}
	idx.Segments = append(idx.Segments, s)
	sortSegments(idx.Segments)
}

// remove deletes the entry named name, if present.
func (idx *indexFile) remove(name string) {
	if i := idx.find(name); i >= 0 {
		idx.Segments = slices.Delete(idx.Segments, i, i+1)
	}
}

// clone returns a deep copy of idx.
func (idx *indexFile) clone() indexFile {
	c := *idx
	c.Segments = slices.Clone(idx.Segments)
	return c
}

// listSegments returns the segment file names in dir/segments, oldest
// first (other files, such as *.tmp leftovers, are not listed).
func listSegments(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, segmentDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("archive: list segments: %w", err)
	}
	var names []string
	for _, e := range ents {
		if _, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // the name format sorts chronologically
	return names, nil
}

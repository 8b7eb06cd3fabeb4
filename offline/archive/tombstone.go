package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kairoshq/kairos/internal/fileperm"
)

const tombstoneName = "tombstones.ndjson"

// tombstoneLine is one line of tombstones.ndjson.
type tombstoneLine struct {
	// VisitorSHA256 is the hex SHA-256 of the visitor id: the file says
	// whose events to skip without storing the erased id itself.
	VisitorSHA256 string `json:"visitor_sha256"`
	// Seq: events of the visitor in records with sequence number <= Seq are
	// erased; later records (new events after the erasure) are not, except
	// as UpTo says.
	Seq uint64 `json:"seq"`
	// At is when the erasure was requested (Erase: when it was recorded;
	// EraseHashAt, EraseHashRequested: the request's time).
	At time.Time `json:"at"`
	// UpTo, when set (EraseHashAt), erases the visitor's events whose ts
	// is at or before it too, in whichever record they were archived
	// (events still on their way when the erasure was made).
	UpTo time.Time `json:"ts_upto,omitzero"`
}

// tombstones is the in-memory form of tombstones.ndjson.
type tombstones struct {
	mu    sync.RWMutex
	f     *os.File // append handle; nil when read-only
	seqOf map[[sha256.Size]byte]uint64
	atOf  map[[sha256.Size]byte]time.Time // the latest erasure of each visitor
	upTo  map[[sha256.Size]byte]int64     // the largest UpTo of each visitor, Unix ms
	lines int                             // number of tombstones in the file
	max   uint64                          // largest Seq
	maxUp int64                           // largest UpTo, Unix ms
}

// visitorKey hashes a visitor id.
func visitorKey(visitor string) [sha256.Size]byte {
	return sha256.Sum256([]byte(visitor))
}

// loadTombstones reads dir/tombstones.ndjson. With repair (the writer), a
// torn last line (no newline: a crash during Erase) is truncated and the
// file stays open for appending; without (a reader), it is ignored. A
// damaged line that is not the last is ErrCorrupt: an erasure is never
// silently dropped.
func loadTombstones(dir string, repair bool, log *slog.Logger) (*tombstones, error) {
	path := filepath.Join(dir, tombstoneName)
	t := &tombstones{seqOf: map[[sha256.Size]byte]uint64{}, atOf: map[[sha256.Size]byte]time.Time{}, upTo: map[[sha256.Size]byte]int64{}}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("archive: read tombstones: %w", err)
	}
	valid := 0
	for len(b[valid:]) > 0 {
		rest := b[valid:]
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break // torn last line
		}
		var tl tombstoneLine
		if err := json.Unmarshal(rest[:nl], &tl); err != nil {
			return nil, fmt.Errorf("%w: %s at byte %d: %w", ErrCorrupt, tombstoneName, valid, err)
		}
		key, kerr := hex.DecodeString(tl.VisitorSHA256)
		if kerr != nil || len(key) != sha256.Size {
			return nil, fmt.Errorf("%w: %s at byte %d: bad visitor_sha256", ErrCorrupt, tombstoneName, valid)
		}
		t.add([sha256.Size]byte(key), tl.Seq, tl.At, tl.UpTo)
		valid += nl + 1
	}
	if !repair {
		return t, nil
	}
	if valid < len(b) {
		log.Warn("truncating torn tail of tombstone file", slog.Int("dropped_bytes", len(b)-valid))
		if err := os.Truncate(path, int64(valid)); err != nil {
			return nil, fmt.Errorf("archive: truncate tombstones: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, fileperm.FileMode)
	if err != nil {
		return nil, fmt.Errorf("archive: open tombstones: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("archive: sync tombstones: %w", err)
	}
	t.f = f
	return t, nil
}

func (t *tombstones) add(key [sha256.Size]byte, seq uint64, at, upTo time.Time) {
	if s, ok := t.seqOf[key]; !ok || seq > s {
		t.seqOf[key] = seq
	}
	if a, ok := t.atOf[key]; !ok || at.After(a) {
		t.atOf[key] = at
	}
	if !upTo.IsZero() {
		ms := upTo.UnixMilli()
		if u, ok := t.upTo[key]; !ok || ms > u {
			t.upTo[key] = ms
		}
		t.maxUp = max(t.maxUp, ms)
	}
	t.lines++
	t.max = max(t.max, seq)
}

// record appends a tombstone durably (write and fsync). lastSeq is read
// under the lock so that the file's sequence numbers never decrease.
func (t *tombstones) record(key [sha256.Size]byte, lastSeq func() uint64, at time.Time) error {
	_, err := t.recordIf(key, lastSeq, at, false)
	return err
}

// recordIf is record; with upTo, the tombstone also erases the visitor's
// events whose ts is at or before at (UpTo), and nothing is recorded when
// the visitor already has a tombstone with an UpTo at or after at (which
// erases every event the new one would). It reports whether it recorded.
func (t *tombstones) recordIf(key [sha256.Size]byte, lastSeq func() uint64, at time.Time, upTo bool) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tl := tombstoneLine{VisitorSHA256: hex.EncodeToString(key[:]), At: at.UTC()}
	if upTo {
		if prev, ok := t.upTo[key]; ok && prev >= at.UnixMilli() {
			return false, nil
		}
		tl.UpTo = tl.At
	}
	seq := lastSeq()
	tl.Seq = seq
	line, err := json.Marshal(tl)
	if err != nil {
		return false, err
	}
	if _, err := t.f.Write(append(line, '\n')); err != nil {
		return false, err
	}
	if err := t.f.Sync(); err != nil {
		return false, err
	}
	t.add(key, seq, tl.At, tl.UpTo)
	return true, nil
}

// count returns the number of tombstones.
func (t *tombstones) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.lines
}

// any reports whether there is at least one tombstone.
func (t *tombstones) any() bool { return t.count() > 0 }

// erased reports whether an event of visitor with time ts (Unix ms)
// stored in the record with sequence number seq is erased.
func (t *tombstones) erased(visitor string, seq uint64, ts int64) bool {
	key := visitorKey(visitor)
	t.mu.RLock()
	s, ok := t.seqOf[key]
	up, hasUp := t.upTo[key]
	t.mu.RUnlock()
	return ok && (seq <= s || hasUp && ts <= up)
}

// bounds returns the largest Seq and the largest UpTo (Unix ms; 0 when
// none): a record whose seq is above the first and whose events' ts are
// all above the second holds no erased event.
func (t *tombstones) bounds() (maxSeq uint64, maxUpTo int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.max, t.maxUp
}

func (t *tombstones) close() error {
	if t.f == nil {
		return nil
	}
	return t.f.Close()
}

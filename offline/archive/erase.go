package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kairoshq/kairos/internal/durable"

	"github.com/klauspost/compress/zstd"

	"github.com/kairoshq/kairos/internal/fileperm"
	"github.com/kairoshq/kairos/signals"
)

// Erase records a tombstone for visitor: from the moment Erase returns,
// Scan and ScanRecords (of this Archive and of every Reader) skip the
// visitor's events archived before the call; events archived afterwards
// (a returning visitor) are kept. The tombstone is fsynced before Erase
// returns. The events stay in the segment files until Compact rewrites
// them. The tombstone file stores a SHA-256 of the visitor id, not the id.
func (a *Archive) Erase(ctx context.Context, visitor string) error {
	if visitor == "" {
		return fmt.Errorf("archive: erase: empty visitor id")
	}
	return a.erase(ctx, visitorKey(visitor), time.Time{})
}

// EraseHash is Erase for the visitor whose id has the hex SHA-256
// visitorSHA256 (the form tombstones.ndjson stores): an erasure requested
// elsewhere without keeping the id (package offline/history).
func (a *Archive) EraseHash(ctx context.Context, visitorSHA256 string) error {
	key, err := hashKey(visitorSHA256)
	if err != nil {
		return err
	}
	return a.erase(ctx, key, time.Time{})
}

// EraseHashRequested is EraseHash for an erasure requested at at,
// earlier than now: the tombstone keeps at as its time (zero: now),
// which is what history.Erasures.ErasedAt compares publish times with.
// Its sequence number is still the archive's last, so the caller records
// it once every event published up to at is appended and none published
// after it (the cluster archiver of offline/history records it at that
// point of the stream). Unlike EraseHashAt it has no ts cut.
func (a *Archive) EraseHashRequested(ctx context.Context, visitorSHA256 string, at time.Time) error {
	key, err := hashKey(visitorSHA256)
	if err != nil {
		return err
	}
	return a.erase(ctx, key, at)
}

// EraseHashAt records the erasure of the visitor whose id has the hex
// SHA-256 visitorSHA256, requested at at (on this replica or another):
// its events archived so far are erased, and so are those archived later
// whose ts is at or before at (events published before the erasure that
// reach this archive after it). It is idempotent: when the visitor
// already has a tombstone at or after at, which erases all that one would,
// it records nothing and reports false.
func (a *Archive) EraseHashAt(ctx context.Context, visitorSHA256 string, at time.Time) (bool, error) {
	key, err := hashKey(visitorSHA256)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a.closeMu.RLock()
	defer a.closeMu.RUnlock()
	if a.closed {
		return false, ErrClosed
	}
	done, err := a.tombs.recordIf(key, a.lastSeq.Load, at, true)
	if err != nil {
		return false, fmt.Errorf("archive: erase: %w", err)
	}
	if done {
		a.log.Info("visitor erased from the archive", slog.Time("requested_at", at))
	}
	return done, nil
}

// hashKey decodes a hex SHA-256.
func hashKey(visitorSHA256 string) ([sha256.Size]byte, error) {
	key, err := hex.DecodeString(visitorSHA256)
	if err != nil || len(key) != sha256.Size {
		return [sha256.Size]byte{}, fmt.Errorf("archive: erase: %q is not a hex SHA-256", visitorSHA256)
	}
	return [sha256.Size]byte(key), nil
}

func (a *Archive) erase(ctx context.Context, key [sha256.Size]byte, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.closeMu.RLock()
	defer a.closeMu.RUnlock()
	if a.closed {
		return ErrClosed
	}
	if at.IsZero() {
		at = a.opts.Now()
	}
	if err := a.tombs.record(key, a.lastSeq.Load, at); err != nil {
		return fmt.Errorf("archive: erase: %w", err)
	}
	a.log.Info("visitor erased from the archive")
	return nil
}

// CompactResult summarises a Compact run; `kairos archive compact`
// prints it as one JSON line with these names.
type CompactResult struct {
	// Tombstones is the number of erasures compacted against.
	Tombstones int `json:"tombstones"`
	// SealedActive names the active segment that Compact sealed because
	// it could hold erased events ("" when it did not).
	SealedActive string `json:"sealed_active,omitempty"`
	// Segments is the number of sealed segments looked at (SealedActive
	// included).
	Segments int `json:"segments"`
	// Scanned is the number of segments read because they could hold
	// erased events; the others were already compacted against every
	// tombstone or hold only records archived after the last erasure.
	Scanned int `json:"segments_scanned"`
	// Rewritten is the number of segments rewritten (or removed, when
	// nothing remained).
	Rewritten int `json:"segments_rewritten"`
	// Removed is the number of rewritten segments removed because empty.
	Removed int `json:"segments_removed"`
	// Skipped is the number of segments an append reopened (or the
	// retention deleted) while they were being compacted: run Compact
	// again.
	Skipped int `json:"segments_skipped"`
	// EventsGone is the number of events physically removed.
	EventsGone int64 `json:"events_removed"`
	// BytesBefore and BytesAfter are the sizes of the rewritten segments
	// before and after.
	BytesBefore int64 `json:"bytes_before"`
	BytesAfter  int64 `json:"bytes_after"`
}

// Compact rewrites every segment that holds events of erased visitors
// without those events (write to a temporary file, fsync, atomic rename,
// index update), so erased data leaves the disk. Records without erased
// events are copied byte for byte; the others are re-compressed and keep
// their sequence number and arrival time. Segments already compacted
// against every tombstone are not read again.
//
// When the active segment may hold erased events (a tombstone it was not
// compacted against has a seq at or after its first record), Compact has
// the writer seal it first, so
// that it is compacted too: this matters to `kairos archive compact`,
// which runs while the server is stopped and finds the current hour's
// segment active again on open. An append later in the same hour reopens
// the segment; if that happens while Compact rewrites it, the rewrite is
// abandoned and counted in Skipped.
//
// Compact and ApplyRetention run one at a time; appends continue meanwhile.
func (a *Archive) Compact(ctx context.Context) (CompactResult, error) {
	var res CompactResult
	a.closeMu.RLock()
	closed := a.closed
	a.closeMu.RUnlock()
	if closed {
		return res, ErrClosed
	}
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	if a.maintClosed {
		return res, ErrClosed
	}
	ctx, cancel := mergeCancel(ctx, a.bgCtx)
	defer cancel()

	lines := a.tombs.count()
	maxSeq, maxUpTo := a.tombs.bounds()
	res.Tombstones = lines

	a.stateMu.Lock()
	active := a.active
	a.stateMu.Unlock()
	if lines > active.erasures && active.name != "" && active.st.records > 0 && (maxSeq >= active.st.firstSeq || maxUpTo >= active.st.minTS) {
		if err := a.requestSeal(ctx); err != nil {
			return res, fmt.Errorf("archive: compact: seal the active segment %s: %w", active.name, err)
		}
		res.SealedActive = active.name
		a.log.Info("sealed the active segment to compact it", slog.String("segment", active.name))
	}

	a.stateMu.Lock()
	segs := append([]SegmentInfo(nil), a.idx.Segments...)
	a.stateMu.Unlock()
	res.Segments = len(segs)

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevel(a.opts.Level)),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return res, fmt.Errorf("archive: zstd encoder: %w", err)
	}
	defer enc.Close()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxRecordLimit))
	if err != nil {
		return res, fmt.Errorf("archive: zstd decoder: %w", err)
	}
	defer dec.Close()
	c := compactor{a: a, enc: enc, dec: dec}

	for _, seg := range segs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if seg.Erasures >= lines {
			continue
		}
		if lines == 0 || (maxSeq < seg.FirstSeq && maxUpTo < seg.MinTime.UnixMilli()) {
			// No tombstone can touch this segment's records.
			seg.Erasures = lines
			if err := a.updateEntry(seg); err != nil {
				return res, err
			}
			continue
		}
		res.Scanned++
		gone, after, err := c.segment(ctx, seg, lines)
		if errors.Is(err, errGone) {
			res.Skipped++
			a.log.Warn("segment reopened or deleted while being compacted; run compact again", slog.String("segment", seg.Name))
			continue
		}
		if err != nil {
			return res, err
		}
		if gone > 0 {
			res.Rewritten++
			res.EventsGone += gone
			res.BytesBefore += seg.Bytes
			res.BytesAfter += after
			if after == 0 {
				res.Removed++
			}
		}
	}
	if res.Rewritten > 0 {
		a.log.Info("archive compacted", slog.Int("segments", res.Rewritten), slog.Int64("events_removed", res.EventsGone))
	}
	return res, nil
}

// updateEntry replaces a sealed segment's index entry (if it is still
// there: retention may have deleted it, or the writer reopened it) and
// rewrites the index.
func (a *Archive) updateEntry(seg SegmentInfo) error {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	a.idx.Compacting = ""
	if a.idx.find(seg.Name) >= 0 {
		a.idx.put(seg)
	}
	return writeIndex(a.dir, a.idx)
}

// errGone: the segment being compacted left the index meanwhile (an
// append reopened it, or the retention deleted it).
var errGone = errors.New("segment no longer sealed")

// replaceSegment renames a compacted file over a sealed segment. It holds
// stateMu throughout, so the writer cannot reopen the segment in between;
// the index marks the replacement first, so that a crash in between makes
// Open rebuild the entry from whichever file is in place.
func (a *Archive) replaceSegment(seg SegmentInfo, tmpPath, path string) error {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	if a.idx.find(seg.Name) < 0 {
		return errGone
	}
	a.idx.Compacting = seg.Name
	if err := writeIndex(a.dir, a.idx); err != nil {
		return err
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fmt.Errorf("archive: compact: rename: %w", err)
	}
	if err := durable.SyncDir(a.segDir); err != nil {
		return fmt.Errorf("archive: compact: sync dir: %w", err)
	}
	return nil
}

type compactor struct {
	a     *Archive
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	raw   []byte
	keep  []byte
	rec   []byte
	spans [][2]int
}

// segment compacts one sealed segment against the first lines tombstones
// and returns the number of events removed and the new size; errGone when
// the segment left the index meanwhile (nothing was changed then).
func (c *compactor) segment(ctx context.Context, seg SegmentInfo, lines int) (gone, size int64, err error) {
	a := c.a
	path := filepath.Join(a.segDir, seg.Name)
	tmpPath := path + ".tmp"
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("archive: compact: open segment: %w", err)
	}
	defer f.Close()
	rr := newRecordReader(f)
	var tmp *os.File
	defer func() {
		if tmp != nil { // not renamed: an error happened
			tmp.Close()
			os.Remove(tmpPath)
		}
	}()
	st := newSegStats()
	for n := 0; ; n++ {
		if n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		off := rr.off
		h, data, err := rr.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%w: compact: segment %s at byte %d: %w", ErrCorrupt, seg.Name, off, err)
		}
		kept, nh, removed, err := c.filter(h, data)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: compact: segment %s at byte %d: %w", ErrCorrupt, seg.Name, off, err)
		}
		if removed > 0 && tmp == nil {
			// First erased event: start the new file with the bytes before.
			if tmp, err = os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileperm.FileMode); err != nil {
				return 0, 0, fmt.Errorf("archive: compact: %w", err)
			}
			if _, err := io.Copy(tmp, io.NewSectionReader(f, 0, off)); err != nil {
				return 0, 0, fmt.Errorf("archive: compact: copy: %w", err)
			}
		}
		gone += int64(removed)
		switch {
		case removed == 0:
			if tmp != nil {
				if _, err := tmp.Write(rr.hbuf[:]); err != nil {
					return 0, 0, fmt.Errorf("archive: compact: write: %w", err)
				}
				if _, err := tmp.Write(data); err != nil {
					return 0, 0, fmt.Errorf("archive: compact: write: %w", err)
				}
			}
			st.add(h, rr.hbuf[:], data)
		case nh.count > 0:
			if _, err := tmp.Write(kept); err != nil {
				return 0, 0, fmt.Errorf("archive: compact: write: %w", err)
			}
			st.add(nh, kept, nil)
		}
	}
	seg.Erasures = lines
	if tmp == nil { // nothing erased here
		return 0, seg.Bytes, a.updateEntry(seg)
	}
	if err := tmp.Sync(); err != nil {
		return 0, 0, fmt.Errorf("archive: compact: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, 0, fmt.Errorf("archive: compact: close: %w", err)
	}
	if st.records == 0 {
		os.Remove(tmpPath)
		tmp = nil
		n, err := a.removeSegments([]string{seg.Name})
		if err != nil {
			return 0, seg.Bytes, err
		}
		if n == 0 {
			return 0, seg.Bytes, errGone
		}
		return gone, 0, nil
	}
	if err := a.replaceSegment(seg, tmpPath, path); err != nil {
		return 0, 0, err // tmp is removed by the deferred cleanup
	}
	tmp = nil
	info := st.info(seg.Name, seg.Hour, true)
	info.Erasures = lines
	info.SealedAt = a.opts.Now().UTC()
	return gone, info.Bytes, a.updateEntry(info)
}

// eraseProbe is the part of an event compaction needs.
type eraseProbe struct {
	Visitor string            `json:"visitor"`
	Time    signals.Timestamp `json:"ts"`
}

// filter removes erased events from one record. When some are removed it
// returns the re-encoded record (nil when none remain) and its header.
func (c *compactor) filter(h header, data []byte) (rec []byte, nh header, removed int, err error) {
	raw, err := c.dec.DecodeAll(data, c.raw[:0])
	if err != nil {
		return nil, nh, 0, fmt.Errorf("zstd: %w", err)
	}
	c.raw = raw
	c.spans = c.spans[:0]
	nh = header{seq: h.seq, arrival: h.arrival}
	for pos := 0; pos < len(raw); {
		nl := bytes.IndexByte(raw[pos:], '\n')
		if nl < 0 {
			return nil, nh, 0, errors.New("last line has no newline")
		}
		end := pos + nl + 1
		var p eraseProbe
		if err := json.Unmarshal(raw[pos:end], &p); err != nil {
			return nil, nh, 0, err
		}
		if c.a.tombs.erased(p.Visitor, h.seq, p.Time.UnixMilli()) {
			removed++
		} else {
			c.spans = append(c.spans, [2]int{pos, end})
			ts := p.Time.UnixMilli()
			if nh.count == 0 {
				nh.minTS, nh.maxTS = ts, ts
			}
			nh.count++
			nh.minTS, nh.maxTS = min(nh.minTS, ts), max(nh.maxTS, ts)
		}
		pos = end
	}
	if removed == 0 || nh.count == 0 {
		return nil, nh, removed, nil
	}
	keep := c.keep[:0]
	for _, sp := range c.spans {
		keep = append(keep, raw[sp[0]:sp[1]]...)
	}
	c.keep = keep
	rec = append(c.rec[:0], make([]byte, headerSize)...)
	rec = c.enc.EncodeAll(keep, rec)
	d := rec[headerSize:]
	nh.dataLen, nh.dataCRC, nh.rawLen = uint32(len(d)), durable.Checksum(d), uint32(len(keep))
	putHeader(rec[:headerSize], nh)
	c.rec = rec
	return rec, nh, removed, nil
}

// ApplyRetention deletes the sealed segments whose hour ended at or before
// now - Options.Retention (index first, then the files) and returns how
// many it deleted. With Retention 0 (forever) it does nothing. Open and
// every hour roll-over run it in the background; call it to apply the
// retention at another time.
func (a *Archive) ApplyRetention(ctx context.Context, now time.Time) (int, error) {
	if a.opts.Retention <= 0 {
		return 0, nil
	}
	a.closeMu.RLock()
	closed := a.closed
	a.closeMu.RUnlock()
	if closed {
		return 0, ErrClosed
	}
	a.maintMu.Lock()
	defer a.maintMu.Unlock()
	if a.maintClosed {
		return 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cutoff := now.Add(-a.opts.Retention)
	var names []string
	a.stateMu.Lock()
	for _, s := range a.idx.Segments {
		if !s.Hour.Add(time.Hour).After(cutoff) {
			names = append(names, s.Name)
		}
	}
	a.stateMu.Unlock()
	if len(names) == 0 {
		return 0, nil
	}
	n, err := a.removeSegments(names)
	if err != nil {
		return n, err
	}
	a.log.Info("retention deleted segments", slog.Int("segments", n), slog.String("cutoff", cutoff.UTC().Format(time.RFC3339)))
	return n, nil
}

// removeSegments drops sealed segments from the index (those still in it),
// then deletes their files, and returns how many it removed. A crash in
// between leaves files that Open indexes again; the next retention or
// compaction removes them.
func (a *Archive) removeSegments(names []string) (int, error) {
	a.stateMu.Lock()
	var gone []string
	for _, n := range names {
		if a.idx.find(n) >= 0 {
			a.idx.remove(n)
			gone = append(gone, n)
		}
	}
	a.idx.LastSeq = max(a.idx.LastSeq, a.lastSeq.Load())
	err := writeIndex(a.dir, a.idx)
	a.stateMu.Unlock()
	if err != nil {
		return 0, err
	}
	for _, n := range gone {
		if err := os.Remove(filepath.Join(a.segDir, n)); err != nil && !os.IsNotExist(err) {
			return 0, fmt.Errorf("archive: remove segment: %w", err)
		}
	}
	if err := durable.SyncDir(a.segDir); err != nil {
		return 0, fmt.Errorf("archive: sync %s: %w", a.segDir, err)
	}
	return len(gone), nil
}

// mergeCancel returns a context that ends when either parent ends.
func mergeCancel(ctx, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return ctx, func() { stop(); cancel() }
}

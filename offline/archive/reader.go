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
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kairoshq/kairos/signals"
)

// Query selects the events a scan delivers. The zero Query selects every
// event that is not erased.
type Query struct {
	// From and To bound the events' own time (ts): From <= ts < To. A zero
	// bound is open. Late events are found wherever they were archived.
	From, To time.Time
	// AfterSeq skips records with a sequence number <= AfterSeq: set it to
	// the LastSeq a retrain read up to, to replay only the tail since.
	AfterSeq uint64
	// UntilSeq, when not 0, stops after the record with this sequence
	// number: a stable cut of a growing archive.
	UntilSeq uint64
}

// Record is one archived event with where it sits in the archive.
type Record struct {
	// Seq is the sequence number of the record (zstd frame) that holds the
	// event; several events share one.
	Seq uint64
	// Arrival is when the writer wrote that record (millisecond precision).
	Arrival time.Time
	// Event is the event as it was appended (Time filled in when it was
	// zero).
	Event signals.Event
}

// Reader reads an archive directory without taking the writer lock: use it
// from another process (replay, retrain, inspection) while a writer runs.
// Each call takes a fresh look at the directory; the active segment is read
// up to its last complete record. A Reader is safe for concurrent use.
type Reader struct {
	dir string
	log *slog.Logger
}

// NewReader returns a Reader of the archive in dir; logger may be nil.
func NewReader(dir string, logger *slog.Logger) *Reader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reader{dir: dir, log: logger.With(slog.String("component", "archive"))}
}

// segRef is one segment to read.
type segRef struct {
	name  string
	info  *SegmentInfo // index entry, nil when not (reliably) indexed
	limit int64        // bytes to read; < 0 means to the end of the file
	tail  bool         // maybe being written: stop quietly at an invalid record
}

// view is a consistent list of segments to read, and the tombstones.
type view struct {
	segDir string
	segs   []segRef
	tombs  *tombstones
}

// view loads the directory's current state.
func (r *Reader) view() (view, []SegmentInfo, error) {
	idx, err := readIndex(r.dir) // before listing: see doc.go, "Readers"
	if err != nil {
		return view{}, nil, err
	}
	names, err := listSegments(r.dir)
	if err != nil {
		return view{}, nil, err
	}
	tombs, err := loadTombstones(r.dir, false, r.log)
	if err != nil {
		return view{}, nil, err
	}
	v := view{segDir: filepath.Join(r.dir, segmentDir), tombs: tombs}
	var infos []SegmentInfo
	for i, name := range names {
		ref := segRef{name: name, limit: -1}
		if j := idx.find(name); j >= 0 && name != idx.Compacting {
			info := idx.Segments[j]
			ref.info = &info
			infos = append(infos, info)
		} else {
			ref.tail = i == len(names)-1
			hour, _ := parseSegmentName(name)
			infos = append(infos, SegmentInfo{Name: name, Hour: hour})
		}
		v.segs = append(v.segs, ref)
	}
	return v, infos, nil
}

// view snapshots the archive's own state: sealed segments from the index,
// the active one up to its committed size.
func (a *Archive) view() view {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	v := view{segDir: a.segDir, tombs: a.tombs}
	for i := range a.idx.Segments {
		info := a.idx.Segments[i]
		v.segs = append(v.segs, segRef{name: info.Name, info: &info, limit: -1})
	}
	if a.active.name != "" {
		v.segs = append(v.segs, segRef{name: a.active.name, limit: a.active.st.bytes})
	}
	return v
}

// Segments lists the segments, oldest first. A segment that is not in the
// index (the active one, Sealed false) is read to count its complete
// records: its Events, Records, Bytes, sequence and time bounds describe
// them (a record being written is left out); it has no SHA256.
func (r *Reader) Segments(ctx context.Context) ([]SegmentInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, infos, err := r.view()
	if err != nil {
		return nil, err
	}
	for i := range infos {
		if infos[i].Sealed {
			continue
		}
		st, err := unsealedStats(ctx, filepath.Join(v.segDir, infos[i].Name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // sealed and compacted away since the listing
		}
		if err != nil {
			return nil, err
		}
		infos[i] = st.info(infos[i].Name, infos[i].Hour, false)
	}
	return infos, nil
}

// unsealedStats reads the headers of a segment that may be being written,
// verifying the checksums of every record, up to its last complete record.
func unsealedStats(ctx context.Context, path string) (segStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return segStats{}, err
	}
	defer f.Close()
	res, err := scanSegment(ctx, f)
	if err != nil {
		return segStats{}, fmt.Errorf("archive: read segment %s: %w", filepath.Base(path), err)
	}
	return res.stats, nil
}

// Scan calls fn for every event with from <= ts < to (zero bounds are
// open) that is not erased, in archive (arrival) order. Memory use is
// bounded by one record. An error from fn stops the scan and is returned
// as is.
func (r *Reader) Scan(ctx context.Context, from, to time.Time, fn func(signals.Event) error) error {
	return r.ScanRecords(ctx, Query{From: from, To: to}, func(rec Record) error { return fn(rec.Event) })
}

// ScanRecords calls fn for every event selected by q that is not erased,
// in archive order, with its record's sequence number and arrival time.
func (r *Reader) ScanRecords(ctx context.Context, q Query, fn func(Record) error) error {
	_, err := r.ScanRecordsStats(ctx, q, fn)
	return err
}

// ScanStats counts what a scan left out.
type ScanStats struct {
	// Erased is the number of events in q's selection that a tombstone
	// filtered out.
	Erased int
}

// ScanRecordsStats is ScanRecords that also counts the events it left
// out (up to where it stopped).
func (r *Reader) ScanRecordsStats(ctx context.Context, q Query, fn func(Record) error) (ScanStats, error) {
	v, _, err := r.view()
	if err != nil {
		return ScanStats{}, err
	}
	var st ScanStats
	err = scanView(ctx, v, q, &st, fn)
	return st, err
}

// Scan is Reader.Scan on the archive's current content: everything
// acknowledged before the call.
func (a *Archive) Scan(ctx context.Context, from, to time.Time, fn func(signals.Event) error) error {
	return a.ScanRecords(ctx, Query{From: from, To: to}, func(rec Record) error { return fn(rec.Event) })
}

// ScanRecords is Reader.ScanRecords on the archive's current content.
func (a *Archive) ScanRecords(ctx context.Context, q Query, fn func(Record) error) error {
	return scanView(ctx, a.view(), q, nil, fn)
}

// msBounds converts a Query's time window to unix ms [lo, hi).
func (q Query) msBounds() (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if !q.From.IsZero() {
		lo = q.From.UnixMilli()
		if q.From.After(time.UnixMilli(lo)) {
			lo++ // ts are whole milliseconds: round From up
		}
	}
	if !q.To.IsZero() {
		hi = q.To.UnixMilli()
		if q.To.After(time.UnixMilli(hi)) {
			hi++
		}
	}
	return lo, hi
}

// scanView streams the events of v selected by q to fn, counting in st
// (when not nil).
func scanView(ctx context.Context, v view, q Query, st *ScanStats, fn func(Record) error) error {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxRecordLimit))
	if err != nil {
		return fmt.Errorf("archive: zstd decoder: %w", err)
	}
	defer dec.Close()
	lo, hi := q.msBounds()
	if st == nil {
		st = &ScanStats{}
	}
	s := scanner{dec: dec, tombs: v.tombs, erasures: v.tombs.any(), stats: st}
	for _, seg := range v.segs {
		if in := seg.info; in != nil {
			if in.Events == 0 || in.LastSeq <= q.AfterSeq ||
				in.MaxTime.UnixMilli() < lo || in.MinTime.UnixMilli() >= hi {
				continue
			}
		}
		if q.UntilSeq != 0 && seg.info != nil && seg.info.FirstSeq > q.UntilSeq {
			return nil
		}
		done, err := s.segment(ctx, v.segDir, seg, q, lo, hi, fn)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// scanner holds the reusable state of one scan.
type scanner struct {
	dec      *zstd.Decoder
	tombs    *tombstones
	erasures bool
	raw      []byte
	stats    *ScanStats
}

// segment scans one segment; done reports that UntilSeq was passed.
func (s *scanner) segment(ctx context.Context, segDir string, seg segRef, q Query, lo, hi int64, fn func(Record) error) (done bool, err error) {
	f, err := os.Open(filepath.Join(segDir, seg.name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed by retention or compaction since the listing
	}
	if err != nil {
		return false, fmt.Errorf("archive: open segment: %w", err)
	}
	defer f.Close()
	var src io.Reader = f
	if seg.limit >= 0 {
		src = io.LimitReader(f, seg.limit)
	}
	rr := newRecordReader(src)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		off := rr.off
		h, err := rr.next()
		if err == io.EOF {
			return false, nil
		}
		var data []byte
		if err == nil {
			if q.UntilSeq != 0 && h.seq > q.UntilSeq {
				return true, nil
			}
			if h.seq <= q.AfterSeq || h.maxTS < lo || h.minTS >= hi {
				err = rr.skip(h)
				if err == nil {
					continue
				}
			} else {
				data, err = rr.readData(h)
			}
		}
		if err != nil {
			if errors.Is(err, errBadRecord) {
				if seg.tail {
					return false, nil // the writer is still writing this record
				}
				return false, fmt.Errorf("%w: segment %s at byte %d: %w", ErrCorrupt, seg.name, off, err)
			}
			return false, fmt.Errorf("archive: read segment %s: %w", seg.name, err)
		}
		if err := s.record(h, data, lo, hi, fn); err != nil {
			var ce corruptError
			if errors.As(err, &ce) {
				return false, fmt.Errorf("%w: segment %s record at byte %d: %w", ErrCorrupt, seg.name, off, ce.err)
			}
			return false, err
		}
	}
}

// corruptError marks a record whose content does not decode.
type corruptError struct{ err error }

func (e corruptError) Error() string { return e.err.Error() }

// record decodes one record's events and passes the selected ones to fn.
func (s *scanner) record(h header, data []byte, lo, hi int64, fn func(Record) error) error {
	raw, err := s.dec.DecodeAll(data, s.raw[:0])
	if err != nil {
		return corruptError{fmt.Errorf("zstd: %w", err)}
	}
	s.raw = raw
	if len(raw) != int(h.rawLen) {
		return corruptError{fmt.Errorf("decompressed %d bytes, header says %d", len(raw), h.rawLen)}
	}
	arrival := time.UnixMilli(h.arrival).UTC()
	n := 0
	for len(raw) > 0 {
		nl := bytes.IndexByte(raw, '\n')
		if nl < 0 {
			return corruptError{errors.New("last line has no newline")}
		}
		line := raw[:nl]
		raw = raw[nl+1:]
		n++
		rec := Record{Seq: h.seq, Arrival: arrival}
		if err := json.Unmarshal(line, &rec.Event); err != nil {
			return corruptError{fmt.Errorf("line %d: %w", n, err)}
		}
		if ts := rec.Event.Time.UnixMilli(); ts < lo || ts >= hi {
			continue
		}
		if s.erasures && s.tombs.erased(rec.Event.Visitor, h.seq, rec.Event.Time.UnixMilli()) {
			s.stats.Erased++
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if n != int(h.count) {
		return corruptError{fmt.Errorf("%d lines, header says %d", n, h.count)}
	}
	return nil
}

// Verify reads every segment completely: each record's checksums, its zstd
// frame (with the frame's own content checksum), its line count and JSON,
// and each sealed segment's SHA-256 and statistics against the index. It
// returns nil or an error wrapping ErrCorrupt that lists every problem.
// A torn tail of an unsealed last segment is not a problem (a writer may be
// appending), but is reported through the logger.
func (r *Reader) Verify(ctx context.Context) error {
	v, _, err := r.view()
	if err != nil {
		return err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxRecordLimit))
	if err != nil {
		return fmt.Errorf("archive: zstd decoder: %w", err)
	}
	defer dec.Close()
	var problems []error
	for _, seg := range v.segs {
		if err := verifySegment(ctx, v.segDir, seg, dec, r.log); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			problems = append(problems, err)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, errors.Join(problems...))
}

func verifySegment(ctx context.Context, segDir string, seg segRef, dec *zstd.Decoder, log *slog.Logger) error {
	f, err := os.Open(filepath.Join(segDir, seg.name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("segment %s: %w", seg.name, err)
	}
	defer f.Close()
	sum := sha256.New()
	rr := newRecordReader(io.TeeReader(f, sum))
	st := newSegStats()
	s := scanner{dec: dec}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := rr.off
		h, data, err := rr.read()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = s.record(h, data, math.MinInt64, math.MaxInt64, func(Record) error { return nil })
		}
		if err != nil {
			if seg.tail && errors.Is(err, errBadRecord) {
				log.Info("unsealed last segment ends with an incomplete record", slog.String("segment", seg.name), slog.Int64("offset", off))
				return nil
			}
			return fmt.Errorf("segment %s at byte %d: %w", seg.name, off, err)
		}
		st.add(h, rr.hbuf[:], data)
	}
	if seg.info == nil {
		return nil
	}
	got := st.info(seg.name, seg.info.Hour, true)
	if hex.EncodeToString(sum.Sum(nil)) != seg.info.SHA256 {
		return fmt.Errorf("segment %s: sha256 differs from the index", seg.name)
	}
	want := *seg.info
	if got.Events != want.Events || got.Records != want.Records || got.Bytes != want.Bytes ||
		got.FirstSeq != want.FirstSeq || got.LastSeq != want.LastSeq ||
		!got.MinTime.Equal(want.MinTime) || !got.MaxTime.Equal(want.MaxTime) {
		return fmt.Errorf("segment %s: statistics differ from the index (file %+v)", seg.name, got)
	}
	return nil
}

package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"time"
)

// segStats accumulates the index fields of a segment as its records are
// written or read back.
type segStats struct {
	events, records, bytes int64
	firstSeq, lastSeq      uint64
	minTS, maxTS           int64
	sum                    hash.Hash // SHA-256 of every byte so far
}

func newSegStats() segStats { return segStats{sum: sha256.New()} }

// add accounts one record whose encoding is hdr followed by data (data may
// be nil when hdr holds the whole record).
func (s *segStats) add(h header, hdr, data []byte) {
	if s.records == 0 {
		s.firstSeq, s.minTS, s.maxTS = h.seq, h.minTS, h.maxTS
	}
	s.records++
	s.events += int64(h.count)
	s.bytes += int64(len(hdr) + len(data))
	s.lastSeq = h.seq
	s.minTS = min(s.minTS, h.minTS)
	s.maxTS = max(s.maxTS, h.maxTS)
	s.sum.Write(hdr)
	s.sum.Write(data)
}

// info returns the index entry of the segment described by s.
func (s *segStats) info(name string, hour time.Time, sealed bool) SegmentInfo {
	si := SegmentInfo{
		Name: name, Hour: hour, Sealed: sealed,
		Events: s.events, Records: s.records, Bytes: s.bytes,
		FirstSeq: s.firstSeq, LastSeq: s.lastSeq,
	}
	if s.records > 0 {
		si.MinTime = time.UnixMilli(s.minTS).UTC()
		si.MaxTime = time.UnixMilli(s.maxTS).UTC()
	}
	if sealed {
		si.SHA256 = hex.EncodeToString(s.sum.Sum(nil))
	}
	return si
}

// scanResult is what scanSegment found in a segment file.
type scanResult struct {
	stats segStats
	end   int64 // end of the valid prefix
	size  int64 // file size
	bad   error // why the bytes at end are not a record (nil when end == size)
}

// scanSegment reads every record of f, verifying both checksums of each,
// and stops at the first byte that is not the start of a valid record. It
// does not decompress (the CRC-32C of the compressed bytes is the check).
func scanSegment(ctx context.Context, f *os.File) (scanResult, error) {
	fi, err := f.Stat()
	if err != nil {
		return scanResult{}, err
	}
	res := scanResult{stats: newSegStats(), size: fi.Size()}
	rr := newRecordReader(io.NewSectionReader(f, 0, res.size))
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
		h, err := rr.next()
		if err == io.EOF {
			break
		}
		if err == nil && res.stats.records > 0 && h.seq <= res.stats.lastSeq {
			err = fmt.Errorf("%w: sequence %d after %d", errBadRecord, h.seq, res.stats.lastSeq)
		}
		var data []byte
		if err == nil {
			data, err = rr.readData(h)
		}
		if err != nil {
			if errors.Is(err, errBadRecord) {
				res.bad = err
				break
			}
			return res, err
		}
		res.stats.add(h, rr.hbuf[:], data)
	}
	res.end = rr.off
	return res, nil
}

// recoverSegment opens the segment at path for appending, truncating a torn
// tail (any bytes after the last valid record). It returns the open file
// positioned at its end and the statistics of what remains.
func recoverSegment(ctx context.Context, path string, a *Archive) (*os.File, segStats, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, segStats{}, fmt.Errorf("archive: open segment: %w", err)
	}
	res, err := scanSegment(ctx, f)
	if err != nil {
		f.Close()
		return nil, segStats{}, fmt.Errorf("archive: scan segment %s: %w", path, err)
	}
	if res.end < res.size {
		a.log.LogAttrs(ctx, slog.LevelWarn, "truncating torn tail of segment",
			slog.String("segment", path), slog.Int64("valid_bytes", res.end),
			slog.Int64("dropped_bytes", res.size-res.end), slog.String("reason", res.bad.Error()))
		if err := f.Truncate(res.end); err != nil {
			f.Close()
			return nil, segStats{}, fmt.Errorf("archive: truncate segment %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, segStats{}, fmt.Errorf("archive: sync segment %s: %w", path, err)
		}
		a.truncated.Add(res.size - res.end)
	}
	if _, err := f.Seek(res.end, io.SeekStart); err != nil {
		f.Close()
		return nil, segStats{}, fmt.Errorf("archive: seek segment %s: %w", path, err)
	}
	return f, res.stats, nil
}

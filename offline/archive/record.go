package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/kairoshq/kairos/internal/durable"
	"io"
	"strings"
	"time"
)

// Record framing (see doc.go for the full specification). A record is a
// zstd skippable frame carrying a fixed header, immediately followed by one
// ordinary zstd frame holding the NDJSON lines.
const (
	skipMagic     = 0x184D2A5A // zstd skippable frame, user nibble 0xA
	headerPayload = 60         // bytes of the skippable frame's payload
	headerSize    = 8 + headerPayload
	headerTag     = "KAR\x01" // format tag and version 1
)

// header describes one record.
type header struct {
	dataLen uint32 // compressed length of the zstd data frame
	dataCRC uint32 // CRC-32C of the data frame bytes
	rawLen  uint32 // decompressed length (NDJSON bytes)
	count   uint32 // number of events (lines)
	seq     uint64 // record sequence number, strictly increasing
	arrival int64  // writer clock at write time, unix ms
	minTS   int64  // smallest event ts, unix ms
	maxTS   int64  // largest event ts, unix ms
}

// putHeader encodes the skippable frame of h into b[:headerSize].
func putHeader(b []byte, h header) {
	_ = b[headerSize-1]
	binary.LittleEndian.PutUint32(b[0:], skipMagic)
	binary.LittleEndian.PutUint32(b[4:], headerPayload)
	p := b[8:]
	copy(p[0:4], headerTag)
	clear(p[20:24]) // reserved
	binary.LittleEndian.PutUint32(p[4:], h.dataLen)
	binary.LittleEndian.PutUint32(p[8:], h.dataCRC)
	binary.LittleEndian.PutUint32(p[12:], h.rawLen)
	binary.LittleEndian.PutUint32(p[16:], h.count)
	binary.LittleEndian.PutUint64(p[24:], h.seq)
	binary.LittleEndian.PutUint64(p[32:], uint64(h.arrival))
	binary.LittleEndian.PutUint64(p[40:], uint64(h.minTS))
	binary.LittleEndian.PutUint64(p[48:], uint64(h.maxTS))
	binary.LittleEndian.PutUint32(p[56:], durable.Checksum(p[:56]))
}

// errBadRecord marks bytes that are not a valid record: torn by a crash when
// at the tail of the active segment, corruption anywhere else.
var errBadRecord = errors.New("invalid record")

// parseHeader decodes and checks a header.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Errorf("%w: short header", errBadRecord)
	}
	if binary.LittleEndian.Uint32(b[0:]) != skipMagic || binary.LittleEndian.Uint32(b[4:]) != headerPayload {
		return h, fmt.Errorf("%w: bad magic", errBadRecord)
	}
	p := b[8:headerSize]
	if string(p[0:4]) != headerTag {
		return h, fmt.Errorf("%w: unknown tag %q", errBadRecord, p[0:4])
	}
	if durable.Checksum(p[:56]) != binary.LittleEndian.Uint32(p[56:]) {
		return h, fmt.Errorf("%w: header checksum mismatch", errBadRecord)
	}
	h.dataLen = binary.LittleEndian.Uint32(p[4:])
	h.dataCRC = binary.LittleEndian.Uint32(p[8:])
	h.rawLen = binary.LittleEndian.Uint32(p[12:])
	h.count = binary.LittleEndian.Uint32(p[16:])
	h.seq = binary.LittleEndian.Uint64(p[24:])
	h.arrival = int64(binary.LittleEndian.Uint64(p[32:]))
	h.minTS = int64(binary.LittleEndian.Uint64(p[40:]))
	h.maxTS = int64(binary.LittleEndian.Uint64(p[48:]))
	switch {
	case h.count == 0:
		return h, fmt.Errorf("%w: empty record", errBadRecord)
	case h.dataLen == 0 || h.dataLen > maxRecordLimit || h.rawLen > maxRecordLimit:
		return h, fmt.Errorf("%w: implausible lengths", errBadRecord)
	case h.minTS > h.maxTS:
		return h, fmt.Errorf("%w: min ts after max ts", errBadRecord)
	}
	return h, nil
}

// recordReader reads records one by one from a segment, tracking offsets.
type recordReader struct {
	r    *bufio.Reader
	off  int64 // offset of the next record
	hbuf [headerSize]byte
	data []byte
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, 256<<10)}
}

// next reads the next record header. It returns io.EOF at a clean end of
// input, an error wrapping errBadRecord (or io.ErrUnexpectedEOF) when the
// bytes at rr.off are not a complete valid header. After a successful next
// the caller must call either data or skip.
func (rr *recordReader) next() (header, error) {
	n, err := io.ReadFull(rr.r, rr.hbuf[:])
	if err != nil {
		if err == io.EOF && n == 0 {
			return header{}, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return header{}, fmt.Errorf("%w: truncated header", errBadRecord)
		}
		return header{}, err
	}
	return parseHeader(rr.hbuf[:])
}

// readData reads and checks the data frame of h. The returned slice is
// reused by the next call.
func (rr *recordReader) readData(h header) ([]byte, error) {
	if cap(rr.data) < int(h.dataLen) {
		rr.data = make([]byte, h.dataLen)
	}
	d := rr.data[:h.dataLen]
	if _, err := io.ReadFull(rr.r, d); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: truncated data frame", errBadRecord)
		}
		return nil, err
	}
	if durable.Checksum(d) != h.dataCRC {
		return nil, fmt.Errorf("%w: data checksum mismatch", errBadRecord)
	}
	rr.off += headerSize + int64(h.dataLen)
	return d, nil
}

// read reads the next record: its header and checked data frame (reused
// by the next call). It returns io.EOF at a clean end of input, and the
// errors of next and readData.
func (rr *recordReader) read() (header, []byte, error) {
	h, err := rr.next()
	if err != nil {
		return h, nil, err
	}
	data, err := rr.readData(h)
	return h, data, err
}

// skip discards the data frame of h without checking it.
func (rr *recordReader) skip(h header) error {
	n, err := rr.r.Discard(int(h.dataLen))
	if err != nil {
		if n < int(h.dataLen) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return fmt.Errorf("%w: truncated data frame", errBadRecord)
		}
		return err
	}
	rr.off += headerSize + int64(h.dataLen)
	return nil
}

// Segment naming: segments/YYYYMMDDTHH.ndjson.zst, UTC hour of creation.
const (
	segmentDir    = "segments"
	segmentSuffix = ".ndjson.zst"
	hourLayout    = "20060102T15"
)

// segmentName returns the file name of the segment of hour h.
func segmentName(h time.Time) string {
	return h.UTC().Format(hourLayout) + segmentSuffix
}

// parseSegmentName returns the hour of a segment file name.
func parseSegmentName(name string) (time.Time, bool) {
	base, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(base) != len(hourLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(hourLayout, base)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// hourOf truncates t to its UTC hour.
func hourOf(t time.Time) time.Time {
	return t.UTC().Truncate(time.Hour)
}

package durable

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Framing of a record:
//
//	length  uint32 LE   payload length (> 0, at most MaxFrame)
//	crc     uint32 LE   CRC-32C (Castagnoli) of the payload
//	payload length bytes
const (
	// FrameHeader is the size of a frame's header.
	FrameHeader = 8
	// MaxFrame bounds a payload's length.
	MaxFrame = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of b.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// NewFrame returns b emptied, with room for a frame header: encoders
// append the payload, then SealFrame fills the header in.
func NewFrame(b []byte) []byte {
	return append(b[:0], make([]byte, FrameHeader)...)
}

// SealFrame fills in the header of a frame built on NewFrame and returns
// it.
func SealFrame(b []byte) []byte {
	p := b[FrameHeader:]
	binary.LittleEndian.PutUint32(b[0:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[4:], Checksum(p))
	return b
}

// ScanFrames calls fn with each frame payload of r (valid until fn
// returns). It stops at the end of r, at fn's error (returned as err) or
// at the first frame that is cut short or fails its checksum: then torn
// says why, and good is the offset of the end of the last sound frame.
func ScanFrames(r io.Reader, fn func(payload []byte) error) (good int64, torn string, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [FrameHeader]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				return good, "", nil
			}
			if err == io.ErrUnexpectedEOF {
				return good, "truncated record header", nil
			}
			return good, "", err
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n == 0 || n > MaxFrame {
			return good, fmt.Sprintf("record length %d", n), nil
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return good, "truncated record", nil
			}
			return good, "", err
		}
		if Checksum(buf) != sum {
			return good, "checksum mismatch", nil
		}
		if err := fn(buf); err != nil {
			return good, "", err
		}
		good += FrameHeader + int64(n)
	}
}

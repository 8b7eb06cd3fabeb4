package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// Binary encodings of the stored state, shared by the Store adapters
// (engine/redisstore keeps them as Redis values, engine/embedded in its log
// and snapshot files). They are compact and fast: no field names, strings
// as uvarint length + bytes, times as varint Unix seconds + uvarint
// nanoseconds, floats as little-endian IEEE 754. Every encoding but the
// bare factors starts with a format version byte (1), so that a later
// format can be told apart from stored data.
//
//	HistoryEvent  1 | ID | Type | Item | Offer | Page | Weight f32 | Value f64 | Time
//	              2 | … the same … | Device   (version 2 when Device is set)
//	Session       1 | ID | Start | Last | Events varint
//	ItemState     1 | Row varint | Count varint | len(Factors) uvarint | f32… | len(Curv) uvarint | f32…
//	factors       f32… (4 bytes each, no header: AppendFactors, DecodeFactors)
//
// Decoded times are in UTC; a zero time stays zero. Decoded empty factor
// slices are nil.

// codecVersion is the format version byte of every encoding.
const codecVersion = 1

// historyDeviceVersion is the version byte of a history event that
// carries its Device (the version 1 encoding followed by the Device).
const historyDeviceVersion = 2

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt encoding")

// AppendBinary appends the binary encoding of e to b (encoding.BinaryAppender).
func (e HistoryEvent) AppendBinary(b []byte) ([]byte, error) {
	v := byte(codecVersion)
	if e.Device != "" {
		v = historyDeviceVersion
	}
	b = append(b, v)
	b = appendString(b, e.ID)
	b = appendString(b, string(e.Type))
	b = appendString(b, e.Item)
	b = appendString(b, e.Offer)
	b = appendString(b, e.Page)
	b = appendUint32(b, math.Float32bits(e.Weight))
	b = appendUint64(b, math.Float64bits(e.Value))
	b = appendTime(b, e.Time)
	if e.Device != "" {
		b = appendString(b, e.Device)
	}
	return b, nil
}

// MarshalBinary returns the binary encoding of e (encoding.BinaryMarshaler).
func (e HistoryEvent) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, 44+len(e.ID)+len(e.Type)+len(e.Item)+len(e.Offer)+len(e.Page)+len(e.Device)))
}

// UnmarshalBinary decodes an encoding made by AppendBinary into e
// (encoding.BinaryUnmarshaler). The strings of e are copies.
func (e *HistoryEvent) UnmarshalBinary(data []byte) error {
	return decodeHistoryEvent(e, data)
}

// UnmarshalBinaryString is UnmarshalBinary from a string; the strings of e
// share the memory of s (no copy), which suits values a client library
// already returns as strings.
func (e *HistoryEvent) UnmarshalBinaryString(s string) error {
	return decodeHistoryEvent(e, s)
}

func decodeHistoryEvent[T string | []byte](e *HistoryEvent, src T) error {
	d := decoder[T]{src: src}
	v := d.versionOf(codecVersion, historyDeviceVersion)
	e.ID = d.str()
	e.Type = d.eventType()
	e.Item = d.str()
	e.Offer = d.str()
	e.Page = d.str()
	e.Weight = math.Float32frombits(d.uint32())
	e.Value = math.Float64frombits(d.uint64())
	e.Time = d.time()
	e.Device = ""
	if v == historyDeviceVersion {
		e.Device = d.str()
	}
	return d.finish("history event")
}

// AppendBinary appends the binary encoding of s to b (encoding.BinaryAppender).
func (s Session) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, codecVersion)
	b = appendString(b, s.ID)
	b = appendTime(b, s.Start)
	b = appendTime(b, s.Last)
	return appendVarint(b, int64(s.Events)), nil
}

// MarshalBinary returns the binary encoding of s (encoding.BinaryMarshaler).
func (s Session) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, 32+len(s.ID)))
}

// UnmarshalBinary decodes an encoding made by AppendBinary into s
// (encoding.BinaryUnmarshaler).
func (s *Session) UnmarshalBinary(data []byte) error { return decodeSession(s, data) }

// UnmarshalBinaryString is UnmarshalBinary from a string (no copy of the
// session id).
func (s *Session) UnmarshalBinaryString(str string) error { return decodeSession(s, str) }

func decodeSession[T string | []byte](s *Session, src T) error {
	d := decoder[T]{src: src}
	d.version()
	s.ID = d.str()
	s.Start = d.time()
	s.Last = d.time()
	s.Events = int(d.varint())
	return d.finish("session")
}

// AppendBinary appends the binary encoding of st to b (encoding.BinaryAppender).
func (st ItemState) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, codecVersion)
	b = appendVarint(b, int64(st.Row))
	b = appendVarint(b, int64(st.Count))
	b = appendUvarint(b, uint64(len(st.Factors)))
	b = AppendFactors(b, st.Factors)
	b = appendUvarint(b, uint64(len(st.Curv)))
	return AppendFactors(b, st.Curv), nil
}

// MarshalBinary returns the binary encoding of st (encoding.BinaryMarshaler).
func (st ItemState) MarshalBinary() ([]byte, error) {
	return st.AppendBinary(make([]byte, 0, 16+4*(len(st.Factors)+len(st.Curv))))
}

// UnmarshalBinary decodes an encoding made by AppendBinary into st
// (encoding.BinaryUnmarshaler).
func (st *ItemState) UnmarshalBinary(data []byte) error { return decodeItemState(st, data) }

// UnmarshalBinaryString is UnmarshalBinary from a string.
func (st *ItemState) UnmarshalBinaryString(s string) error { return decodeItemState(st, s) }

// UnmarshalBinaryInto is UnmarshalBinary reusing the memory of
// st.Factors and st.Curv when it is large enough, so that a scan decoding
// many states into one batch allocates once (an empty vector still
// decodes as nil).
func (st *ItemState) UnmarshalBinaryInto(data []byte) error {
	d := decoder[[]byte]{src: data}
	d.version()
	st.Row = d.int32()
	st.Count = d.int32()
	st.Factors = d.floatsInto(st.Factors)
	st.Curv = d.floatsInto(st.Curv)
	return d.finish("item state")
}

func decodeItemState[T string | []byte](st *ItemState, src T) error {
	d := decoder[T]{src: src}
	d.version()
	st.Row = d.int32()
	st.Count = d.int32()
	st.Factors = d.floats()
	st.Curv = d.floats()
	return d.finish("item state")
}

// AppendFactors appends f to b as little-endian float32s, 4 bytes each,
// with no header.
func AppendFactors(b []byte, f []float32) []byte {
	for _, v := range f {
		b = appendUint32(b, math.Float32bits(v))
	}
	return b
}

// DecodeFactors decodes little-endian float32s (AppendFactors) from src
// into dst, reusing dst's memory when it is large enough, and returns the
// result: nil when src is empty. src is a []byte or a string.
func DecodeFactors[T string | []byte](dst []float32, src T) ([]float32, error) {
	if len(src)%4 != 0 {
		return nil, fmt.Errorf("engine: decode factors: %w: %d bytes is not a multiple of 4", errCorrupt, len(src))
	}
	n := len(src) / 4
	if n == 0 {
		return nil, nil
	}
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	for i := range dst {
		j := 4 * i
		dst[i] = math.Float32frombits(uint32(src[j]) | uint32(src[j+1])<<8 | uint32(src[j+2])<<16 | uint32(src[j+3])<<24)
	}
	return dst, nil
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendVarint(b []byte, v int64) []byte {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return appendUvarint(b, u)
}

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

func appendTime(b []byte, t time.Time) []byte {
	b = appendVarint(b, t.Unix())
	return appendUvarint(b, uint64(t.Nanosecond()))
}

// decoder reads an encoding from a string or a []byte; the first error
// sticks and later reads return zero values.
type decoder[T string | []byte] struct {
	src T
	off int
	err error
}

func (d *decoder[T]) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
		d.off = len(d.src)
	}
}

func (d *decoder[T]) finish(what string) error {
	if d.err == nil && d.off != len(d.src) {
		d.fail("%d trailing bytes", len(d.src)-d.off)
	}
	if d.err != nil {
		return fmt.Errorf("engine: decode %s: %w", what, d.err)
	}
	return nil
}

func (d *decoder[T]) version() { d.versionOf(codecVersion) }

// versionOf reads the version byte, which must be one of known, and
// returns it (0 after a failure).
func (d *decoder[T]) versionOf(known ...byte) byte {
	if d.off >= len(d.src) {
		d.fail("empty")
		return 0
	}
	v := d.src[d.off]
	if !slices.Contains(known, v) {
		d.fail("unknown format version %d", v)
		return 0
	}
	d.off++
	return v
}

func (d *decoder[T]) uvarint() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.off >= len(d.src) {
			d.fail("truncated varint")
			return 0
		}
		c := d.src[d.off]
		d.off++
		if c < 0x80 {
			if shift == 63 && c > 1 {
				break
			}
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
	}
	d.fail("varint overflows 64 bits")
	return 0
}

func (d *decoder[T]) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder[T]) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("%d overflows int32", v)
		return 0
	}
	return int32(v)
}

// span returns the bounds of the next n bytes.
func (d *decoder[T]) span(n uint64) (int, int, bool) {
	if n > uint64(len(d.src)-d.off) {
		d.fail("length %d exceeds the %d remaining bytes", n, len(d.src)-d.off)
		return 0, 0, false
	}
	i := d.off
	d.off += int(n)
	return i, d.off, true
}

func (d *decoder[T]) str() string {
	i, j, ok := d.span(d.uvarint())
	if !ok || i == j {
		return ""
	}
	return string(d.src[i:j])
}

// knownTypes are interned when decoding, so that a decoded history does
// not hold one copy of "view" per event.
var knownTypes = []signals.Type{
	signals.TypeView, signals.TypeClick, signals.TypeLike, signals.TypeDwell,
	signals.TypeScroll, signals.TypeAddToCart, signals.TypeConversion,
	signals.TypeImpression, signals.TypeIdentify, signals.TypeExit,
}

func (d *decoder[T]) eventType() signals.Type {
	i, j, ok := d.span(d.uvarint())
	if !ok || i == j {
		return ""
	}
	b := d.src[i:j]
	for _, t := range knownTypes {
		if string(b) == string(t) {
			return t
		}
	}
	return signals.Type(b)
}

func (d *decoder[T]) uint32() uint32 {
	i, _, ok := d.span(4)
	if !ok {
		return 0
	}
	s := d.src
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

func (d *decoder[T]) uint64() uint64 {
	lo := d.uint32()
	return uint64(lo) | uint64(d.uint32())<<32
}

func (d *decoder[T]) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail("nanoseconds %d out of range", nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder[T]) floats() []float32 { return d.floatsInto(nil) }

// floatsInto decodes a length-prefixed float32 vector into dst's memory
// when it is large enough (nil when the vector is empty).
func (d *decoder[T]) floatsInto(dst []float32) []float32 {
	n := d.uvarint()
	if n > uint64(len(d.src)-d.off)/4 {
		d.fail("%d floats exceed the %d remaining bytes", n, len(d.src)-d.off)
		return nil
	}
	i, j, _ := d.span(4 * n)
	f, _ := DecodeFactors(dst, d.src[i:j])
	return f
}

package embedded

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/kairoshq/kairos/engine"
)

// Record types. The write-ahead log holds the mutations; a snapshot holds
// a header, the whole state as visitor, seenBucket, rows, states, links
// and the primitives' records, and an end record. Types 2, 3, 7, 8, 14
// and 15 were the catalog items and the per-feature records of format 1
// (items, counters, promo, attention, experiments: all on the storage
// primitives since format 2) and are never reused.
const (
	recCommit        = 1
	recDeleteVisitor = 4
	recRows          = 5
	recStates        = 6
	recLinks         = 9 // engine.LinkStore: identity links (links.go)

	recSnapHeader = 10
	recVisitor    = 11
	recSeenBucket = 12
	recSnapEnd    = 13

	// The storage primitives, storage.Backend (prims.go, prims_records.go).
	recPutDoc     = 16
	recDeleteDoc  = 17
	recMapTxn     = 18
	recLogAppend  = 19
	recDeleteKeys = 20
	recDocs       = 21 // snapshot: a collection's version and documents
	recLogState   = 22 // snapshot: a log's expiry and entries
)

// snapMagic starts the header record of a snapshot.
const snapMagic = "kairos-embedded-snapshot"

// formatVersion is the version of the file formats, in the snapshot
// header and in the directory's format marker (format.go). Version 2
// added the storage primitives; directories of version 1 are refused.
const formatVersion = 2

var errCorruptRecord = errors.New("corrupt record")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendBlob appends what fn appends, preceded by its length (4 bytes).
func appendBlob(b []byte, fn func([]byte) []byte) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b = fn(b)
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

func appendFloats(b []byte, f []float32) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return engine.AppendFactors(b, f)
}

// appendOptFloats appends f, or that there is none when it is nil
// (reader.optFloats reads it).
func appendOptFloats(b []byte, f []float32) []byte {
	if f == nil {
		return append(b, 0)
	}
	return appendFloats(append(b, 1), f)
}

// Flags of a commit record's visitor update, in the byte that says
// whether factors follow (as appendOptFloats writes it): flagFactors,
// and flagReplace for engine.VisitorUpdate.Replace (records written
// before it existed have only 0 or 1).
const (
	flagFactors = 1
	flagReplace = 2
)

// appendUpdateFactors appends u's flags and factors (reader.updateFactors
// reads them).
func appendUpdateFactors(b []byte, u *engine.VisitorUpdate) []byte {
	var flags byte
	if u.Factors != nil {
		flags |= flagFactors
	}
	if u.Replace {
		flags |= flagReplace
	}
	b = append(b, flags)
	if u.Factors != nil {
		b = appendFloats(b, u.Factors)
	}
	return b
}

func appendSession(b []byte, s engine.Session) []byte {
	return appendBlob(b, func(b []byte) []byte { b, _ = s.AppendBinary(b); return b })
}

func appendEvents(b []byte, es []engine.HistoryEvent) []byte {
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i := range es {
		b = appendBlob(b, func(b []byte) []byte { b, _ = es[i].AppendBinary(b); return b })
	}
	return b
}

// encodeCommit appends a commit record made at now (Unix ns).
func encodeCommit(b []byte, now int64, ids []idHash, vs []engine.VisitorUpdate) []byte {
	b = append(b, recCommit)
	b = binary.AppendVarint(b, now)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, h := range ids {
		b = append(b, h[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for i := range vs {
		u := &vs[i]
		b = appendStr(b, u.ID)
		b = appendUpdateFactors(b, u)
		b = appendSession(b, u.Session)
		b = appendEvents(b, u.Append)
	}
	return b
}

// encodeVisitor appends a snapshot record of one visitor.
func encodeVisitor(b []byte, id string, v *visitor) []byte {
	b = append(b, recVisitor)
	b = appendStr(b, id)
	b = appendOptFloats(b, v.factors)
	b = appendSession(b, v.session)
	return appendEvents(b, v.history)
}

func encodeID(b []byte, typ byte, id string) []byte {
	return appendStr(append(b, typ), id)
}

func encodeRows(b []byte, first int32, ids []string) []byte {
	b = append(b, recRows)
	b = binary.AppendUvarint(b, uint64(first))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendStr(b, id)
	}
	return b
}

func encodeStates(b []byte, states []engine.ItemState) []byte {
	b = append(b, recStates)
	b = binary.AppendUvarint(b, uint64(len(states)))
	for i := range states {
		b = appendBlob(b, func(b []byte) []byte { b, _ = states[i].AppendBinary(b); return b })
	}
	return b
}

func encodeSeenBucket(b []byte, start, end int64, hs []idHash) []byte {
	b = append(b, recSeenBucket)
	b = binary.AppendVarint(b, start)
	b = binary.AppendVarint(b, end)
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func encodeSnapHeader(b []byte, seq uint64) []byte {
	b = append(b, recSnapHeader)
	b = appendStr(b, snapMagic)
	b = binary.AppendUvarint(b, formatVersion)
	return binary.AppendUvarint(b, seq)
}

func encodeSnapEnd(b []byte, records uint64) []byte {
	return binary.AppendUvarint(append(b, recSnapEnd), records)
}

// reader decodes a record payload; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errCorruptRecord}, args...)...)
		r.b = nil
	}
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 { return readVarint(r, binary.Uvarint, "uvarint") }

func (r *reader) varint() int64 { return readVarint(r, binary.Varint, "varint") }

// readVarint reads a number with decode (binary.Uvarint or Varint).
func readVarint[T int64 | uint64](r *reader, decode func([]byte) (T, int), what string) T {
	v, n := decode(r.b)
	if n <= 0 {
		r.fail("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of elements of at least min bytes each.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail("count %d exceeds the record", n)
		return 0
	}
	return int(n)
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.fail("length %d exceeds the record", n)
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) str() string { return string(r.bytes(r.count(1))) }

func (r *reader) blob() []byte {
	if len(r.b) < 4 {
		r.fail("truncated blob length")
		return nil
	}
	n := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	if n > math.MaxInt32 {
		r.fail("blob length %d", n)
		return nil
	}
	return r.bytes(int(n))
}

func (r *reader) hashes() []idHash {
	n := r.count(16)
	hs := make([]idHash, n)
	for i := range hs {
		copy(hs[i][:], r.bytes(16))
	}
	return hs
}

func (r *reader) floats() []float32 {
	n := r.count(4)
	f, err := engine.DecodeFactors(nil, r.bytes(4*n))
	if err != nil {
		r.fail("%v", err)
	}
	return f
}

// updateFactors reads what appendUpdateFactors appends: the factors (nil
// when none) and the replace flag.
func (r *reader) updateFactors() (f []float32, replace bool) {
	flags := r.byte()
	if flags&^(flagFactors|flagReplace) != 0 {
		r.fail("bad update flags %#x", flags)
		return nil, false
	}
	if flags&flagFactors != 0 {
		if f = r.floats(); f == nil {
			f = []float32{}
		}
	}
	return f, flags&flagReplace != 0
}

func (r *reader) optFloats() []float32 {
	switch r.byte() {
	case 0:
		return nil
	case 1:
		if f := r.floats(); f != nil {
			return f
		}
		return []float32{}
	}
	r.fail("bad factors flag")
	return nil
}

// unmarshalBlob decodes the next blob into v, or records the failure
// and returns false.
func (r *reader) unmarshalBlob(v encoding.BinaryUnmarshaler) bool {
	b := r.blob()
	if r.err != nil {
		return false
	}
	if err := v.UnmarshalBinary(b); err != nil {
		r.fail("%v", err)
		return false
	}
	return true
}

func (r *reader) session() engine.Session {
	var s engine.Session
	r.unmarshalBlob(&s)
	return s
}

func (r *reader) events() []engine.HistoryEvent {
	n := r.count(4)
	if n == 0 {
		return nil
	}
	es := make([]engine.HistoryEvent, n)
	for i := range es {
		if !r.unmarshalBlob(&es[i]) {
			return nil
		}
	}
	return es
}

func (r *reader) states() []engine.ItemState {
	out := make([]engine.ItemState, r.count(4))
	for i := range out {
		if !r.unmarshalBlob(&out[i]) {
			return nil
		}
	}
	return out
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

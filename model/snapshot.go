package model

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"
	"unsafe"
)

// Snapshot format (version 1), all integers little-endian:
//
//	magic      8 bytes  "KAIROSM\x00"
//	version    uint32   1
//	flags      uint32   bit 0: item statistics present; bit 1: item neighbours;
//	                    bit 2: slim (the users' Gram instead of their rows)
//	k          uint32   factors per row
//	users      uint64   number of user rows (slim: of users in the Gram)
//	items      uint64   number of item rows
//	metaLen    uint32   length of the JSON metadata (Meta) that follows
//	meta       metaLen bytes
//	[user ids  uint64 byte length, then users × (uvarint length, bytes)]  unless slim
//	item ids   uint64 byte length, then items × (uvarint length, bytes)
//	[X         users·k float32]                           unless slim
//	Y          items·k float32
//	[XᵀX       k·k float64, row-major]                    if slim
//	[counts    items int32; curvature items·k float32]   if flag bit 0
//	[per item its neighbour count uint32; then, for all of them, rows
//	 int32 and similarities float32]                      if flag bit 1
//	crc        uint32   CRC-32C (Castagnoli) of every byte before it
//
// Decoding checks the magic, the version, the sizes against sane limits
// and against the bytes actually present (a corrupt header cannot make the
// decoder allocate more than what the stream holds plus one chunk), that
// every float is finite, and the checksum. Any corruption or truncation is
// an error, never a panic. (Unique ids are checked when an Index is built
// from them.)
//
// A slim snapshot (Snapshot.Slim) is what a retrain publishes: engines
// need the users only through their Gram XᵀX (item updates solve against
// it), so it carries that k×k matrix instead of every user's id and row
// (8·k² bytes instead of about (4·k + 10) bytes a user: 281 MB → 26 MB for
// 1M users and 100k items at k = 64). Builds before the slim format
// refuse it as an implausible header.

// snapshotMagic identifies a Kairos model snapshot.
var snapshotMagic = [8]byte{'K', 'A', 'I', 'R', 'O', 'S', 'M', 0}

// SnapshotVersion is the format version Encode writes.
const SnapshotVersion = 1

const (
	flagItemStats  = 1 << 0
	flagNeighbours = 1 << 1
	flagSlim       = 1 << 2

	maxRows   = 1 << 31 // per table
	maxK      = 1024
	maxMeta   = 1 << 20
	maxIDLen  = 1 << 12
	readChunk = 1 << 20 // elements per incremental read
)

// ErrCorrupt is wrapped by every decoding error caused by the bytes.
var ErrCorrupt = errors.New("model: corrupt snapshot")

// Meta is the descriptive part of a snapshot.
type Meta struct {
	Params Params `json:"params"`
	// Created is when the snapshot was written.
	Created time.Time `json:"created"`
	// Cutoff is the time of the last event the model has learnt from (a
	// retrain's cut-off); engines replay events after it.
	Cutoff time.Time `json:"cutoff"`
	// Version identifies the model (a retrain sets its creation time in
	// nanoseconds); engines announce and compare it.
	Version uint64 `json:"version,omitempty"`
	// ArchiveSeq is the last archive record the model learnt from: an
	// engine that loads the model replays the records after it.
	ArchiveSeq uint64 `json:"archive_seq,omitempty"`
	// HistoryCut says the model learnt from the cluster's history
	// (offline/history), whose record numbers are not an engine's own
	// archive's: an engine that loads it replays its own archive's events
	// after Cutoff, by time, instead of the records after ArchiveSeq.
	HistoryCut bool `json:"history_cut,omitempty"`
	// Note is free text (e.g. the command that produced it).
	Note string `json:"note,omitempty"`
	// Blend, when set, is the popularity prior (ρ, κ) fitted with the
	// model on validation; engines rank with it from the swap on (τ stays
	// theirs).
	Blend *Blend `json:"blend,omitempty"`
}

// Snapshot is a complete model: ids, factor tables and item statistics.
// A slim snapshot (Slim) has no user ids or rows, only their Gram.
type Snapshot struct {
	Meta    Meta
	UserIDs []string
	ItemIDs []string
	Users   *Factors
	Items   *Factors
	// UserGram, set in a slim snapshot (Users and UserIDs nil), is XᵀX of
	// the user factors (k×k, row-major), and UserCount the number of
	// users it sums over.
	UserGram  []float64
	UserCount int
	// Stats is optional (nil when absent).
	Stats *ItemStats
	// Neighbours, optional, are the items' neighbours by item row
	// (BuildNeighbours; the blend's η weighs them).
	Neighbours *Neighbours
}

// Validate checks the shapes of s.
func (s *Snapshot) Validate() error {
	k := s.Meta.Params.Factors
	if k < 1 || k > maxK {
		return fmt.Errorf("model: snapshot k=%d outside [1, %d]", k, maxK)
	}
	if s.Items == nil || s.Users == nil && s.UserGram == nil {
		return errors.New("model: snapshot without factor tables")
	}
	if s.Items.K != k {
		return fmt.Errorf("model: snapshot item table has k=%d, params say %d", s.Items.K, k)
	}
	if s.Items.Rows() != len(s.ItemIDs) {
		return fmt.Errorf("model: snapshot has %d/%d item rows/ids", s.Items.Rows(), len(s.ItemIDs))
	}
	if err := s.validateUsers(k); err != nil {
		return err
	}
	if st := s.Stats; st != nil && (len(st.Counts) != len(s.ItemIDs) || st.Curv == nil || st.Curv.K != k || st.Curv.Rows() != len(s.ItemIDs)) {
		return errors.New("model: snapshot item statistics do not match the item table")
	}
	if nb := s.Neighbours; nb != nil {
		if nb.Rows() != len(s.ItemIDs) {
			return fmt.Errorf("model: snapshot has neighbours of %d item rows, %d items", nb.Rows(), len(s.ItemIDs))
		}
		if err := nb.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// validateUsers checks the user table, or a slim snapshot's Gram.
func (s *Snapshot) validateUsers(k int) error {
	if s.Users == nil {
		if len(s.UserGram) != k*k || s.UserIDs != nil || s.UserCount < 0 {
			return fmt.Errorf("model: slim snapshot has a Gram of %d entries (want %d), %d user ids, %d users", len(s.UserGram), k*k, len(s.UserIDs), s.UserCount)
		}
		for _, v := range s.UserGram {
			if v-v != 0 {
				return fmt.Errorf("model: slim snapshot has a non-finite Gram entry %v", v)
			}
		}
		return nil
	}
	if s.UserGram != nil {
		return errors.New("model: snapshot has both user rows and a user Gram")
	}
	if s.Users.K != k {
		return fmt.Errorf("model: snapshot user table has k=%d, params say %d", s.Users.K, k)
	}
	if s.Users.Rows() != len(s.UserIDs) {
		return fmt.Errorf("model: snapshot has %d/%d user rows/ids", s.Users.Rows(), len(s.UserIDs))
	}
	return nil
}

// Slim returns s without its user ids and rows, with their Gram XᵀX
// instead (what engines need of them; see the format above). The item
// tables are shared with s. A slim s is returned as it is.
func (s *Snapshot) Slim() *Snapshot {
	if s.Users == nil {
		return s
	}
	out := *s
	out.UserGram = make([]float64, s.Users.K*s.Users.K)
	gramInto(out.UserGram, s.Users, nil)
	out.UserCount = s.Users.Rows()
	out.Users, out.UserIDs = nil, nil
	return &out
}

// Encode writes s in the snapshot format.
func (s *Snapshot) Encode(w io.Writer) error {
	if err := s.Validate(); err != nil {
		return err
	}
	meta, err := json.Marshal(s.Meta)
	if err != nil {
		return fmt.Errorf("model: encode snapshot meta: %w", err)
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	var flags uint32
	if s.Stats != nil {
		flags |= flagItemStats
	}
	if s.Neighbours != nil {
		flags |= flagNeighbours
	}
	users := len(s.UserIDs)
	if s.Users == nil {
		flags |= flagSlim
		users = s.UserCount
	}
	hdr := make([]byte, 0, 40)
	hdr = append(hdr, snapshotMagic[:]...)
	hdr = binary.LittleEndian.AppendUint32(hdr, SnapshotVersion)
	hdr = binary.LittleEndian.AppendUint32(hdr, flags)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(s.Meta.Params.Factors))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(users))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(s.ItemIDs)))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(meta)))
	bw.Write(hdr)
	bw.Write(meta)
	if s.Users != nil {
		writeIDs(bw, s.UserIDs)
	}
	writeIDs(bw, s.ItemIDs)
	if s.Users != nil {
		writeFloats(bw, s.Users.Data)
	}
	writeFloats(bw, s.Items.Data)
	if s.Users == nil {
		writeFloat64s(bw, s.UserGram)
	}
	if s.Stats != nil {
		writeInt32s(bw, s.Stats.Counts)
		writeFloats(bw, s.Stats.Curv.Data)
	}
	if nb := s.Neighbours; nb != nil {
		counts := make([]int32, nb.Rows())
		for i := range counts {
			counts[i] = int32(nb.Ptr[i+1] - nb.Ptr[i])
		}
		writeInt32s(bw, counts)
		writeInt32s(bw, nb.Idx)
		writeFloats(bw, nb.Sim)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("model: write snapshot: %w", err)
	}
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], crc.Sum32())
	if _, err := w.Write(tail[:]); err != nil {
		return fmt.Errorf("model: write snapshot: %w", err)
	}
	return nil
}

func writeIDs(w *bufio.Writer, ids []string) {
	var b [binary.MaxVarintLen64]byte
	total := 0
	for _, id := range ids {
		total += binary.PutUvarint(b[:], uint64(len(id))) + len(id)
	}
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], uint64(total))
	w.Write(l[:])
	for _, id := range ids {
		n := binary.PutUvarint(b[:], uint64(len(id)))
		w.Write(b[:n])
		w.WriteString(id)
	}
}

// littleEndian reports whether the machine stores numbers little-endian, so
// that float tables can be written and read as raw bytes.
var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

func writeFloats(w *bufio.Writer, v []float32) {
	if littleEndian && len(v) > 0 {
		w.Write(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
		return
	}
	var b [4]byte
	for _, x := range v {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		w.Write(b[:])
	}
}

func writeFloat64s(w *bufio.Writer, v []float64) {
	var b [8]byte
	for _, x := range v {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
		w.Write(b[:])
	}
}

func writeInt32s(w *bufio.Writer, v []int32) {
	var b [4]byte
	for _, x := range v {
		binary.LittleEndian.PutUint32(b[:], uint32(x))
		w.Write(b[:])
	}
}

// decoder reads a snapshot while hashing every byte.
type decoder struct {
	r   *bufio.Reader
	crc hash.Hash32
	// remaining is how many bytes the stream still holds when its size is
	// known (bytes.Reader, os.File), else 0.
	remaining int64
}

func (d *decoder) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.crc.Write(p[:n])
	d.remaining -= int64(n)
	return n, err
}

func (d *decoder) ReadByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err == nil {
		d.crc.Write([]byte{b})
		d.remaining--
	}
	return b, err
}

func (d *decoder) full(p []byte) error {
	if _, err := io.ReadFull(d, p); err != nil {
		return corrupt("truncated (%v)", err)
	}
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Decode reads a snapshot written by Encode.
func Decode(r io.Reader) (*Snapshot, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 1<<16), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli)), remaining: sizeOf(r)}
	var hdr [40]byte
	if err := d.full(hdr[:]); err != nil {
		return nil, err
	}
	if [8]byte(hdr[:8]) != snapshotMagic {
		return nil, corrupt("not a Kairos model snapshot (bad magic)")
	}
	le := binary.LittleEndian
	if v := le.Uint32(hdr[8:]); v != SnapshotVersion {
		return nil, fmt.Errorf("model: snapshot version %d not supported (want %d)", v, SnapshotVersion)
	}
	flags := le.Uint32(hdr[12:])
	k := int(le.Uint32(hdr[16:]))
	nu, ni := le.Uint64(hdr[20:]), le.Uint64(hdr[28:])
	metaLen := int(le.Uint32(hdr[36:]))
	if flags&^(flagItemStats|flagNeighbours|flagSlim) != 0 || k < 1 || k > maxK || nu > maxRows || ni > maxRows || metaLen > maxMeta {
		return nil, corrupt("implausible header (flags %#x, k %d, users %d, items %d, meta %d bytes)", flags, k, nu, ni, metaLen)
	}
	s := &Snapshot{}
	meta := make([]byte, metaLen)
	if err := d.full(meta); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(meta, &s.Meta); err != nil {
		return nil, corrupt("metadata: %v", err)
	}
	if s.Meta.Params.Factors != k {
		return nil, corrupt("metadata says k=%d, header %d", s.Meta.Params.Factors, k)
	}
	err := d.tables(s, flags&flagSlim != 0, int(nu), int(ni), k)
	if err != nil {
		return nil, err
	}
	if flags&flagItemStats != 0 {
		if s.Stats, err = d.stats(int(ni), k); err != nil {
			return nil, fmt.Errorf("item statistics: %w", err)
		}
	}
	if flags&flagNeighbours != 0 {
		if s.Neighbours, err = d.neighbours(int(ni)); err != nil {
			return nil, fmt.Errorf("item neighbours: %w", err)
		}
	}
	want := d.crc.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(d.r, tail[:]); err != nil {
		return nil, corrupt("truncated before checksum")
	}
	if got := le.Uint32(tail[:]); got != want {
		return nil, corrupt("checksum mismatch (stored %08x, computed %08x)", got, want)
	}
	if err := s.Meta.Params.Validate(); err != nil {
		return nil, corrupt("params: %v", err)
	}
	if s.Neighbours != nil {
		if err := s.Neighbours.Validate(); err != nil {
			return nil, corrupt("%v", err)
		}
	}
	return s, nil
}

// sizeOf returns the number of unread bytes of r when it can tell, else 0.
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case *os.File:
		st, err := v.Stat()
		if err != nil {
			return 0
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0
		}
		return st.Size() - pos
	}
	return 0
}

func (d *decoder) ids(n int) ([]string, error) {
	var l [8]byte
	if err := d.full(l[:]); err != nil {
		return nil, err
	}
	total := binary.LittleEndian.Uint64(l[:])
	if total > uint64(n)*(maxIDLen+2) {
		return nil, corrupt("id block of %d bytes for %d ids", total, n)
	}
	block, err := d.bytes(int(total))
	if err != nil {
		return nil, err
	}
	all := string(block) // one allocation; ids are substrings of it
	ids := make([]string, 0, min(uint64(n), total))
	for pos := 0; len(ids) < n; {
		v, w := binary.Uvarint(block[pos:])
		if w <= 0 || v > maxIDLen || uint64(pos+w)+v > total {
			return nil, corrupt("bad id length at byte %d of the id block", pos)
		}
		pos += w
		ids = append(ids, all[pos:pos+int(v)])
		pos += int(v)
		if len(ids) == n && pos != int(total) {
			return nil, corrupt("id block has %d trailing bytes", int(total)-pos)
		}
	}
	if n == 0 && total != 0 {
		return nil, corrupt("id block of %d bytes for no ids", total)
	}
	return ids, nil
}

// bytes reads n bytes, growing the buffer as bytes arrive so that a lying
// header cannot force a huge allocation.
func (d *decoder) bytes(n int) ([]byte, error) {
	out := make([]byte, 0, min(n, 4*readChunk))
	for len(out) < n {
		c := min(n-len(out), 4*readChunk)
		if cap(out)-len(out) < c {
			out = append(out[:cap(out)], make([]byte, c)...)[:len(out)]
		}
		if err := d.full(out[len(out) : len(out)+c]); err != nil {
			return nil, err
		}
		out = out[:len(out)+c]
	}
	return out, nil
}

// floats reads n float32 values and checks that every one is finite. When
// the stream's remaining size is known the table is read in place; else it
// grows as bytes arrive, so that a lying header cannot force a huge
// allocation.
func (d *decoder) floats(n int) ([]float32, error) {
	if !littleEndian || n == 0 || int64(4*n) > d.remaining {
		raw, err := d.bytes(4 * n)
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, checkFinite(out)
	}
	out := make([]float32, n)
	if err := d.full(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n)); err != nil {
		return nil, err
	}
	return out, checkFinite(out)
}

func checkFinite(v []float32) error {
	for _, x := range v {
		if x-x != 0 { // NaN or ±Inf
			return corrupt("non-finite factor %v", x)
		}
	}
	return nil
}

// tables reads the ids and factor tables of s: the users' ids and rows,
// or in a slim snapshot their Gram after the items.
func (d *decoder) tables(s *Snapshot, slim bool, nu, ni, k int) error {
	var err error
	if !slim {
		if s.UserIDs, err = d.ids(nu); err != nil {
			return fmt.Errorf("user ids: %w", err)
		}
	}
	if s.ItemIDs, err = d.ids(ni); err != nil {
		return fmt.Errorf("item ids: %w", err)
	}
	if !slim {
		if s.Users, err = d.factors(nu, k); err != nil {
			return fmt.Errorf("user factors: %w", err)
		}
	}
	if s.Items, err = d.factors(ni, k); err != nil {
		return fmt.Errorf("item factors: %w", err)
	}
	if slim {
		s.UserCount = nu
		if s.UserGram, err = d.float64s(k * k); err != nil {
			return fmt.Errorf("user Gram: %w", err)
		}
	}
	return nil
}

// float64s reads n finite float64 values (n is at most maxK², so the
// allocation is bounded).
func (d *decoder) float64s(n int) ([]float64, error) {
	raw, err := d.bytes(8 * n)
	if err != nil {
		return nil, err
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		if out[i]-out[i] != 0 {
			return nil, corrupt("non-finite Gram entry %v", out[i])
		}
	}
	return out, nil
}

func (d *decoder) factors(rows, k int) (*Factors, error) {
	data, err := d.floats(rows * k)
	if err != nil {
		return nil, err
	}
	return &Factors{K: k, Data: data}, nil
}

func (d *decoder) stats(n, k int) (*ItemStats, error) {
	counts := make([]int32, 0, min(n, readChunk))
	var b [4]byte
	for range n {
		if err := d.full(b[:]); err != nil {
			return nil, err
		}
		c := int32(binary.LittleEndian.Uint32(b[:]))
		if c < 0 {
			return nil, corrupt("negative item count %d", c)
		}
		counts = append(counts, c)
	}
	curv, err := d.factors(n, k)
	if err != nil {
		return nil, err
	}
	return &ItemStats{Counts: counts, Curv: curv}, nil
}

// maxNeighbours is the most neighbours an item may have in a snapshot.
const maxNeighbours = 1000

func (d *decoder) int32s(n int) ([]int32, error) {
	raw, err := d.bytes(4 * n)
	if err != nil {
		return nil, err
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

func (d *decoder) neighbours(n int) (*Neighbours, error) {
	counts, err := d.int32s(n)
	if err != nil {
		return nil, err
	}
	ptr, err := neighbourPtr(counts)
	if err != nil {
		return nil, err
	}
	nb := &Neighbours{Ptr: ptr}
	total := int(nb.Ptr[n])
	if nb.Idx, err = d.int32s(total); err != nil {
		return nil, err
	}
	if nb.Sim, err = d.floats(total); err != nil {
		return nil, err
	}
	return nb, nil
}

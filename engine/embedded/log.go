package embedded

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/durable"
	"github.com/kairoshq/kairos/internal/fileperm"
)

// Files of a data directory.
const (
	lockName    = "LOCK"
	snapName    = "snapshot.kdb"
	snapTmpName = "snapshot.kdb.tmp"
	walPrefix   = "wal-"
	walSuffix   = ".log"
)

// Framing of every record of the log and of the snapshot: durable's
// frames (length, CRC-32C, payload), the first byte of whose payload is
// the record type.
const (
	frameHeader = durable.FrameHeader
	maxRecord   = durable.MaxFrame
)

// newFrame returns b emptied, with room for a frame header
// (durable.NewFrame).
func newFrame(b []byte) []byte { return durable.NewFrame(b) }

// sealFrame fills a frame's header in (durable.SealFrame).
func sealFrame(b []byte) []byte { return durable.SealFrame(b) }

func walName(seq uint64) string {
	return fmt.Sprintf("%s%020d%s", walPrefix, seq, walSuffix)
}

// listWALs returns the sequence numbers of the log files of dir, ascending.
func listWALs(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, walPrefix) || !strings.HasSuffix(name, walSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, walPrefix), walSuffix), 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// scanRecords calls fn with each record payload of r (valid until fn
// returns). It stops at the end of r, at fn's error (returned as err) or
// at the first record that is cut short or fails its checksum: then torn
// says why, and good is the offset of the end of the last sound record.
func scanRecords(r io.Reader, fn func(payload []byte) error) (good int64, torn string, err error) {
	return durable.ScanFrames(r, fn)
}

// replayWAL applies the records of one log file to st, up to the size
// the file has when it is opened (a writer may be appending: OpenReadOnly).
func replayWAL(path string, st *state, limit int) (good int64, torn string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	return scanRecords(io.LimitReader(f, fi.Size()), func(p []byte) error {
		if err := st.apply(p, limit); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		return nil
	})
}

// apply applies one log record (or snapshot record) to st.
func (st *state) apply(p []byte, limit int) error {
	r := reader{b: p[1:]}
	switch p[0] {
	case recCommit:
		now := r.varint()
		ids := r.hashes()
		n := r.count(6)
		vs := make([]engine.VisitorUpdate, n)
		for i := range vs {
			vs[i].ID = r.str()
			vs[i].Factors, vs[i].Replace = r.updateFactors()
			vs[i].Session, vs[i].Append = r.session(), r.events()
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		st.applyCommit(now, ids, vs, limit)
	case recVisitor:
		id := r.str()
		v := &visitor{factors: r.optFloats(), session: r.session()}
		v.history = appendHistory(nil, r.events(), limit)
		if err := r.done(); err != nil {
			return fmt.Errorf("visitor: %w", err)
		}
		st.visitors[id] = v
	case recDeleteVisitor:
		id := r.str()
		if err := r.done(); err != nil {
			return fmt.Errorf("delete visitor: %w", err)
		}
		delete(st.visitors, id)
	case recSeenBucket:
		start, end := r.varint(), r.varint()
		hs := r.hashes()
		if err := r.done(); err != nil {
			return fmt.Errorf("seen bucket: %w", err)
		}
		st.seen.restore(start, end, hs)
	case recRows:
		first := r.uvarint()
		n := r.count(1)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = r.str()
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("rows: %w", err)
		}
		if first > 1<<31-1 {
			return fmt.Errorf("rows: %w: first row %d", errCorruptRecord, first)
		}
		if err := st.applyRows(int32(first), ids); err != nil {
			return fmt.Errorf("rows: %w: %v", errCorruptRecord, err)
		}
	case recStates:
		states := r.states()
		if err := r.done(); err != nil {
			return fmt.Errorf("item states: %w", err)
		}
		st.applyStates(states)
	case recLinks:
		if err := st.applyLink(&r); err != nil {
			return fmt.Errorf("links: %w", err)
		}
	case recPutDoc, recDeleteDoc, recMapTxn, recLogAppend, recDeleteKeys, recDocs, recLogState:
		return st.applyPrim(p[0], &r)
	default:
		return fmt.Errorf("%w: unknown record type %d", errCorruptRecord, p[0])
	}
	return nil
}

// Chunk sizes of the snapshot's records.
const (
	snapSeenChunk  = 1 << 16
	snapRowsChunk  = 1 << 12
	snapStateChunk = 1 << 10
)

// writeSnapshot writes st as the snapshot covering the logs before seq
// (leaving out the maps and logs expired at now, Unix ns):
// to a temporary file, fsynced, then renamed over the previous snapshot
// and the directory fsynced, so that a crash leaves the old snapshot or
// the new one, never a partial file.
func writeSnapshot(dir string, seq uint64, st *state, now int64) (size, secOff, secEnd int64, err error) {
	tmp := filepath.Join(dir, snapTmpName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileperm.FileMode)
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var b []byte
	var records uint64
	emit := func(enc func([]byte) []byte) error {
		b = sealFrame(enc(newFrame(b)))
		records++
		size += int64(len(b))
		_, err := w.Write(b)
		return err
	}
	if err := emit(func(b []byte) []byte { return encodeSnapHeader(b, seq) }); err != nil {
		return 0, 0, 0, err
	}
	for id, v := range st.visitors {
		if err := emit(func(b []byte) []byte { return encodeVisitor(b, id, v) }); err != nil {
			return 0, 0, 0, err
		}
	}
	for _, bk := range st.seen.buckets {
		hs := make([]idHash, 0, min(len(bk.ids), snapSeenChunk))
		flush := func() error {
			err := emit(func(b []byte) []byte { return encodeSeenBucket(b, bk.start, bk.end, hs) })
			hs = hs[:0]
			return err
		}
		for h := range bk.ids {
			if hs = append(hs, h); len(hs) == snapSeenChunk {
				if err := flush(); err != nil {
					return 0, 0, 0, err
				}
			}
		}
		if err := flush(); err != nil {
			return 0, 0, 0, err
		}
	}
	for i := 0; i < len(st.rowIDs); i += snapRowsChunk {
		chunk := st.rowIDs[i:min(i+snapRowsChunk, len(st.rowIDs))]
		if err := emit(func(b []byte) []byte { return encodeRows(b, int32(i), chunk) }); err != nil {
			return 0, 0, 0, err
		}
	}
	// The item states: the base's (read from the previous snapshot's
	// file) that have no newer state, then the newer ones by row. They
	// are one contiguous section, the new base.
	secOff = size
	if err := st.base.scan(st.states, func(batch []engine.ItemState) error {
		return emit(func(b []byte) []byte { return encodeStates(b, batch) })
	}); err != nil {
		return 0, 0, 0, err
	}
	rows := make([]int32, 0, len(st.states))
	for row := range st.states {
		rows = append(rows, row)
	}
	slices.Sort(rows)
	chunk := make([]engine.ItemState, 0, snapStateChunk)
	for i, row := range rows {
		chunk = append(chunk, st.states[row])
		if len(chunk) == snapStateChunk || i == len(rows)-1 {
			if err := emit(func(b []byte) []byte { return encodeStates(b, chunk) }); err != nil {
				return 0, 0, 0, err
			}
			chunk = chunk[:0]
		}
	}
	secEnd = size
	if err := writeLinks(st, emit); err != nil {
		return 0, 0, 0, err
	}
	if err := writePrims(st, now, emit); err != nil {
		return 0, 0, 0, err
	}
	if err := emit(func(b []byte) []byte { return encodeSnapEnd(b, records+1) }); err != nil {
		return 0, 0, 0, err
	}
	if err := w.Flush(); err != nil {
		return 0, 0, 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, 0, err
	}
	if err := f.Close(); err != nil {
		return 0, 0, 0, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, snapName)); err != nil {
		return 0, 0, 0, err
	}
	return size, secOff, secEnd, durable.SyncDir(dir)
}

var errCorruptSnapshot = errors.New("corrupt snapshot")

// readSnapshot loads the snapshot at path into st and returns the
// sequence number of the first log it does not cover.
func readSnapshot(path string, st *state, limit int) (seq uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	// The item states are not decoded: the file stays open as the
	// store's state base, their section of it (statebase.go).
	secOff, secEnd := int64(-1), int64(-1)
	defer func() {
		if err == nil && secOff >= 0 {
			st.base = &stateBase{f: f, off: secOff, end: secEnd}
			return
		}
		f.Close()
	}()
	var records uint64
	var off int64
	ended := false
	st.noRowIndex = true
	_, torn, err := scanRecords(f, func(p []byte) error {
		records++
		at := off
		off += frameHeader + int64(len(p))
		if ended {
			return fmt.Errorf("%w: records after the end record", errCorruptSnapshot)
		}
		switch {
		case records == 1:
			r := reader{b: p[1:]}
			magic := r.str()
			version := r.uvarint()
			seq = r.uvarint()
			if p[0] != recSnapHeader || r.done() != nil || magic != snapMagic {
				return fmt.Errorf("%w: no snapshot header", errCorruptSnapshot)
			}
			if version != formatVersion {
				return fmt.Errorf("%w: format version %d, this build reads %d", errCorruptSnapshot, version, formatVersion)
			}
		case p[0] == recSnapEnd:
			r := reader{b: p[1:]}
			if n := r.uvarint(); r.done() != nil || n != records {
				return fmt.Errorf("%w: end record counts %d records, read %d", errCorruptSnapshot, n, records)
			}
			ended = true
		case p[0] == recStates && (secOff < 0 || at == secEnd):
			if secOff < 0 {
				secOff = at
			}
			secEnd = off
		case p[0] == recVisitor || p[0] == recSeenBucket || p[0] == recRows || p[0] == recStates || p[0] == recLinks ||
			p[0] == recDocs || p[0] == recMapTxn || p[0] == recLogState:
			if err := st.apply(p, limit); err != nil {
				return fmt.Errorf("%w: %w", errCorruptSnapshot, err)
			}
		default:
			return fmt.Errorf("%w: unexpected record type %d", errCorruptSnapshot, p[0])
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if torn != "" {
		return 0, fmt.Errorf("%w: %s after %d records", errCorruptSnapshot, torn, records)
	}
	if !ended {
		return 0, fmt.Errorf("%w: no end record", errCorruptSnapshot)
	}
	if err := st.indexRows(); err != nil {
		return 0, fmt.Errorf("%w: rows: %w: %v", errCorruptSnapshot, errCorruptRecord, err)
	}
	return seq, nil
}

package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kairoshq/kairos/internal/durable"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kairoshq/kairos/internal/fileperm"
	"github.com/kairoshq/kairos/signals"
)

// Archive is the writer side of an event archive directory; it also reads
// (Scan), erases (Erase, Compact) and expires (ApplyRetention). One Archive
// per directory: Open takes an exclusive lock. Its methods are safe for
// concurrent use.
//
// Lock order: closeMu, then maintMu, then stateMu, then tombs.mu; the
// writer goroutine takes stateMu (and nothing else) while it holds its own
// state.
type Archive struct {
	opts   Options
	log    *slog.Logger
	dir    string
	segDir string
	lock   *durable.Lock
	tombs  *tombstones

	// closeMu orders Append's enqueue against Close: Append sends while
	// holding the read lock, so once Close has set closed under the write
	// lock, the queue only drains.
	closeMu   sync.RWMutex
	closed    bool
	reqs      chan *request
	closing   chan struct{}
	exited    chan struct{}
	sealReqs  chan chan error // Compact asks the writer to seal the active segment
	closeOnce sync.Once
	closeErr  error

	bgCtx      context.Context // the archive's own background context
	bgCancel   context.CancelFunc
	bg         sync.WaitGroup
	retainKick chan struct{}

	failed atomic.Pointer[error] // sticky write/fsync failure

	w writerState // owned by the writer goroutine

	// stateMu guards idx and active: what an in-process Scan snapshots.
	stateMu sync.Mutex
	idx     indexFile
	active  activeView

	// maintMu serialises Compact and ApplyRetention; maintClosed tells a
	// waiting one that Close ran meanwhile.
	maintMu     sync.Mutex
	maintClosed bool

	lastSeq   atomic.Uint64
	truncated atomic.Int64
	nEvents   atomic.Uint64
	nRecords  atomic.Uint64
	nBytes    atomic.Uint64
	nRaw      atomic.Uint64
	nSyncs    atomic.Uint64

	reqPool sync.Pool

	// testWriteGap, set only by the crash test's writer process, splits
	// every write in two with a pause between, widening the window in
	// which a kill -9 leaves a torn record behind.
	testWriteGap time.Duration
}

// activeView is the part of the active segment that readers may see.
type activeView struct {
	name     string
	hour     time.Time
	st       segStats // st.bytes is the committed size; st.sum is not used
	erasures int      // as activeSeg.erasures
}

// activeSeg is the writer's open segment.
type activeSeg struct {
	f    *os.File
	name string
	hour time.Time
	st   segStats
	// erasures is the Erasures of the index entry of a reopened segment:
	// it was compacted against that many tombstones, and the records
	// appended since come after all of them.
	erasures int
}

// writerState belongs to the writer goroutine (and to Open before the
// goroutine starts).
type writerState struct {
	enc         *zstd.Encoder
	seg         *activeSeg
	seq         uint64 // last assigned record sequence number
	lastArrival int64
	dirty       bool // written since the last fsync
	batch       []*request
	raw         []byte // NDJSON of the record being built
	wbuf        []byte // encoded records of the current write
	hdrs        []header
	cur         header // stats of the record being built
}

// request is one Append call: its events encoded as NDJSON.
type request struct {
	lines []byte  // NDJSON
	ends  []int   // end offset of each line in lines
	ts    []int64 // event time of each line, unix ms
	keys  []string
	ev    signals.Event
	done  chan error
	// slow path (see fastEncode)
	buf bytes.Buffer
	enc *json.Encoder
}

// Stats are counters since Open.
type Stats struct {
	Events    uint64 // events appended
	Records   uint64 // records (zstd frames) written
	Bytes     uint64 // bytes written to segments, framing included
	RawBytes  uint64 // NDJSON bytes before compression
	Syncs     uint64 // fsync calls on segment files
	LastSeq   uint64 // sequence number of the last record written
	Truncated int64  // bytes of torn tails dropped by Open
}

// Open opens (creating if needed) the archive in opts.Dir, takes its
// writer lock, repairs what a crash left behind (torn tails are truncated,
// missing index entries rebuilt by scanning) and starts the writer.
func Open(ctx context.Context, opts Options) (*Archive, error) {
	opts = opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	segDir := filepath.Join(opts.Dir, segmentDir)
	if err := os.MkdirAll(segDir, fileperm.DirMode); err != nil {
		return nil, fmt.Errorf("archive: create %s: %w", segDir, err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	a := &Archive{
		opts:       opts,
		log:        opts.Logger.With(slog.String("component", "archive")),
		dir:        opts.Dir,
		segDir:     segDir,
		lock:       lock,
		reqs:       make(chan *request, opts.QueueLength),
		closing:    make(chan struct{}),
		exited:     make(chan struct{}),
		sealReqs:   make(chan chan error),
		retainKick: make(chan struct{}, 1),
	}
	a.reqPool.New = func() any {
		r := &request{done: make(chan error, 1)}
		r.enc = json.NewEncoder(&r.buf)
		r.enc.SetEscapeHTML(false)
		return r
	}
	ok := false
	defer func() {
		if !ok {
			if a.w.seg != nil {
				a.w.seg.f.Close()
			}
			if a.tombs != nil {
				a.tombs.close()
			}
			lock.Unlock()
		}
	}()
	if err := a.makePrivate(); err != nil {
		return nil, err
	}
	a.w.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevel(opts.Level)),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, fmt.Errorf("archive: zstd encoder: %w", err)
	}
	if a.tombs, err = loadTombstones(a.dir, true, a.log); err != nil {
		return nil, err
	}
	if err := a.recover(ctx); err != nil {
		return nil, err
	}
	a.lastSeq.Store(a.w.seq)
	a.bgCtx, a.bgCancel = context.WithCancel(context.Background())
	go a.run()
	if opts.Retention > 0 {
		a.bg.Add(1)
		go a.maintain()
		a.retainKick <- struct{}{}
	}
	ok = true
	return a, nil
}

// makePrivate removes the group and other permission bits of the archive
// directory and its files (raw events), which versions before 0700/0600
// created 0755/0644.
func (a *Archive) makePrivate() error {
	n, err := fileperm.PrivateTree(a.dir)
	if n > 0 {
		a.log.Warn("made the archive's files private: they were readable by other users of this machine (created by hand, by an older version, or copied)",
			slog.String("dir", a.dir), slog.Int("entries", n))
	}
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// recover brings the directory to a consistent state; see Open.
func (a *Archive) recover(ctx context.Context) error {
	_ = os.Remove(filepath.Join(a.dir, indexName+".tmp")) // written by earlier versions
	if tmps, err := filepath.Glob(filepath.Join(a.dir, durable.TempPattern)); err == nil {
		for _, t := range tmps {
			_ = os.Remove(t) // an index write cut short (durable.WriteFile)
		}
	}
	if ents, err := os.ReadDir(a.segDir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				a.log.Warn("removing leftover temporary file", slog.String("file", e.Name()))
				_ = os.Remove(filepath.Join(a.segDir, e.Name()))
			}
		}
	}
	idx, err := readIndex(a.dir)
	if err != nil {
		return err
	}
	if idx.Compacting != "" {
		a.log.Warn("compaction was interrupted; rebuilding the segment's index entry", slog.String("segment", idx.Compacting))
		idx.remove(idx.Compacting)
		idx.Compacting = ""
	}
	names, err := listSegments(a.dir)
	if err != nil {
		return err
	}
	onDisk := map[string]bool{}
	for _, n := range names {
		onDisk[n] = true
	}
	for _, s := range slices.Clone(idx.Segments) {
		fi, err := os.Stat(filepath.Join(a.segDir, s.Name))
		switch {
		case err != nil && !onDisk[s.Name]:
			a.log.Warn("index names a missing segment; dropping the entry", slog.String("segment", s.Name))
			idx.remove(s.Name)
		case err != nil:
			return fmt.Errorf("archive: stat segment: %w", err)
		case fi.Size() != s.Bytes:
			a.log.Warn("segment size differs from the index; rebuilding the entry",
				slog.String("segment", s.Name), slog.Int64("index_bytes", s.Bytes), slog.Int64("file_bytes", fi.Size()))
			idx.remove(s.Name)
		}
	}
	a.w.seq = idx.LastSeq
	for _, s := range idx.Segments {
		a.w.seq = max(a.w.seq, s.LastSeq)
	}
	a.idx = idx
	nowHour := hourOf(a.opts.Now())
	for i, name := range names {
		hour, _ := parseSegmentName(name)
		if i == len(names)-1 && !hour.Before(nowHour) {
			// The newest segment is of the current hour (or the clock went
			// back): keep appending to it.
			if err := a.reopen(ctx, name, hour); err != nil {
				return err
			}
			break
		}
		if a.idx.find(name) >= 0 {
			continue
		}
		// Not sealed: the active segment of an earlier run, or an entry that
		// was dropped above. Repair and seal it.
		f, st, err := recoverSegment(ctx, filepath.Join(a.segDir, name), a)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("archive: close segment: %w", err)
		}
		if st.records == 0 {
			if err := os.Remove(filepath.Join(a.segDir, name)); err != nil {
				return fmt.Errorf("archive: remove empty segment: %w", err)
			}
			continue
		}
		info := st.info(name, hour, true)
		info.SealedAt = a.opts.Now().UTC()
		a.idx.put(info)
		a.w.seq = max(a.w.seq, st.lastSeq)
		a.log.Info("sealed segment found unsealed", slog.String("segment", name), slog.Int64("events", st.events))
	}
	a.w.seq = max(a.w.seq, a.tombs.max)
	a.idx.LastSeq = a.w.seq
	if err := durable.SyncDir(a.segDir); err != nil {
		return fmt.Errorf("archive: sync %s: %w", a.segDir, err)
	}
	return writeIndex(a.dir, a.idx)
}

// reopen makes an existing segment the active one: its index entry (if
// any) is removed first, its torn tail truncated.
func (a *Archive) reopen(ctx context.Context, name string, hour time.Time) error {
	a.stateMu.Lock()
	erasures := 0
	if i := a.idx.find(name); i >= 0 {
		erasures = a.idx.Segments[i].Erasures
		a.idx.remove(name)
		a.idx.LastSeq = max(a.idx.LastSeq, a.w.seq)
		if err := writeIndex(a.dir, a.idx); err != nil {
			a.stateMu.Unlock()
			return err
		}
	}
	a.stateMu.Unlock()
	f, st, err := recoverSegment(ctx, filepath.Join(a.segDir, name), a)
	if err != nil {
		return err
	}
	a.w.seg = &activeSeg{f: f, name: name, hour: hour, st: st, erasures: erasures}
	a.w.seq = max(a.w.seq, st.lastSeq)
	a.stateMu.Lock()
	a.active = activeView{name: name, hour: hour, st: st, erasures: erasures}
	a.stateMu.Unlock()
	return nil
}

// Append archives events and returns once they are written to the active
// segment (and fsynced, under SyncAlways). On success every event is in the
// archive: a process crash after Append returns cannot lose it. On error
// none of the batch was acknowledged; if ctx ended after the batch was
// queued, the batch may still be written (a redelivered event then appears
// twice; readers that need exactly-once de-duplicate by ID).
//
// Events with a zero Time are recorded with the archive clock's time. The
// events slice is not retained. When the writer falls behind, Append blocks
// (bounded queue, back-pressure) until ctx ends; it never drops events.
func (a *Archive) Append(ctx context.Context, events []signals.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p := a.failed.Load(); p != nil {
		return *p
	}
	r := a.reqPool.Get().(*request)
	if err := a.encode(r, events); err != nil {
		a.putRequest(r)
		return err
	}
	a.closeMu.RLock()
	if a.closed {
		a.closeMu.RUnlock()
		a.putRequest(r)
		return ErrClosed
	}
	select {
	case a.reqs <- r:
		a.closeMu.RUnlock()
	case <-ctx.Done():
		a.closeMu.RUnlock()
		a.putRequest(r)
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		a.putRequest(r)
		return err
	case <-ctx.Done():
		// r belongs to the writer now; it is garbage once acknowledged.
		return fmt.Errorf("archive: append: %w (the batch may still be written)", ctx.Err())
	}
}

// encode writes events to r as NDJSON lines.
func (a *Archive) encode(r *request, events []signals.Event) error {
	var now time.Time
	for i := range events {
		r.ev = events[i]
		r.ev.UserHash = "" // a credential, never stored (signals.Event)
		if r.ev.Time.IsZero() {
			if now.IsZero() {
				now = a.opts.Now()
			}
			r.ev.Time = signals.Timestamp{Time: now}
		}
		start := len(r.lines)
		var err error
		if fastEncode {
			r.lines, r.keys, err = appendEvent(r.lines, &r.ev, r.keys)
		} else {
			r.buf.Reset()
			if err = r.enc.Encode(&r.ev); err == nil {
				r.lines = append(r.lines, r.buf.Bytes()...)
			}
		}
		if err == nil && len(r.lines)-start > a.opts.MaxEventBytes {
			err = fmt.Errorf("%d bytes of JSON exceed MaxEventBytes %d", len(r.lines)-start, a.opts.MaxEventBytes)
		}
		if err != nil {
			id := r.ev.ID
			r.ev = signals.Event{}
			return fmt.Errorf("%w: event %d (id %q): %w", ErrInvalidEvent, i, id, err)
		}
		r.ends = append(r.ends, len(r.lines))
		r.ts = append(r.ts, r.ev.Time.UnixMilli())
	}
	r.ev = signals.Event{} // do not retain the caller's strings and maps
	return nil
}

func (a *Archive) putRequest(r *request) {
	if cap(r.lines) > 4<<20 || r.buf.Cap() > 1<<20 {
		return // let an unusually large buffer go
	}
	r.lines, r.ends, r.ts = r.lines[:0], r.ends[:0], r.ts[:0]
	a.reqPool.Put(r)
}

// fail records a sticky writer failure and returns it.
func (a *Archive) fail(err error) error {
	if p := a.failed.Load(); p != nil {
		return *p
	}
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	a.failed.Store(&err)
	a.log.Error("archive writer failed; appends are refused until reopened", slog.String("error", err.Error()))
	return err
}

// run is the writer goroutine.
func (a *Archive) run() {
	defer close(a.exited)
	t := time.NewTicker(a.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case r := <-a.reqs:
			a.process(r)
		case <-t.C:
			a.tick()
		case done := <-a.sealReqs:
			done <- a.sealActive()
		case <-a.closing:
			// Close has set closed under the write lock: nothing more can
			// be enqueued, so draining empties the queue for good.
			for {
				select {
				case r := <-a.reqs:
					a.process(r)
					continue
				default:
				}
				break
			}
			a.closeErr = a.shutdown()
			return
		}
	}
}

// process writes r together with whatever else is queued (group commit)
// and acknowledges all of them.
func (a *Archive) process(first *request) {
	batch := append(a.w.batch[:0], first)
	size := len(first.lines)
	limit := 4 * a.opts.MaxRecordBytes
collect:
	for size < limit {
		select {
		case r := <-a.reqs:
			batch = append(batch, r)
			size += len(r.lines)
		default:
			break collect
		}
	}
	err := a.writeBatch(batch)
	for i, r := range batch {
		r.done <- err
		batch[i] = nil
	}
	a.w.batch = batch[:0]
}

// writeBatch encodes batch into records, writes them with one write(2)
// and fsyncs under SyncAlways.
func (a *Archive) writeBatch(batch []*request) error {
	if p := a.failed.Load(); p != nil {
		return *p
	}
	now := a.opts.Now()
	if err := a.ensureActive(now); err != nil {
		return a.fail(err)
	}
	arrival := max(now.UnixMilli(), a.w.lastArrival)
	w := &a.w
	w.wbuf, w.hdrs, w.raw = w.wbuf[:0], w.hdrs[:0], w.raw[:0]
	w.cur = header{}
	maxRaw := a.opts.MaxRecordBytes
	var events, rawBytes int
	for _, r := range batch {
		lines := r.lines
		events += len(r.ends)
		rawBytes += len(lines)
		start := 0 // byte offset of line i
		for i := 0; i < len(r.ends); {
			// Take the longest run of lines i..j-1 that fits the record.
			j, lo := i, start
			for j < len(r.ends) && (len(w.raw)+r.ends[j]-lo <= maxRaw || (len(w.raw) == 0 && j == i)) {
				w.addLine(r.ts[j])
				j++
			}
			if j == i { // the next line does not fit: close the record
				a.flushRecord(arrival)
				continue
			}
			w.raw = append(w.raw, lines[lo:r.ends[j-1]]...)
			start = r.ends[j-1]
			i = j
			if i < len(r.ends) {
				a.flushRecord(arrival)
			}
		}
	}
	a.flushRecord(arrival)

	seg := w.seg
	if err := a.write(seg.f, w.wbuf); err != nil {
		return a.fail(fmt.Errorf("write segment %s: %w", seg.name, err))
	}
	if a.opts.Sync == SyncAlways {
		if err := seg.f.Sync(); err != nil {
			return a.fail(fmt.Errorf("sync segment %s: %w", seg.name, err))
		}
		a.nSyncs.Add(1)
	} else {
		w.dirty = true
	}
	off := 0
	for _, h := range w.hdrs {
		n := headerSize + int(h.dataLen)
		seg.st.add(h, w.wbuf[off:off+n], nil)
		off += n
	}
	w.lastArrival = arrival
	a.lastSeq.Store(w.seq)
	a.stateMu.Lock()
	a.active.st = seg.st
	a.stateMu.Unlock()
	a.nEvents.Add(uint64(events))
	a.nRecords.Add(uint64(len(w.hdrs)))
	a.nBytes.Add(uint64(len(w.wbuf)))
	a.nRaw.Add(uint64(rawBytes))
	return nil
}

// write writes b to f with one write(2) (two under testWriteGap).
func (a *Archive) write(f *os.File, b []byte) error {
	if a.testWriteGap > 0 && len(b) > 1 {
		if _, err := f.Write(b[:len(b)/2]); err != nil {
			return err
		}
		time.Sleep(a.testWriteGap)
		b = b[len(b)/2:]
	}
	_, err := f.Write(b)
	return err
}

// addLine accounts one line of the record being built.
func (w *writerState) addLine(ts int64) {
	if w.cur.count == 0 {
		w.cur.minTS, w.cur.maxTS = ts, ts
	}
	w.cur.count++
	w.cur.minTS = min(w.cur.minTS, ts)
	w.cur.maxTS = max(w.cur.maxTS, ts)
}

// flushRecord compresses w.raw into a record appended to w.wbuf.
func (a *Archive) flushRecord(arrival int64) {
	w := &a.w
	if w.cur.count == 0 {
		return
	}
	at := len(w.wbuf)
	w.wbuf = append(w.wbuf, make([]byte, headerSize)...)
	w.wbuf = w.enc.EncodeAll(w.raw, w.wbuf)
	data := w.wbuf[at+headerSize:]
	w.seq++
	h := w.cur
	h.dataLen = uint32(len(data))
	h.dataCRC = durable.Checksum(data)
	h.rawLen = uint32(len(w.raw))
	h.seq = w.seq
	h.arrival = arrival
	putHeader(w.wbuf[at:at+headerSize], h)
	w.hdrs = append(w.hdrs, h)
	w.raw = w.raw[:0]
	w.cur = header{}
}

// tick runs every SyncInterval: fsync under SyncInterval, hour roll-over
// when idle.
func (a *Archive) tick() {
	if a.failed.Load() != nil {
		return
	}
	if a.w.dirty && a.opts.Sync == SyncInterval {
		if err := a.w.seg.f.Sync(); err != nil {
			a.fail(fmt.Errorf("sync segment %s: %w", a.w.seg.name, err))
			return
		}
		a.nSyncs.Add(1)
		a.w.dirty = false
	}
	if a.w.seg != nil && hourOf(a.opts.Now()).After(a.w.seg.hour) {
		if err := a.seal(); err != nil {
			a.fail(err)
		}
	}
}

// ensureActive makes sure the active segment is the one for now's hour,
// sealing the previous one when the hour rolled over.
func (a *Archive) ensureActive(now time.Time) error {
	h := hourOf(now)
	if a.w.seg != nil {
		if !h.After(a.w.seg.hour) {
			return nil // same hour, or the clock went back: keep appending
		}
		if err := a.seal(); err != nil {
			return err
		}
	}
	a.stateMu.Lock()
	var last SegmentInfo
	if n := len(a.idx.Segments); n > 0 {
		last = a.idx.Segments[n-1]
	}
	a.stateMu.Unlock()
	if last.Name != "" && !h.After(last.Hour) {
		// The segment of this hour was sealed early (Compact), or the clock
		// is behind the newest sealed segment: never create an older
		// segment after a newer one; append to the newest instead.
		if h.Before(last.Hour) {
			a.log.Warn("clock is behind the newest segment; reopening it", slog.String("segment", last.Name))
		} else {
			a.log.Debug("reopening the segment of the current hour", slog.String("segment", last.Name))
		}
		return a.reopen(a.bgCtx, last.Name, last.Hour)
	}
	name := segmentName(h)
	f, err := os.OpenFile(filepath.Join(a.segDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileperm.FileMode)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if err := durable.SyncDir(a.segDir); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", a.segDir, err)
	}
	a.w.seg = &activeSeg{f: f, name: name, hour: h, st: newSegStats()}
	a.stateMu.Lock()
	a.active = activeView{name: name, hour: h, st: a.w.seg.st}
	a.stateMu.Unlock()
	a.log.Debug("segment created", slog.String("segment", name))
	a.kickRetention() // a new hour: older segments may have expired
	return nil
}

// seal fsyncs and closes the active segment and adds it to the index (an
// empty segment is removed instead).
func (a *Archive) seal() error {
	seg := a.w.seg
	a.w.seg, a.w.dirty = nil, false
	err := seg.f.Sync()
	if cerr := seg.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seal segment %s: %w", seg.name, err)
	}
	a.nSyncs.Add(1)
	if seg.st.records == 0 {
		a.stateMu.Lock()
		a.active = activeView{}
		a.stateMu.Unlock()
		if err := os.Remove(filepath.Join(a.segDir, seg.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove empty segment %s: %w", seg.name, err)
		}
		return nil
	}
	info := seg.st.info(seg.name, seg.hour, true)
	info.SealedAt = a.opts.Now().UTC()
	info.Erasures = seg.erasures
	a.stateMu.Lock()
	a.idx.put(info)
	a.idx.LastSeq = max(a.idx.LastSeq, a.w.seq)
	a.active = activeView{}
	err = writeIndex(a.dir, a.idx)
	a.stateMu.Unlock()
	if err != nil {
		return err
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "segment sealed",
		slog.String("segment", seg.name), slog.Int64("events", info.Events), slog.Int64("bytes", info.Bytes))
	a.kickRetention()
	return nil
}

// sealActive seals the active segment before its hour is over, on
// Compact's request (in the writer goroutine). The next append of the same
// hour reopens it.
func (a *Archive) sealActive() error {
	if p := a.failed.Load(); p != nil {
		return *p
	}
	if a.w.seg == nil {
		return nil
	}
	if err := a.seal(); err != nil {
		return a.fail(err)
	}
	return nil
}

// requestSeal has the writer goroutine seal the active segment.
func (a *Archive) requestSeal(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case a.sealReqs <- done:
	case <-a.exited:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the writer seals it all the same
	}
}

// kickRetention asks the maintenance goroutine to apply the retention.
func (a *Archive) kickRetention() {
	select {
	case a.retainKick <- struct{}{}:
	default: // already pending
	}
}

// shutdown seals the active segment at Close (unless the writer failed:
// then the file is only closed and the next Open repairs it).
func (a *Archive) shutdown() error {
	if a.w.seg == nil {
		return nil
	}
	if p := a.failed.Load(); p != nil {
		a.w.seg.f.Close()
		a.w.seg = nil
		return *p
	}
	return a.seal()
}

// maintain applies the retention when an hour rolls over (a segment is
// sealed or created).
func (a *Archive) maintain() {
	defer a.bg.Done()
	for {
		select {
		case <-a.bgCtx.Done():
			return
		case <-a.retainKick:
			n, err := a.ApplyRetention(a.bgCtx, a.opts.Now())
			if err != nil && a.bgCtx.Err() == nil {
				a.log.Error("retention failed", slog.String("error", err.Error()))
			} else if n > 0 {
				a.log.Info("retention deleted segments", slog.Int("segments", n))
			}
		}
	}
}

// Close writes what is queued, seals the active segment (fsync, index
// entry), waits for a running Compact or ApplyRetention to stop and
// releases the directory lock. Appends after Close return ErrClosed.
func (a *Archive) Close() error {
	a.closeOnce.Do(func() {
		a.closeMu.Lock()
		a.closed = true
		a.closeMu.Unlock()
		close(a.closing)
		<-a.exited
		a.bgCancel()
		a.bg.Wait()
		a.maintMu.Lock() // wait for a running Compact or ApplyRetention
		a.maintClosed = true
		a.maintMu.Unlock()
		a.w.enc.Close()
		errs := []error{a.closeErr}
		if err := a.tombs.close(); err != nil {
			errs = append(errs, fmt.Errorf("archive: close tombstones: %w", err))
		}
		if err := a.lock.Unlock(); err != nil {
			errs = append(errs, fmt.Errorf("archive: unlock: %w", err))
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// Stats returns counters since Open.
func (a *Archive) Stats() Stats {
	return Stats{
		Events: a.nEvents.Load(), Records: a.nRecords.Load(), Bytes: a.nBytes.Load(),
		RawBytes: a.nRaw.Load(), Syncs: a.nSyncs.Load(), LastSeq: a.lastSeq.Load(),
		Truncated: a.truncated.Load(),
	}
}

// LastSeq returns the sequence number of the last record written: every
// event acknowledged so far is in a record with a sequence number <=
// LastSeq. A retrain that read the archive up to LastSeq resumes (replays
// the tail) with Query.AfterSeq set to it.
func (a *Archive) LastSeq() uint64 { return a.lastSeq.Load() }

// Dir returns the archive directory.
func (a *Archive) Dir() string { return a.dir }

// Segments lists the segments, oldest first; the last may be the active
// (unsealed) one.
func (a *Archive) Segments() []SegmentInfo {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	out := make([]SegmentInfo, 0, len(a.idx.Segments)+1)
	out = append(out, a.idx.Segments...)
	if a.active.name != "" {
		out = append(out, a.active.st.info(a.active.name, a.active.hour, false))
	}
	return out
}

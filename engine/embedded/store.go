package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/durable"
	"github.com/kairoshq/kairos/internal/fileperm"
)

// Interface guard.
var _ engine.Store = (*Store)(nil)

// ErrLocked is returned by Open when another Store (in this or another
// process) has the directory open.
var ErrLocked = errors.New("embedded: data directory is in use by another process")

// errClosed is returned by every call on a closed Store.
var errClosed = fmt.Errorf("embedded: store is closed: %w", engine.ErrUnavailable)

// Store is the embedded engine.Store: in memory, persisted to a
// directory. It is safe for concurrent use.
//
// Lock order: syncMu, then mu.
type Store struct {
	dir  string
	cfg  Config
	log  *slog.Logger
	lock *durable.Lock
	// readOnly: opened by OpenReadOnly, without the lock and without a
	// log; every write returns ErrReadOnly.
	readOnly bool

	mu      sync.RWMutex
	st      *state
	wal     *os.File // the active log, opened O_APPEND
	walSeq  uint64
	walSize int64
	// snapSize is the size of the last snapshot: the log is compacted when
	// it outgrows both it and CompactBytes, so that rewriting the state
	// costs at most as much disk bandwidth as logging it did.
	snapSize atomic.Int64
	closed   bool
	failed   error // sticky: a log write could not be undone, or an fsync failed

	written atomic.Uint64 // records appended to the log so far
	syncMu  sync.Mutex
	synced  uint64 // records known to be on stable storage (under syncMu)

	compactMu sync.Mutex // one compaction at a time
	kick      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	bufs sync.Pool // *[]byte record buffers

	txn txnStage // the staging area of Apply, under mu
}

// newStore returns the Store of dir and cfg, neither open nor loaded.
func newStore(dir string, cfg Config) *Store {
	return &Store{
		dir:  dir,
		cfg:  cfg,
		log:  cfg.Logger.With("component", "embedded-store"),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
}

// Open opens (creating it if needed) the store persisted in dir: it loads
// the snapshot, replays the write-ahead log after it (truncating a torn
// last record, the trace of a crash in the middle of a write), and takes
// the directory's lock. It returns ErrLocked if the directory is open
// elsewhere.
func Open(dir string, cfg Config) (*Store, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded: open: %w: %w", engine.ErrInvalid, err)
	}
	if err := os.MkdirAll(dir, fileperm.DirMode); err != nil {
		return nil, fmt.Errorf("embedded: open: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	if err := checkFormat(dir, true); err != nil {
		lock.Unlock()
		return nil, err
	}
	s := newStore(dir, cfg)
	s.lock = lock
	start := time.Now()
	if err := s.makePrivate(); err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	if err := s.recover(); err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "store opened",
		slog.String("dir", dir), slog.Int("visitors", len(s.st.visitors)), slog.Int("collections", len(s.st.colls)),
		slog.Int("rows", len(s.st.rowIDs)), slog.Int("seen", s.st.seen.len()), slog.Duration("took", time.Since(start)))
	s.wg.Go(s.background)
	return s, nil
}

// makePrivate removes the group and other permission bits of the
// directory and its files (the log and the snapshot hold visitor data and
// the offer-token secret), which versions before 0700/0600 created
// 0755/0644.
func (s *Store) makePrivate() error {
	n, err := fileperm.PrivateTree(s.dir)
	if n > 0 {
		s.log.LogAttrs(context.Background(), slog.LevelWarn,
			"made the store's files private: they were readable by other users of this machine (created by hand, by an older version, or copied)",
			slog.String("dir", s.dir), slog.Int("entries", n))
	}
	return err
}

// recover loads the snapshot and the logs, and opens the active log.
func (s *Store) recover() error {
	if err := os.Remove(filepath.Join(s.dir, snapTmpName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmps, _ := filepath.Glob(filepath.Join(s.dir, blobDir, durable.TempPattern))
	for _, t := range tmps {
		os.Remove(t) // a blob write cut short by a crash
	}
	l, err := load(s.dir, s.cfg)
	if err != nil {
		return err
	}
	s.st = l.st
	s.snapSize.Store(l.snapSize)
	for _, seq := range l.stale {
		// Left over by a crash after a snapshot replaced it.
		if err := os.Remove(filepath.Join(s.dir, walName(seq))); err != nil {
			return err
		}
	}
	if l.torn != "" {
		// The last record was being written when the process died: it
		// was never acknowledged. Cut it off.
		last := walName(l.live[len(l.live)-1])
		path := filepath.Join(s.dir, last)
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "truncating torn log tail",
			slog.String("file", last), slog.String("reason", l.torn),
			slog.Int64("offset", l.size), slog.Int64("dropped_bytes", fi.Size()-l.size))
		if err := os.Truncate(path, l.size); err != nil {
			return err
		}
	}
	s.st.seen.expire(s.cfg.Now().UnixNano())
	now := s.now()
	kv, logs := s.st.expiredKeys(now)
	s.st.dropExpired(kv, logs, now)
	if len(l.live) > 0 {
		s.walSeq = l.live[len(l.live)-1]
		s.walSize = l.size
		s.wal, err = os.OpenFile(filepath.Join(s.dir, walName(s.walSeq)), os.O_WRONLY|os.O_APPEND, fileperm.FileMode)
		return err
	}
	s.walSeq = max(l.snapSeq, 1)
	s.wal, err = createWAL(s.dir, s.walSeq)
	return err
}

// errMissingLog: a log between the snapshot and the last log is missing.
var errMissingLog = errors.New("log is missing")

// loaded is what load read from a directory.
type loaded struct {
	st       *state
	snapSeq  uint64
	snapSize int64
	stale    []uint64 // logs older than the snapshot, left over by a crash
	live     []uint64 // the logs replayed, ascending
	size     int64    // bytes of sound records in the last log
	torn     string   // why the last log ends in a torn record; "" when it does not
}

// load reads the snapshot of dir and replays the logs after it, changing
// nothing on disk. A torn record at the end of the last log (a crash, or
// a writer in the middle of a write) is reported in torn; anywhere else
// it is corruption.
func load(dir string, cfg Config) (l loaded, err error) {
	l = loaded{st: newState(cfg)}
	defer func() {
		if err != nil {
			l.st.base.retire()
			l.st.base = nil
		}
	}()
	snapPath := filepath.Join(dir, snapName)
	if _, err := os.Stat(snapPath); err == nil {
		if l.snapSeq, err = readSnapshot(snapPath, l.st, cfg.HistoryLimit); err != nil {
			return l, fmt.Errorf("%s: %w", snapName, err)
		}
		if fi, err := os.Stat(snapPath); err == nil {
			l.snapSize = fi.Size()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return l, err
	}
	seqs, err := listWALs(dir)
	if err != nil {
		return l, err
	}
	for _, seq := range seqs {
		if seq < l.snapSeq {
			l.stale = append(l.stale, seq)
			continue
		}
		if n := len(l.live); n > 0 && seq != l.live[n-1]+1 {
			return l, fmt.Errorf("%w: %s", errMissingLog, walName(l.live[n-1]+1))
		}
		l.live = append(l.live, seq)
	}
	if len(l.live) > 0 && l.snapSeq > 0 && l.live[0] != l.snapSeq {
		return l, fmt.Errorf("%w: %s", errMissingLog, walName(l.snapSeq))
	}
	for i, seq := range l.live {
		good, torn, err := replayWAL(filepath.Join(dir, walName(seq)), l.st, cfg.HistoryLimit)
		if err != nil {
			return l, err
		}
		l.size = good
		if torn == "" {
			continue
		}
		if i < len(l.live)-1 {
			return l, fmt.Errorf("%s: %w: %s at offset %d, and later logs exist", walName(seq), errCorruptRecord, torn, good)
		}
		l.torn = torn
	}
	return l, nil
}

func createWAL(dir string, seq uint64) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, walName(seq)), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, fileperm.FileMode)
	if err != nil {
		return nil, err
	}
	if err := durable.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// background runs the interval fsyncs and the compactions.
func (s *Store) background() {
	var tick <-chan time.Time
	if s.cfg.Sync == SyncInterval {
		t := time.NewTicker(s.cfg.SyncEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-tick:
			if err := s.sync(s.written.Load()); err != nil {
				s.log.LogAttrs(context.Background(), slog.LevelError, "log fsync failed", slog.Any("err", err))
			}
		case <-s.kick:
			if err := s.compact(); err != nil {
				s.log.LogAttrs(context.Background(), slog.LevelError, "compaction failed", slog.Any("err", err))
			}
		}
	}
}

// compact starts a new log and writes a snapshot of the state as of that
// moment; then it removes the logs the snapshot covers. Writers are held
// only while the log is switched and the state's maps are copied.
func (s *Store) compact() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	start := time.Now()
	s.syncMu.Lock()
	s.mu.Lock()
	if s.closed || s.failed != nil {
		s.mu.Unlock()
		s.syncMu.Unlock()
		return nil
	}
	if err := s.wal.Sync(); err != nil {
		s.failed = err
		s.mu.Unlock()
		s.syncMu.Unlock()
		return fmt.Errorf("fsync log: %w", err)
	}
	s.synced = s.written.Load()
	seq := s.walSeq + 1
	f, err := createWAL(s.dir, seq)
	if err != nil {
		s.mu.Unlock()
		s.syncMu.Unlock()
		return fmt.Errorf("new log: %w", err)
	}
	old := s.wal
	s.wal, s.walSeq, s.walSize = f, seq, 0
	snap := s.st.clone()
	snap.base.acquire() // read by writeSnapshot
	s.mu.Unlock()
	s.syncMu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("close log: %w", err)
	}

	now := s.now()
	size, secOff, secEnd, err := writeSnapshot(s.dir, seq, snap, now)
	snap.base.release()
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := s.rebase(snap, secOff, secEnd); err != nil {
		return fmt.Errorf("reopen snapshot: %w", err)
	}
	// The snapshot left out the maps and logs expired at now: drop them
	// from memory too.
	if kv, logs := snap.expiredKeys(now); len(kv)+len(logs) > 0 {
		s.mu.Lock()
		s.st.dropExpired(kv, logs, now)
		s.mu.Unlock()
	}
	s.snapSize.Store(size)
	seqs, err := listWALs(s.dir)
	if err != nil {
		return err
	}
	for _, q := range seqs {
		if q < seq {
			if err := os.Remove(filepath.Join(s.dir, walName(q))); err != nil {
				return err
			}
		}
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "compacted",
		slog.Uint64("log", seq), slog.Int("visitors", len(snap.visitors)), slog.Int64("bytes", size), slog.Duration("took", time.Since(start)))
	return nil
}

// rebase makes the item states of the snapshot just written, [secOff,
// secEnd) of it, the state base, and drops from memory the states it
// holds: those of snap that no SaveItemStates replaced since.
func (s *Store) rebase(snap *state, secOff, secEnd int64) error {
	var base *stateBase
	if secEnd > secOff {
		f, err := os.Open(filepath.Join(s.dir, snapName))
		if err != nil {
			return err
		}
		base = &stateBase{f: f, off: secOff, end: secEnd}
	}
	s.mu.Lock()
	old := s.st.base
	s.st.base = base
	for row, st := range snap.states {
		if cur, ok := s.st.states[row]; ok && cur.Count == st.Count &&
			slices.Equal(cur.Factors, st.Factors) && slices.Equal(cur.Curv, st.Curv) {
			delete(s.st.states, row)
		}
	}
	s.mu.Unlock()
	old.retire()
	return nil
}

// Close compacts the log into a snapshot (so that the next Open is fast),
// flushes and closes the files and releases the directory (a read-only
// Store is only marked closed). Later calls return the first call's
// result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.readOnly {
			s.mu.Lock()
			s.closed = true
			s.st.base.retire()
			s.mu.Unlock()
			return
		}
		close(s.stop)
		s.wg.Wait()
		var errs []error
		s.mu.RLock()
		dirty := s.walSize > 0
		s.mu.RUnlock()
		if dirty {
			if err := s.compact(); err != nil {
				errs = append(errs, fmt.Errorf("compact: %w", err))
			}
		}
		s.syncMu.Lock()
		s.mu.Lock()
		s.closed = true
		if s.failed == nil {
			// Writers still waiting for an fsync find their record covered,
			// or, if this fsync fails, the store closed (an error).
			if err := s.wal.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("fsync log: %w", err))
			} else {
				s.synced = s.written.Load()
			}
		}
		if err := s.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log: %w", err))
		}
		s.st.base.retire()
		s.mu.Unlock()
		s.syncMu.Unlock()
		s.lock.Unlock()
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("embedded: close: %w", err)
		}
	})
	return s.closeErr
}

// abandon closes the files without a final compaction or fsync, as a
// crash would leave them (tests).
func (s *Store) abandon() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.mu.Lock()
		s.closed = true
		s.wal.Close()
		s.mu.Unlock()
		s.lock.Unlock()
	})
}

// Ping reports whether the store accepts writes.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: ping: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.usableLocked()
}

func (s *Store) usableLocked() error {
	if s.closed {
		return errClosed
	}
	if s.readOnly {
		return ErrReadOnly
	}
	if s.failed != nil {
		return fmt.Errorf("embedded: a log write failed, the store refuses writes until reopened: %w: %w", engine.ErrUnavailable, s.failed)
	}
	return nil
}

func (s *Store) getBuf() []byte {
	if p, ok := s.bufs.Get().(*[]byte); ok {
		return newFrame(*p)
	}
	return newFrame(make([]byte, 0, 64<<10))
}

func (s *Store) putBuf(b []byte) {
	if cap(b) <= 4<<20 {
		s.bufs.Put(&b)
	}
}

// appendLocked writes one sealed frame to the log and returns its sequence
// number for syncTo. s.mu must be held for writing.
func (s *Store) appendLocked(frame []byte) (uint64, error) {
	if err := s.usableLocked(); err != nil {
		return 0, err
	}
	n, err := s.wal.Write(frame)
	if err != nil {
		// Cut off what was written of the record, so that the next
		// record follows the last complete one.
		if terr := s.wal.Truncate(s.walSize); terr != nil {
			s.failed = fmt.Errorf("write log: %w; undo: %w", err, terr)
		}
		return 0, fmt.Errorf("embedded: write log: %w: %w", engine.ErrUnavailable, err)
	}
	s.walSize += int64(n)
	if s.walSize >= max(s.cfg.CompactBytes, s.snapSize.Load()) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return s.written.Add(1), nil
}

// syncTo waits until the record seq is on stable storage, if the policy
// is SyncAlways.
func (s *Store) syncTo(seq uint64) error {
	if s.cfg.Sync != SyncAlways {
		return nil
	}
	return s.sync(seq)
}

// sync fsyncs the log unless record seq already is on stable storage.
// Callers queue on syncMu while one fsyncs, and most find their record
// covered by that fsync when their turn comes: group commit.
func (s *Store) sync(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= seq {
		return nil
	}
	s.mu.RLock()
	f, err := s.wal, s.usableLocked()
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	target := s.written.Load()
	if err := f.Sync(); err != nil {
		s.mu.Lock()
		s.failed = fmt.Errorf("fsync log: %w", err)
		s.mu.Unlock()
		return fmt.Errorf("embedded: fsync log: %w: %w", engine.ErrUnavailable, err)
	}
	s.synced = target
	return nil
}

func (s *Store) now() int64 { return s.cfg.Now().UnixNano() }

// Visitors loads the visitors with the given ids, in order. The returned
// values are copies.
func (s *Store) Visitors(ctx context.Context, ids []string) ([]engine.Visitor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: visitors: %w", err)
	}
	out := make([]engine.Visitor, len(ids))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	for i, id := range ids {
		out[i].ID = id
		if v := s.st.visitors[id]; v != nil {
			out[i].Factors = slices.Clone(v.factors)
			out[i].Session = v.session
			out[i].History = slices.Clone(v.history)
		}
	}
	return out, nil
}

// Seen reports, for each mark, whether a Commit recorded it (its event id
// under its visitor) within the de-duplication window. A mark of the
// event id alone, as stores wrote them before, counts too.
func (s *Store) Seen(ctx context.Context, refs []engine.EventRef) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: seen: %w", err)
	}
	hs := make([]idHash, 2*len(refs))
	for i, r := range refs {
		hs[2*i], hs[2*i+1] = markHash(r.Visitor, r.ID), hashID(r.ID)
	}
	now := s.now()
	out := make([]bool, len(refs))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	for i := range out {
		out[i] = s.st.seen.has(hs[2*i], now) || s.st.seen.has(hs[2*i+1], now)
	}
	return out, nil
}

// Commit records c atomically: it is appended to the log as one record
// (a torn record is discarded on recovery), applied in memory, and, with
// SyncAlways, fsynced before Commit returns.
func (s *Store) Commit(ctx context.Context, c engine.Commit) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: commit: %w", err)
	}
	for i := range c.Visitors {
		if c.Visitors[i].ID == "" {
			return fmt.Errorf("embedded: commit: %w: visitors[%d].id is empty", engine.ErrInvalid, i)
		}
	}
	if len(c.Events) == 0 && len(c.Visitors) == 0 {
		return nil
	}
	hs := make([]idHash, len(c.Events))
	for i, r := range c.Events {
		hs[i] = markHash(r.Visitor, r.ID)
	}
	now := s.now()
	b := s.getBuf()
	b = sealFrame(encodeCommit(b, now, hs, c.Visitors))
	defer s.putBuf(b)
	s.mu.Lock()
	err := s.st.linkedUpdate(c.Visitors)
	var seq uint64
	if err == nil {
		seq, err = s.appendLocked(b)
	}
	if err == nil {
		s.st.applyCommit(now, hs, c.Visitors, s.cfg.HistoryLimit)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: commit: %w", err)
	}
	return s.syncTo(seq)
}

// ReplaceVisitor stores v whole in place of any state of v.ID: one
// visitor record in the log, as a snapshot writes it.
func (s *Store) ReplaceVisitor(ctx context.Context, v engine.Visitor) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: replace visitor: %w", err)
	}
	if v.ID == "" {
		return fmt.Errorf("embedded: replace visitor: %w: id is empty", engine.ErrInvalid)
	}
	nv := &visitor{factors: slices.Clone(v.Factors), session: v.Session}
	nv.history = appendHistory(nil, slices.Clone(v.History), s.cfg.HistoryLimit)
	b := s.getBuf()
	b = sealFrame(encodeVisitor(b, v.ID, nv))
	defer s.putBuf(b)
	s.mu.Lock()
	seq, err := s.appendLocked(b)
	if err == nil {
		s.st.visitors[v.ID] = nv
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: replace visitor: %w", err)
	}
	return s.syncTo(seq)
}

// DeleteVisitor erases a visitor's state; ErrNotFound if there is none.
func (s *Store) DeleteVisitor(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: delete visitor: %w", err)
	}
	b := s.getBuf()
	b = sealFrame(encodeID(b, recDeleteVisitor, id))
	defer s.putBuf(b)
	s.mu.Lock()
	if _, ok := s.st.visitors[id]; !ok {
		err := s.usableLocked()
		s.mu.Unlock()
		if err != nil {
			return err
		}
		return fmt.Errorf("embedded: delete visitor: %w", engine.ErrNotFound)
	}
	seq, err := s.appendLocked(b)
	if err == nil {
		delete(s.st.visitors, id)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: delete visitor: %w", err)
	}
	return s.syncTo(seq)
}

// ItemRows returns each id's row, assigning the next free rows to ids that
// have none; new assignments are logged (and fsynced with SyncAlways)
// before ItemRows returns.
func (s *Store) ItemRows(ctx context.Context, ids []string) ([]int32, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: item rows: %w", err)
	}
	for i, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("embedded: item rows: %w: ids[%d] is empty", engine.ErrInvalid, i)
		}
	}
	out := make([]int32, len(ids))
	s.mu.RLock()
	missing := false
	for i, id := range ids {
		row, ok := s.st.rows[id]
		out[i] = row
		missing = missing || !ok
	}
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, errClosed
	}
	if !missing {
		return out, nil
	}

	s.mu.Lock()
	first := int32(len(s.st.rowIDs))
	var fresh []string
	assigned := make(map[string]int32)
	for i, id := range ids {
		row, ok := s.st.rows[id]
		if !ok {
			if row, ok = assigned[id]; !ok {
				row = first + int32(len(fresh))
				assigned[id] = row
				fresh = append(fresh, id)
			}
		}
		out[i] = row
	}
	var seq uint64
	var err error
	if len(fresh) > 0 {
		b := sealFrame(encodeRows(s.getBuf(), first, fresh))
		seq, err = s.appendLocked(b)
		s.putBuf(b)
		if err == nil {
			err = s.st.applyRows(first, fresh)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("embedded: item rows: %w", err)
	}
	if err := s.syncTo(seq); err != nil {
		return nil, err
	}
	return out, nil
}

// RowIDs returns every assigned id in row order.
func (s *Store) RowIDs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: row ids: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	return slices.Clone(s.st.rowIDs), nil
}

// SaveItemStates stores item states, overwriting by row; a negative row is
// ErrInvalid and saves nothing.
func (s *Store) SaveItemStates(ctx context.Context, states []engine.ItemState) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: save item states: %w", err)
	}
	for i := range states {
		if states[i].Row < 0 {
			return fmt.Errorf("embedded: save item states: %w: states[%d].row %d is negative", engine.ErrInvalid, i, states[i].Row)
		}
	}
	if len(states) == 0 {
		return nil
	}
	b := sealFrame(encodeStates(s.getBuf(), states))
	defer s.putBuf(b)
	s.mu.Lock()
	seq, err := s.appendLocked(b)
	if err == nil {
		s.st.applyStates(states)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: save item states: %w", err)
	}
	return s.syncTo(seq)
}

// ItemStates returns every stored item state, in row order (copies).
func (s *Store) ItemStates(ctx context.Context) ([]engine.ItemState, error) {
	var out []engine.ItemState
	err := s.ScanItemStates(ctx, func(batch []engine.ItemState) error {
		for _, st := range batch {
			st.Factors = slices.Clone(st.Factors)
			st.Curv = slices.Clone(st.Curv)
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b engine.ItemState) int { return int(a.Row) - int(b.Row) })
	return out, nil
}

// ScanItemStates calls fn with every stored item state in batches
// (engine.FactorStore): first the snapshot's, read from its file and
// decoded into memory reused between batches, then those saved since.
// Writers are not held meanwhile; a scan sees the states as of its start.
func (s *Store) ScanItemStates(ctx context.Context, fn func([]engine.ItemState) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: item states: %w", err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	base := s.st.base
	base.acquire()
	newer := maps.Clone(s.st.states)
	s.mu.RUnlock()
	defer base.release()
	call := func(batch []engine.ItemState) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("embedded: item states: %w", err)
		}
		return fn(batch)
	}
	if err := base.scan(newer, call); err != nil {
		return err
	}
	batch := make([]engine.ItemState, 0, min(len(newer), scanBatch))
	for _, st := range newer {
		if batch = append(batch, st); len(batch) == scanBatch {
			if err := call(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		return call(batch)
	}
	return nil
}

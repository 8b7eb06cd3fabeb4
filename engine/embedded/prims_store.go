package embedded

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Interface guard.
var _ storage.Backend = (*Store)(nil)

// ctxErr returns ctx's error as an Unavailable one of op.
func ctxErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: %s: %w: %w", op, errs.Unavailable, err)
	}
	return nil
}

// writePrim appends the record enc encodes to the log, and applies it by
// calling apply, under the lock; check (under the lock, before anything
// is written) may refuse the write, and skip may say there is nothing to
// write. It waits for the fsync of SyncAlways.
// writePrim writes one primitive's record and applies it; unless lazy,
// it returns once the record is as durable as the sync policy makes it
// (a lazy record is made durable by the next synced write or interval
// sync).
func (s *Store) writePrim(op string, lazy bool, check func() (skip bool, err error), enc func([]byte) []byte, apply func()) error {
	b := s.getBuf()
	defer func() { s.putBuf(b) }()
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	if check != nil {
		skip, err := check()
		if err != nil || skip {
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("embedded: %s: %w", op, err)
			}
			return nil
		}
	}
	b = sealFrame(enc(b))
	seq, err := s.appendLocked(b)
	if err == nil {
		apply()
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	if lazy {
		return nil
	}
	return s.syncTo(seq)
}

// readPrim calls fn under the read lock, unless the store is closed.
func (s *Store) readPrim(ctx context.Context, op string, fn func()) error {
	if err := ctxErr(ctx, op); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	fn()
	return nil
}

// PutDoc implements storage.Documents: the document is logged (and
// fsynced with SyncAlways) before PutDoc returns.
func (s *Store) PutDoc(ctx context.Context, coll, id string, doc []byte, mode storage.PutMode) error {
	if err := ctxErr(ctx, "put doc"); err != nil {
		return err
	}
	switch {
	case coll == "" || id == "":
		return fmt.Errorf("embedded: put doc: %w: empty collection or id (%q, %q)", errs.Invalid, coll, id)
	case mode > storage.Replace:
		return fmt.Errorf("embedded: put doc: %w: unknown mode %d", errs.Invalid, mode)
	}
	doc = copyBytes(doc)
	return s.writePrim("put doc", false, func() (bool, error) {
		_, exists := s.st.doc(coll, id)
		switch {
		case mode == storage.Create && exists:
			return false, fmt.Errorf("%s %q: %w", coll, id, errs.Conflict)
		case mode == storage.Replace && !exists:
			return false, fmt.Errorf("%s %q: %w", coll, id, errs.NotFound)
		}
		return false, nil
	}, func(b []byte) []byte {
		return encodePutDoc(b, coll, id, doc)
	}, func() {
		s.st.applyPutDoc(coll, id, doc)
	})
}

// Doc implements storage.Documents.
func (s *Store) Doc(ctx context.Context, coll, id string) ([]byte, error) {
	var doc []byte
	var ok bool
	if err := s.readPrim(ctx, "doc", func() {
		doc, ok = s.st.doc(coll, id)
		doc = copyBytes(doc)
	}); err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("embedded: doc %s %q: %w", coll, id, errs.NotFound)
	}
	return doc, nil
}

// DeleteDoc implements storage.Documents.
func (s *Store) DeleteDoc(ctx context.Context, coll, id string) error {
	if err := ctxErr(ctx, "delete doc"); err != nil {
		return err
	}
	return s.writePrim("delete doc", false, func() (bool, error) {
		if _, ok := s.st.doc(coll, id); !ok {
			return false, fmt.Errorf("%s %q: %w", coll, id, errs.NotFound)
		}
		return false, nil
	}, func(b []byte) []byte {
		return encodeDeleteDoc(b, coll, id)
	}, func() {
		s.st.applyDeleteDoc(coll, id)
	})
}

// Docs implements storage.Documents.
func (s *Store) Docs(ctx context.Context, coll, after string, limit int) ([]storage.Doc, error) {
	var out []storage.Doc
	err := s.readPrim(ctx, "docs", func() {
		c := s.st.colls[coll]
		if c == nil {
			return
		}
		i := sort.SearchStrings(c.ids, after)
		if i < len(c.ids) && c.ids[i] == after {
			i++
		}
		ids := c.ids[i:]
		if limit > 0 && len(ids) > limit {
			ids = ids[:limit]
		}
		out = make([]storage.Doc, len(ids))
		for j, id := range ids {
			out[j] = storage.Doc{ID: id, JSON: copyBytes(c.docs[id])}
		}
	})
	return out, err
}

// DocsVersion implements storage.Documents. The version counts the
// changes of the collection since it was created; it is kept across
// restarts.
func (s *Store) DocsVersion(ctx context.Context, coll string) (int64, error) {
	var v int64
	err := s.readPrim(ctx, "docs version", func() {
		if c := s.st.colls[coll]; c != nil {
			v = c.version
		}
	})
	return v, err
}

// Fields implements storage.Maps.
func (s *Store) Fields(ctx context.Context, key string, fields []string) (map[string]string, error) {
	out := make(map[string]string, len(fields))
	err := s.readPrim(ctx, "fields", func() {
		m := s.st.liveMap(key, s.now())
		if m == nil {
			return
		}
		for _, f := range fields {
			if v, ok := m.fields[f]; ok {
				out[f] = v.text()
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Maps implements storage.Maps.
func (s *Store) Maps(ctx context.Context, keys []string) ([]map[string]string, error) {
	out := make([]map[string]string, len(keys))
	err := s.readPrim(ctx, "maps", func() {
		now := s.now()
		for i, k := range keys {
			if m := s.st.liveMap(k, now); m != nil && len(m.fields) > 0 {
				out[i] = make(map[string]string, len(m.fields))
				for f, v := range m.fields {
					out[i][f] = v.text()
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Apply implements storage.Maps. Under the store's lock it checks the
// conditions, stages the new values of the fields the ops touch (an
// invalid op writes nothing), logs them as one record and applies them;
// with SyncAlways it returns once the record is fsynced.
func (s *Store) Apply(ctx context.Context, t storage.Txn) error {
	if err := ctxErr(ctx, "apply"); err != nil {
		return err
	}
	now := s.now()
	return s.writePrim("apply", t.Lazy, func() (bool, error) {
		for _, c := range t.If {
			var v value
			var ok bool
			if m := s.st.liveMap(c.Key, now); m != nil {
				v, ok = m.fields[c.Field]
			}
			if c.Absent == ok || (!c.Absent && !v.is(c.Value)) {
				return false, fmt.Errorf("condition on %s %s: %w", c.Key, c.Field, errs.Conflict)
			}
		}
		if len(t.Ops) == 0 {
			return true, nil
		}
		return false, s.txn.stage(s.st, t.Ops, now)
	}, func(b []byte) []byte {
		return encodeTxn(b, &s.txn)
	}, func() {
		s.txn.apply(s.st)
	})
}

// Delete implements storage.Maps: it removes the maps and logs under
// keys (one record for those that exist; none if none does).
func (s *Store) Delete(ctx context.Context, keys []string) error {
	if err := ctxErr(ctx, "delete"); err != nil {
		return err
	}
	var present []string
	return s.writePrim("delete", false, func() (bool, error) {
		present = present[:0]
		for _, k := range keys {
			_, isMap := s.st.kv[k]
			_, isLog := s.st.logs[k]
			if isMap || isLog {
				present = append(present, k)
			}
		}
		return len(present) == 0, nil
	}, func(b []byte) []byte {
		return encodeDeleteKeys(b, present)
	}, func() {
		s.st.applyDeleteKeys(present)
	})
}

// Append implements storage.Logs. The expiry is computed with the
// store's clock (Config.Now).
func (s *Store) Append(ctx context.Context, key string, minSeq uint64, data []byte, keep int, ttl time.Duration) (uint64, error) {
	if err := ctxErr(ctx, "append"); err != nil {
		return 0, err
	}
	if keep < 1 {
		return 0, fmt.Errorf("embedded: append to %q: %w: keep %d < 1", key, errs.Invalid, keep)
	}
	data = copyBytes(data)
	now := s.now()
	var expires int64
	if ttl > 0 {
		expires = expiryNanos(time.Unix(0, now).Add(ttl))
	}
	var seq uint64
	var reset bool
	err := s.writePrim("append", false, func() (bool, error) {
		l, ok := s.st.liveLog(key, now)
		_, exists := s.st.logs[key]
		reset = exists && !ok
		seq = max(minSeq, 1)
		if n := len(l.entries); n > 0 && l.entries[n-1].Seq+1 > seq {
			seq = l.entries[n-1].Seq + 1
		}
		return false, nil
	}, func(b []byte) []byte {
		return encodeLogAppend(b, key, reset, seq, keep, expires, data)
	}, func() {
		s.st.applyAppend(key, reset, seq, keep, expires, data)
	})
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// Entries implements storage.Logs.
func (s *Store) Entries(ctx context.Context, key string, after uint64, limit int) ([]storage.LogEntry, error) {
	var out []storage.LogEntry
	err := s.readPrim(ctx, "entries", func() {
		l, ok := s.st.liveLog(key, s.now())
		if !ok || after == math.MaxUint64 {
			return
		}
		es := l.entries
		i, _ := slices.BinarySearchFunc(es, after+1, func(e storage.LogEntry, seq uint64) int {
			switch {
			case e.Seq < seq:
				return -1
			case e.Seq > seq:
				return 1
			}
			return 0
		})
		es = es[i:]
		if limit > 0 && len(es) > limit {
			es = es[:limit]
		}
		if len(es) == 0 {
			return
		}
		out = make([]storage.LogEntry, len(es))
		for j, e := range es {
			out[j] = storage.LogEntry{Seq: e.Seq, Data: copyBytes(e.Data)}
		}
	})
	return out, err
}

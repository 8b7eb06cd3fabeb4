// Package storagetest holds the contract suite of the storage primitives
// (Run) that every backend passes, and Mem, an in-memory reference
// implementation for unit tests of the stores built on them.
package storagetest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Mem is an in-memory storage.Backend. Its zero value is not usable; use
// NewMem. It is safe for concurrent use.
type Mem struct {
	now func() time.Time

	mu       sync.Mutex
	colls    map[string]map[string][]byte
	versions map[string]int64
	maps     map[string]map[string]string
	expiry   map[string]time.Time
	logs     map[string]*memLog
}

type memLog struct {
	entries []storage.LogEntry
	expires time.Time // zero: never
}

var _ storage.Backend = (*Mem)(nil)

// NewMem returns an empty Mem whose expiries follow now (nil: time.Now).
func NewMem(now func() time.Time) *Mem {
	if now == nil {
		now = time.Now
	}
	return &Mem{
		now:      now,
		colls:    map[string]map[string][]byte{},
		versions: map[string]int64{},
		maps:     map[string]map[string]string{},
		expiry:   map[string]time.Time{},
		logs:     map[string]*memLog{},
	}
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", errs.Unavailable, err)
	}
	return nil
}

// PutDoc implements storage.Documents.
func (m *Mem) PutDoc(ctx context.Context, coll, id string, doc []byte, mode storage.PutMode) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.colls[coll]
	_, exists := c[id]
	switch {
	case mode == storage.Create && exists:
		return fmt.Errorf("mem: %s %q: %w", coll, id, errs.Conflict)
	case mode == storage.Replace && !exists:
		return fmt.Errorf("mem: %s %q: %w", coll, id, errs.NotFound)
	}
	if c == nil {
		c = map[string][]byte{}
		m.colls[coll] = c
	}
	c[id] = append([]byte(nil), doc...)
	m.versions[coll]++
	return nil
}

// Doc implements storage.Documents.
func (m *Mem) Doc(ctx context.Context, coll, id string) ([]byte, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.colls[coll][id]
	if !ok {
		return nil, fmt.Errorf("mem: %s %q: %w", coll, id, errs.NotFound)
	}
	return append([]byte(nil), d...), nil
}

// DeleteDoc implements storage.Documents.
func (m *Mem) DeleteDoc(ctx context.Context, coll, id string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.colls[coll][id]; !ok {
		return fmt.Errorf("mem: %s %q: %w", coll, id, errs.NotFound)
	}
	delete(m.colls[coll], id)
	m.versions[coll]++
	return nil
}

// Docs implements storage.Documents.
func (m *Mem) Docs(ctx context.Context, coll, after string, limit int) ([]storage.Doc, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.colls[coll]))
	for id := range m.colls[coll] {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]storage.Doc, len(ids))
	for i, id := range ids {
		out[i] = storage.Doc{ID: id, JSON: append([]byte(nil), m.colls[coll][id]...)}
	}
	return out, nil
}

// DocsVersion implements storage.Documents.
func (m *Mem) DocsVersion(ctx context.Context, coll string) (int64, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.versions[coll], nil
}

// liveMap returns key's map, or nil when it is absent or expired (then
// it is dropped). m.mu is held.
func (m *Mem) liveMap(key string) map[string]string {
	if at, ok := m.expiry[key]; ok && !m.now().Before(at) {
		delete(m.maps, key)
		delete(m.expiry, key)
	}
	return m.maps[key]
}

// Fields implements storage.Maps.
func (m *Mem) Fields(ctx context.Context, key string, fields []string) (map[string]string, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mp := m.liveMap(key)
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		if v, ok := mp[f]; ok {
			out[f] = v
		}
	}
	return out, nil
}

// Maps implements storage.Maps.
func (m *Mem) Maps(ctx context.Context, keys []string) ([]map[string]string, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]map[string]string, len(keys))
	for i, k := range keys {
		if mp := m.liveMap(k); len(mp) > 0 {
			cp := make(map[string]string, len(mp))
			for f, v := range mp {
				cp[f] = v
			}
			out[i] = cp
		}
	}
	return out, nil
}

// Apply implements storage.Maps.
func (m *Mem) Apply(ctx context.Context, t storage.Txn) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range t.If {
		v, ok := m.liveMap(c.Key)[c.Field]
		if c.Absent == ok || (!c.Absent && v != c.Value) {
			return fmt.Errorf("mem: condition on %s %s: %w", c.Key, c.Field, errs.Conflict)
		}
	}
	// Compute every change first so that an invalid op applies nothing.
	staged := map[string]map[string]string{}
	expires := map[string]time.Time{}
	stage := func(key string) map[string]string {
		if s, ok := staged[key]; ok {
			return s
		}
		s := map[string]string{}
		for f, v := range m.liveMap(key) {
			s[f] = v
		}
		staged[key] = s
		return s
	}
	for i, op := range t.Ops {
		if err := ApplyOp(stage(op.Key), op); err != nil {
			return fmt.Errorf("mem: op %d: %w", i, err)
		}
		if op.Kind == storage.OpExpire {
			expires[op.Key] = op.At
		}
	}
	for k, s := range staged {
		if len(s) == 0 {
			delete(m.maps, k)
			delete(m.expiry, k)
			continue
		}
		m.maps[k] = s
	}
	for k, at := range expires {
		if _, ok := m.maps[k]; ok {
			m.expiry[k] = at
		}
	}
	return nil
}

// ApplyOp applies one op (other than OpExpire, which it only checks) to
// the fields of a map: the reference semantics of an Op, shared by
// backends that apply transactions in process.
func ApplyOp(fields map[string]string, op storage.Op) error {
	switch op.Kind {
	case storage.OpSet:
		fields[op.Field] = op.Value
	case storage.OpIncr:
		n := int64(0)
		if s, ok := fields[op.Field]; ok {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: field %q of %q is not an integer", errs.Invalid, op.Field, op.Key)
			}
			n = v
		}
		fields[op.Field] = strconv.FormatInt(n+op.Int, 10)
	case storage.OpIncrFloat:
		x := 0.0
		if s, ok := fields[op.Field]; ok {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%w: field %q of %q is not a number", errs.Invalid, op.Field, op.Key)
			}
			x = v
		}
		fields[op.Field] = strconv.FormatFloat(x+op.Float, 'g', -1, 64)
	case storage.OpDel:
		delete(fields, op.Field)
	case storage.OpExpire:
	default:
		return fmt.Errorf("%w: unknown op kind %d", errs.Invalid, op.Kind)
	}
	return nil
}

// Delete implements storage.Maps.
func (m *Mem) Delete(ctx context.Context, keys []string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.maps, k)
		delete(m.expiry, k)
		delete(m.logs, k)
	}
	return nil
}

// liveLog returns key's log, or nil when absent or expired. m.mu is held.
func (m *Mem) liveLog(key string) *memLog {
	l := m.logs[key]
	if l != nil && !l.expires.IsZero() && !m.now().Before(l.expires) {
		delete(m.logs, key)
		return nil
	}
	return l
}

// Append implements storage.Logs.
func (m *Mem) Append(ctx context.Context, key string, minSeq uint64, data []byte, keep int, ttl time.Duration) (uint64, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	if keep < 1 {
		return 0, fmt.Errorf("mem: append to %q: %w: keep %d < 1", key, errs.Invalid, keep)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.liveLog(key)
	if l == nil {
		l = &memLog{}
		m.logs[key] = l
	}
	seq := max(minSeq, 1)
	if n := len(l.entries); n > 0 && l.entries[n-1].Seq+1 > seq {
		seq = l.entries[n-1].Seq + 1
	}
	l.entries = append(l.entries, storage.LogEntry{Seq: seq, Data: append([]byte(nil), data...)})
	if len(l.entries) > keep {
		l.entries = append([]storage.LogEntry(nil), l.entries[len(l.entries)-keep:]...)
	}
	l.expires = time.Time{}
	if ttl > 0 {
		l.expires = m.now().Add(ttl)
	}
	return seq, nil
}

// Entries implements storage.Logs.
func (m *Mem) Entries(ctx context.Context, key string, after uint64, limit int) ([]storage.LogEntry, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.liveLog(key)
	if l == nil {
		return nil, nil
	}
	var out []storage.LogEntry
	for _, e := range l.entries {
		if e.Seq > after {
			out = append(out, storage.LogEntry{Seq: e.Seq, Data: append([]byte(nil), e.Data...)})
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

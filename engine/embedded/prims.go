package embedded

import (
	"maps"
	"math"
	"slices"
	"time"

	"fmt"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// The state of the storage primitives (storage.Backend: documents, maps,
// logs). Maps and collections are changed in place (a transaction of
// counters touches a few fields of a large map), so they are copied on
// write instead of being immutable: each carries the generation of the
// state it was created or copied in, and a write to one of an older
// generation (shared with a snapshot that compaction is writing) copies
// it first. clone starts a new generation.

// docColl is one collection of documents.
type docColl struct {
	docs    map[string][]byte // immutable values
	ids     []string          // sorted
	version int64
	gen     uint64
}

// kvMap is one map of storage.Maps.
type kvMap struct {
	fields  map[string]value
	expires int64 // Unix ns; 0: never
	gen     uint64

	// The staging transaction's index of this map's key (txnStage.key),
	// valid while staged equals that transaction's seq: scratch written
	// and read under the store's lock by the staging only.
	staged uint64
	ki     int
}

// kvLog is one log of storage.Logs. It is a value: a write stores a new
// one. Entries are appended past the end of the slice only and trimmed
// by reslicing, so an older value (in a snapshot) keeps reading the same
// entries.
type kvLog struct {
	entries []storage.LogEntry // ascending Seq; Data immutable
	expires int64              // Unix ns; 0: never
}

// live reports whether something expiring at expires (0: never) still
// exists at now.
func live(expires, now int64) bool { return expires == 0 || now < expires }

// expiryNanos returns t as the Unix ns of an expiry (never 0, which means
// never): times before 1970 expire at once, times past 2262 never in
// practice.
func expiryNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, 1)):
		return 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// liveMap returns key's map, or nil when it is absent or expired at now.
func (st *state) liveMap(key string, now int64) *kvMap {
	if m := st.kv[key]; m != nil && live(m.expires, now) {
		return m
	}
	return nil
}

// liveLog returns key's log, or false when it is absent or expired at
// now.
func (st *state) liveLog(key string, now int64) (kvLog, bool) {
	l, ok := st.logs[key]
	if !ok || !live(l.expires, now) {
		return kvLog{}, false
	}
	return l, true
}

// collForWrite returns coll's collection for a change, created or copied
// into the current generation.
func (st *state) collForWrite(coll string) *docColl {
	c := st.colls[coll]
	switch {
	case c == nil:
		c = &docColl{docs: make(map[string][]byte), gen: st.gen}
		st.colls[coll] = c
	case c.gen != st.gen:
		c = &docColl{docs: maps.Clone(c.docs), ids: slices.Clone(c.ids), version: c.version, gen: st.gen}
		st.colls[coll] = c
	}
	return c
}

// applyPutDoc stores doc (owned by st from now on) as (coll, id).
func (st *state) applyPutDoc(coll, id string, doc []byte) {
	c := st.collForWrite(coll)
	if _, ok := c.docs[id]; !ok {
		i, _ := slices.BinarySearch(c.ids, id)
		c.ids = slices.Insert(c.ids, i, id)
	}
	c.docs[id] = doc
	c.version++
}

// applyDeleteDoc removes (coll, id) if it exists.
func (st *state) applyDeleteDoc(coll, id string) {
	if _, ok := st.doc(coll, id); !ok {
		return
	}
	c := st.collForWrite(coll)
	delete(c.docs, id)
	if i, ok := slices.BinarySearch(c.ids, id); ok {
		c.ids = slices.Delete(c.ids, i, i+1)
	}
	c.version++
}

// applyAppend appends one entry (data owned by st from now on) to key's
// log, replacing an expired log when reset, keeps the keep newest
// entries and sets the log's expiry.
func (st *state) applyAppend(key string, reset bool, seq uint64, keep int, expires int64, data []byte) {
	var l kvLog
	if !reset {
		l = st.logs[key]
	}
	l.entries = append(l.entries, storage.LogEntry{Seq: seq, Data: data})
	if n := len(l.entries); n > keep {
		l.entries = l.entries[n-keep:]
	}
	l.expires = expires
	st.logs[key] = l
}

// applyDeleteKeys removes the maps and logs under keys.
func (st *state) applyDeleteKeys(keys []string) {
	for _, k := range keys {
		delete(st.kv, k)
		delete(st.logs, k)
	}
}

// expiredKeys returns the keys of the maps and of the logs expired at now.
func (st *state) expiredKeys(now int64) (kv, logs []string) {
	for k, m := range st.kv {
		if !live(m.expires, now) {
			kv = append(kv, k)
		}
	}
	for k, l := range st.logs {
		if !live(l.expires, now) {
			logs = append(logs, k)
		}
	}
	return kv, logs
}

// dropExpired removes the maps and logs of the given keys that are
// expired at now (a key written again since is kept).
func (st *state) dropExpired(kv, logs []string, now int64) {
	for _, k := range kv {
		if m := st.kv[k]; m != nil && !live(m.expires, now) {
			delete(st.kv, k)
		}
	}
	for _, k := range logs {
		if l, ok := st.logs[k]; ok && !live(l.expires, now) {
			delete(st.logs, k)
		}
	}
}

// applyFieldOp applies op (OpSet, OpIncr, OpIncrFloat or OpDel) to one
// field holding cur (ok: it exists), with the semantics of
// storagetest.ApplyOp: it returns the field's new value and whether it
// exists.
func applyFieldOp(cur value, ok bool, op *storage.Op) (value, bool, error) {
	switch op.Kind {
	case storage.OpSet:
		return textValue(op.Value), true, nil
	case storage.OpIncr:
		n := int64(0)
		if ok {
			v, isInt := cur.int()
			if !isInt {
				return value{}, false, fmt.Errorf("%w: field %q of %q is not an integer", errs.Invalid, op.Field, op.Key)
			}
			n = v
		}
		return intValue(n + op.Int), true, nil
	case storage.OpIncrFloat:
		x := 0.0
		if ok {
			v, isNum := cur.float()
			if !isNum {
				return value{}, false, fmt.Errorf("%w: field %q of %q is not a number", errs.Invalid, op.Field, op.Key)
			}
			x = v
		}
		return floatValue(x + op.Float), true, nil
	case storage.OpDel:
		return value{}, false, nil
	}
	return value{}, false, fmt.Errorf("%w: unknown op kind %d", errs.Invalid, op.Kind)
}

// txnKey is one map a transaction changes.
type txnKey struct {
	key    string
	base   *kvMap // the live map before the transaction; nil: absent or expired
	reset  bool   // an expired map is replaced
	drop   bool   // the map has no field after the transaction
	expire bool   // the transaction sets the expiry to at
	at     int64
	size   int    // fields after the transaction
	m      *kvMap // apply: the map written

	// The key's staged fields: a chain through txnField.prev from last
	// (-1: none), searched linearly while short, then indexed in
	// txnStage.fieldIdx.
	last    int
	staged  int
	indexed bool
}

// txnField is the new value of one field a transaction changes.
type txnField struct {
	k     int // index in txnStage.keys
	field string
	val   value
	del   bool // the field is removed
	had   bool // the field exists in the base map
	prev  int  // the key's previous staged field; -1: none
}

type fieldRef struct {
	k     int
	field string
}

// txnStage is a transaction's changes, staged: only the fields it
// touches, with their new values. The Store keeps one, reused under its
// lock, so that the transactions of every consumed batch (hundreds of
// counters) allocate nothing once it has grown.
type txnStage struct {
	keys     []txnKey
	fields   []txnField
	keyIdx   map[string]int   // the keys without a map in the state
	fieldIdx map[fieldRef]int // the fields of the keys with many
	seq      uint64           // state.staged when this staging began
}

// maxReusedFields bounds the size of the transactions whose staging
// memory is reused; maxChain is the number of staged fields of one key
// searched linearly before they are indexed.
const (
	maxReusedFields = 1 << 14
	maxChain        = 8
)

func (tx *txnStage) reset() {
	if len(tx.fields) > maxReusedFields || len(tx.keys) > maxReusedFields {
		// clear costs the capacity of the maps: drop those a large
		// transaction grew.
		tx.keyIdx, tx.fieldIdx = nil, nil
		tx.keys, tx.fields = nil, nil
	}
	clear(tx.keys)
	tx.keys = tx.keys[:0]
	clear(tx.fields)
	tx.fields = tx.fields[:0]
	if tx.keyIdx == nil {
		tx.keyIdx = make(map[string]int)
		tx.fieldIdx = make(map[fieldRef]int)
	}
	clear(tx.keyIdx)
	clear(tx.fieldIdx)
}

// key returns the index of key's entry, adding it with the live map of st
// at now. The index of a key that has a map in st is kept in the map
// (kvMap.staged, ki), so that a transaction of existing maps (the
// counters') looks each key up once; the others are indexed in keyIdx.
func (tx *txnStage) key(st *state, key string, now int64) int {
	m := st.kv[key]
	if m != nil {
		if m.staged == tx.seq {
			return m.ki
		}
	} else if i, ok := tx.keyIdx[key]; ok {
		return i
	}
	k := txnKey{key: key, last: -1}
	ki := len(tx.keys)
	if m != nil {
		if live(m.expires, now) {
			k.base, k.size = m, len(m.fields)
		} else {
			k.reset = true
		}
		m.staged, m.ki = tx.seq, ki
	} else {
		tx.keyIdx[key] = ki
	}
	tx.keys = append(tx.keys, k)
	return ki
}

// field returns the index of the staged field of key ki, or -1.
func (tx *txnStage) field(ki int, field string) int {
	k := &tx.keys[ki]
	if k.indexed {
		if i, ok := tx.fieldIdx[fieldRef{ki, field}]; ok {
			return i
		}
		return -1
	}
	for i := k.last; i >= 0; i = tx.fields[i].prev {
		if tx.fields[i].field == field {
			return i
		}
	}
	return -1
}

// addField stages a field of key ki and returns its index.
func (tx *txnStage) addField(ki int, field string, had bool) int {
	k := &tx.keys[ki]
	fi := len(tx.fields)
	tx.fields = append(tx.fields, txnField{k: ki, field: field, had: had, prev: k.last})
	k.last = fi
	k.staged++
	switch {
	case k.indexed:
		tx.fieldIdx[fieldRef{ki, field}] = fi
	case k.staged > maxChain:
		for i := fi; i >= 0; i = tx.fields[i].prev {
			tx.fieldIdx[fieldRef{ki, tx.fields[i].field}] = i
		}
		k.indexed = true
	}
	return fi
}

// stage computes the changes of ops on st at now, or returns the error
// of the first invalid op (st is not changed either way).
func (tx *txnStage) stage(st *state, ops []storage.Op, now int64) error {
	tx.reset()
	st.staged++
	tx.seq = st.staged
	ki := -1
	for i := range ops {
		op := &ops[i]
		if ki < 0 || op.Key != tx.keys[ki].key { // ops of one key usually follow each other
			ki = tx.key(st, op.Key, now)
		}
		if op.Kind == storage.OpExpire {
			tx.keys[ki].expire, tx.keys[ki].at = true, expiryNanos(op.At)
			continue
		}
		fi := tx.field(ki, op.Field)
		var cur value
		var ok bool
		if fi >= 0 {
			cur, ok = tx.fields[fi].val, !tx.fields[fi].del
		} else if base := tx.keys[ki].base; base != nil {
			cur, ok = base.fields[op.Field]
		}
		v, exists, err := applyFieldOp(cur, ok, op)
		if err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		if fi < 0 {
			fi = tx.addField(ki, op.Field, ok)
		}
		tx.fields[fi].val, tx.fields[fi].del = v, !exists
	}
	for i := range tx.fields {
		f := &tx.fields[i]
		switch {
		case f.had && f.del:
			tx.keys[f.k].size--
		case !f.had && !f.del:
			tx.keys[f.k].size++
		}
	}
	for i := range tx.keys {
		k := &tx.keys[i]
		k.drop = k.size == 0
		if k.expire && k.base != nil && k.base.expires == k.at {
			k.expire = false // unchanged: nothing to log (the counters' buckets)
		}
	}
	return nil
}

// apply applies the staged changes to st.
func (tx *txnStage) apply(st *state) {
	for i := range tx.keys {
		k := &tx.keys[i]
		if k.drop {
			delete(st.kv, k.key)
			k.m = nil
			continue
		}
		k.m = k.base
		if k.m == nil || k.reset || k.m.gen != st.gen { // not staged on st's map of this generation
			k.m = st.mapForWrite(k.key, k.reset)
		}
		if k.expire {
			k.m.expires = k.at
		}
	}
	for i := range tx.fields {
		f := &tx.fields[i]
		m := tx.keys[f.k].m
		switch {
		case m == nil:
		case f.del:
			delete(m.fields, f.field)
		default:
			m.fields[f.field] = f.val
		}
	}
}

// mapForWrite returns key's map for a change: a new one when it is absent
// or reset, a copy when it belongs to an older generation.
func (st *state) mapForWrite(key string, reset bool) *kvMap {
	m := st.kv[key]
	switch {
	case m == nil || reset:
		m = &kvMap{fields: make(map[string]value), gen: st.gen}
		st.kv[key] = m
	case m.gen != st.gen:
		m = &kvMap{fields: maps.Clone(m.fields), expires: m.expires, gen: st.gen}
		st.kv[key] = m
	}
	return m
}

// doc returns the document (coll, id).
func (st *state) doc(coll, id string) ([]byte, bool) {
	c := st.colls[coll]
	if c == nil {
		return nil, false
	}
	d, ok := c.docs[id]
	return d, ok
}

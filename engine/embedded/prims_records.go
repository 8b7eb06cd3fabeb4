package embedded

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/kairoshq/kairos/engine/storage"
)

// Records of the storage primitives (prims.go). Each is written to the
// log by one call; a snapshot writes the state as recDocs, recMapTxn (one
// per map, or per chunk of a large map) and recLogState records.
//
//	recPutDoc     coll, id, doc                       version++
//	recDeleteDoc  coll, id                            version++
//	recMapTxn     keys: key, flags (reset, drop, expire), [at];
//	              fields: key index, field, kind, value
//	              (the result of the transaction's ops, not the ops;
//	              kind: fieldText then the text, fieldDel, fieldInt then
//	              a varint, fieldFloat then 8 bytes little-endian)
//	recLogAppend  key, reset, seq, keep, expires, data
//	recDeleteKeys keys
//	recDocs       coll, version, docs: id, doc (snapshot)
//	recLogState   key, expires, entries: seq, data (snapshot)
//
// Times are Unix ns; 0 is never.
const (
	txnReset  = 1 << iota // the map expired: start from no field
	txnDrop               // the map has no field left: remove it
	txnExpire             // set the expiry
)

// Kinds of a field of recMapTxn: its value as text, removed, or a number
// held as one (an increment's result, logged without formatting it:
// replayed, it reads as the same text, prims_value.go).
const (
	fieldText  = 0
	fieldDel   = 1
	fieldInt   = 2
	fieldFloat = 3
)

// Chunk sizes of the snapshot's records of the primitives.
const (
	snapDocsChunk   = 1 << 10
	snapFieldsChunk = 1 << 12
)

func encodePutDoc(b []byte, coll, id string, doc []byte) []byte {
	b = append(b, recPutDoc)
	b = appendStr(b, coll)
	b = appendStr(b, id)
	return append(b, doc...)
}

func encodeDeleteDoc(b []byte, coll, id string) []byte {
	return appendStr(appendStr(append(b, recDeleteDoc), coll), id)
}

// encodeTxn appends the record of a staged transaction.
func encodeTxn(b []byte, tx *txnStage) []byte {
	b = append(b, recMapTxn)
	b = binary.AppendUvarint(b, uint64(len(tx.keys)))
	for i := range tx.keys {
		k := &tx.keys[i]
		b = appendStr(b, k.key)
		var flags byte
		if k.reset {
			flags |= txnReset
		}
		if k.drop {
			flags |= txnDrop
		}
		if k.expire {
			flags |= txnExpire
		}
		b = append(b, flags)
		if k.expire {
			b = binary.AppendVarint(b, k.at)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(tx.fields)))
	for i := range tx.fields {
		f := &tx.fields[i]
		b = binary.AppendUvarint(b, uint64(f.k))
		b = appendStr(b, f.field)
		if f.del {
			b = append(b, fieldDel)
			continue
		}
		b = appendValue(b, f.val)
	}
	return b
}

// appendValue appends v's kind and value.
func appendValue(b []byte, v value) []byte {
	switch v.kind {
	case valInt:
		return binary.AppendVarint(append(b, fieldInt), int64(v.bits))
	case valFloat:
		return binary.LittleEndian.AppendUint64(append(b, fieldFloat), v.bits)
	}
	return appendStr(append(b, fieldText), v.s)
}

// readValue reads a value appendValue appended after its kind k.
func readValue(r *reader, k byte) value {
	switch k {
	case fieldInt:
		return intValue(r.varint())
	case fieldFloat:
		b := r.bytes(8)
		if len(b) < 8 {
			return value{}
		}
		return value{bits: binary.LittleEndian.Uint64(b), kind: valFloat}
	}
	return parseValue(r.str())
}

// encodeMapState appends a snapshot record of fields of key's map m
// (reset: the first record of the map).
func encodeMapState(b []byte, key string, m *kvMap, reset bool, fields []string) []byte {
	b = append(b, recMapTxn)
	b = binary.AppendUvarint(b, 1)
	b = appendStr(b, key)
	var flags byte
	if reset {
		flags |= txnReset
	}
	if m.expires != 0 {
		flags |= txnExpire
	}
	b = append(b, flags)
	if m.expires != 0 {
		b = binary.AppendVarint(b, m.expires)
	}
	b = binary.AppendUvarint(b, uint64(len(fields)))
	for _, f := range fields {
		b = binary.AppendUvarint(b, 0)
		b = appendStr(b, f)
		b = appendValue(b, m.fields[f])
	}
	return b
}

func encodeLogAppend(b []byte, key string, reset bool, seq uint64, keep int, expires int64, data []byte) []byte {
	b = append(b, recLogAppend)
	b = appendStr(b, key)
	if reset {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(keep))
	b = binary.AppendVarint(b, expires)
	return append(b, data...)
}

func encodeDeleteKeys(b []byte, keys []string) []byte {
	b = append(b, recDeleteKeys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendStr(b, k)
	}
	return b
}

func encodeDocs(b []byte, coll string, version int64, c *docColl, ids []string) []byte {
	b = append(b, recDocs)
	b = appendStr(b, coll)
	b = binary.AppendVarint(b, version)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendStr(b, id)
		b = appendLenBytes(b, c.docs[id])
	}
	return b
}

func encodeLogState(b []byte, key string, l kvLog) []byte {
	b = append(b, recLogState)
	b = appendStr(b, key)
	b = binary.AppendVarint(b, l.expires)
	b = binary.AppendUvarint(b, uint64(len(l.entries)))
	for _, e := range l.entries {
		b = binary.AppendUvarint(b, e.Seq)
		b = appendLenBytes(b, e.Data)
	}
	return b
}

func appendLenBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// copyBytes returns a copy of b (the reader's bytes live in a reused
// buffer) that is never nil.
func copyBytes(b []byte) []byte { return append([]byte{}, b...) }

// applyPrim applies one record of the primitives to st.
func (st *state) applyPrim(typ byte, r *reader) error {
	switch typ {
	case recPutDoc:
		coll, id := r.str(), r.str()
		doc := copyBytes(r.b)
		r.b = nil
		if err := r.done(); err != nil {
			return fmt.Errorf("put doc: %w", err)
		}
		st.applyPutDoc(coll, id, doc)
	case recDeleteDoc:
		coll, id := r.str(), r.str()
		if err := r.done(); err != nil {
			return fmt.Errorf("delete doc: %w", err)
		}
		st.applyDeleteDoc(coll, id)
	case recMapTxn:
		var tx txnStage
		tx.keys = make([]txnKey, r.count(2))
		for i := range tx.keys {
			k := &tx.keys[i]
			k.key = r.str()
			flags := r.byte()
			k.reset, k.drop, k.expire = flags&txnReset != 0, flags&txnDrop != 0, flags&txnExpire != 0
			if k.expire {
				k.at = r.varint()
			}
		}
		tx.fields = make([]txnField, r.count(3))
		for i := range tx.fields {
			f := &tx.fields[i]
			k := r.uvarint()
			if k >= uint64(len(tx.keys)) {
				r.fail("field of key %d of %d", k, len(tx.keys))
			}
			f.k, f.field = int(k), r.str()
			switch k := r.byte(); k {
			case fieldText, fieldInt, fieldFloat:
				f.val = readValue(r, k)
			case fieldDel:
				f.del = true
			default:
				r.fail("bad field flag")
			}
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("map txn: %w", err)
		}
		tx.apply(st)
	case recLogAppend:
		key := r.str()
		reset := r.byte() == 1
		seq, keep, expires := r.uvarint(), r.uvarint(), r.varint()
		data := copyBytes(r.b)
		r.b = nil
		if err := r.done(); err != nil {
			return fmt.Errorf("log append: %w", err)
		}
		if keep < 1 || keep > 1<<31 {
			return fmt.Errorf("log append: %w: keep %d", errCorruptRecord, keep)
		}
		st.applyAppend(key, reset, seq, int(keep), expires, data)
	case recDeleteKeys:
		keys := make([]string, r.count(1))
		for i := range keys {
			keys[i] = r.str()
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("delete keys: %w", err)
		}
		st.applyDeleteKeys(keys)
	case recDocs:
		coll, version := r.str(), r.varint()
		n := r.count(2)
		c := st.collForWrite(coll)
		for range n {
			id, doc := r.str(), copyBytes(r.bytes(r.count(1)))
			if r.err != nil {
				break
			}
			if _, ok := c.docs[id]; !ok {
				c.ids = append(c.ids, id)
			}
			c.docs[id] = doc
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("docs: %w", err)
		}
		if !slices.IsSorted(c.ids) {
			slices.Sort(c.ids)
		}
		c.version = version
	case recLogState:
		key, expires := r.str(), r.varint()
		es := make([]storage.LogEntry, r.count(2))
		for i := range es {
			es[i] = storage.LogEntry{Seq: r.uvarint(), Data: copyBytes(r.bytes(r.count(1)))}
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("log: %w", err)
		}
		st.logs[key] = kvLog{entries: es, expires: expires}
	default:
		return fmt.Errorf("%w: unknown record type %d", errCorruptRecord, typ)
	}
	return nil
}

// writePrims emits the snapshot records of the primitives of st, leaving
// out the maps and logs expired at now.
func writePrims(st *state, now int64, emit func(func([]byte) []byte) error) error {
	for _, coll := range slices.Sorted(maps.Keys(st.colls)) {
		c := st.colls[coll]
		for i := 0; i == 0 || i < len(c.ids); i += snapDocsChunk {
			ids := c.ids[i:min(i+snapDocsChunk, len(c.ids))]
			if err := emit(func(b []byte) []byte { return encodeDocs(b, coll, c.version, c, ids) }); err != nil {
				return err
			}
		}
	}
	var fields []string
	for key, m := range st.kv {
		if !live(m.expires, now) || len(m.fields) == 0 {
			continue
		}
		fields = fields[:0]
		for f := range m.fields {
			fields = append(fields, f)
		}
		for i := 0; i < len(fields); i += snapFieldsChunk {
			chunk := fields[i:min(i+snapFieldsChunk, len(fields))]
			if err := emit(func(b []byte) []byte { return encodeMapState(b, key, m, i == 0, chunk) }); err != nil {
				return err
			}
		}
	}
	for key, l := range st.logs {
		if !live(l.expires, now) || len(l.entries) == 0 {
			continue
		}
		if err := emit(func(b []byte) []byte { return encodeLogState(b, key, l) }); err != nil {
			return err
		}
	}
	return nil
}

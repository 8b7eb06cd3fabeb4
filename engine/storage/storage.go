// Package storage defines the storage primitives that every Kairos store
// backend provides besides visitor state: versioned documents, maps
// changed by atomic transactions, and bounded logs. The domain stores
// (catalog items, offers, campaigns and rules, experiments, counters,
// attention, promotion logs) are written once on these primitives, in
// their own packages, so that a new backend implements the primitives and
// every feature works on it.
//
// A backend implements Backend; engine/embedded and engine/redisstore do,
// and package storagetest holds the contract suite every backend passes
// and an in-memory reference implementation (storagetest.Mem) for unit
// tests of the domain stores.
//
// Errors are of the kinds of package internal/errs: NotFound, Conflict
// (a failed condition or create of an existing document), Invalid,
// Unavailable.
//
// Keys and collection names are chosen by the domain stores; a backend
// may prefix them (its namespace) but treats them as opaque otherwise.
// Keys of maps and logs share one name space: Delete removes either.
package storage

import (
	"context"
	"time"
)

// Backend is every primitive a store provides besides visitor state.
type Backend interface {
	Documents
	Maps
	Logs
}

// PutMode says what PutDoc requires of an existing document.
type PutMode uint8

// The put modes.
const (
	// Upsert creates the document or replaces it.
	Upsert PutMode = iota
	// Create creates the document; an existing one is a Conflict and is
	// left as it is. Of concurrent creators exactly one succeeds.
	Create
	// Replace replaces an existing document; a missing one is NotFound.
	Replace
)

// Doc is a stored document.
type Doc struct {
	ID   string
	JSON []byte
}

// Documents keeps JSON documents by collection and id. Every change of a
// collection changes its version, which replicas poll to reload.
type Documents interface {
	// PutDoc stores doc as (coll, id) according to mode, and changes the
	// collection's version, atomically.
	PutDoc(ctx context.Context, coll, id string, doc []byte, mode PutMode) error
	// Doc returns one document, or NotFound.
	Doc(ctx context.Context, coll, id string) ([]byte, error)
	// DeleteDoc removes one document and changes the collection's
	// version, or returns NotFound.
	DeleteDoc(ctx context.Context, coll, id string) error
	// Docs returns up to limit documents of coll with ids greater than
	// after, in ascending id order; limit <= 0 means all.
	Docs(ctx context.Context, coll, after string, limit int) ([]Doc, error)
	// DocsVersion returns a number that changes with every PutDoc and
	// DeleteDoc of coll (0 for a collection never written).
	DocsVersion(ctx context.Context, coll string) (int64, error)
}

// OpKind is the kind of one Op of a Txn.
type OpKind uint8

// The operations of a Txn.
const (
	// OpSet sets Field of Key to Value.
	OpSet OpKind = iota
	// OpIncr adds Int to Field of Key (a missing field counts as 0);
	// the field holds a decimal integer.
	OpIncr
	// OpIncrFloat adds Float to Field of Key (a missing field counts as
	// 0); the field holds a decimal float (strconv.FormatFloat 'g', -1
	// parses it back).
	OpIncrFloat
	// OpDel removes Field of Key (no error when absent).
	OpDel
	// OpExpire makes the whole map Key expire at At: after it, the map
	// reads as absent and may be removed. A later OpExpire replaces the
	// time. A map without OpExpire never expires.
	OpExpire
)

// Op is one change of a Txn.
type Op struct {
	Kind  OpKind
	Key   string
	Field string
	Value string    // OpSet
	Int   int64     // OpIncr
	Float float64   // OpIncrFloat
	At    time.Time // OpExpire
}

// Cond is a condition of a Txn on one field.
type Cond struct {
	Key   string
	Field string
	// Absent requires the field not to exist; otherwise the field must
	// exist and hold Value.
	Absent bool
	Value  string
}

// Txn is an atomic change of maps: when every condition holds, every op
// is applied in order and a reader sees all of them or none; when one
// does not, nothing is applied and Apply returns a Conflict.
//
// The keys of one Txn (its conditions' and ops') must share a hash tag —
// the part between the first '{' and the next '}', as in Redis Cluster:
// "{visitor-42}:caps" and "{visitor-42}:cool" — unless it holds one key
// or is a Lazy Txn of increments and expiries only: a backend that shards
// maps (engine/redisstore on a Redis Cluster) applies a Txn atomically
// only within one shard, and refuses one whose keys span several with an
// Invalid error naming them. A Lazy Txn of increments and expiries only
// may span shards; it is then atomic per shard.
type Txn struct {
	If  []Cond
	Ops []Op
	// Lazy lets Apply return before the change is durable: it becomes
	// durable with the backend's next synced write (on the embedded store
	// with SyncAlways, the next visitor commit). For derived counters a
	// crash may lose the last moments of (event counters, attention), so
	// that they do not add a disk sync to every consumed batch. Atomicity
	// and visibility are unchanged; a backend without syncs ignores it.
	// A Lazy Txn of increments and expiries only may also skip checking
	// first that the incremented fields hold numbers: an increment of one
	// that does not is still Invalid, but the other ops may be applied
	// (derived counters are written by increments only).
	Lazy bool
}

// Set appends an OpSet.
func (t *Txn) Set(key, field, value string) {
	t.Ops = append(t.Ops, Op{Kind: OpSet, Key: key, Field: field, Value: value})
}

// Incr appends an OpIncr.
func (t *Txn) Incr(key, field string, n int64) {
	t.Ops = append(t.Ops, Op{Kind: OpIncr, Key: key, Field: field, Int: n})
}

// IncrFloat appends an OpIncrFloat.
func (t *Txn) IncrFloat(key, field string, x float64) {
	t.Ops = append(t.Ops, Op{Kind: OpIncrFloat, Key: key, Field: field, Float: x})
}

// Del appends an OpDel.
func (t *Txn) Del(key, field string) {
	t.Ops = append(t.Ops, Op{Kind: OpDel, Key: key, Field: field})
}

// Expire appends an OpExpire.
func (t *Txn) Expire(key string, at time.Time) {
	t.Ops = append(t.Ops, Op{Kind: OpExpire, Key: key, At: at})
}

// IfAbsent appends a condition that field of key does not exist.
func (t *Txn) IfAbsent(key, field string) {
	t.If = append(t.If, Cond{Key: key, Field: field, Absent: true})
}

// IfEquals appends a condition that field of key holds value.
func (t *Txn) IfEquals(key, field, value string) {
	t.If = append(t.If, Cond{Key: key, Field: field, Value: value})
}

// Empty reports whether t changes nothing.
func (t *Txn) Empty() bool { return len(t.Ops) == 0 }

// Maps keeps maps of string fields to string values, under string keys.
// A map exists while it has a field and has not expired.
type Maps interface {
	// Fields returns the fields of key that exist among fields (absent
	// ones are missing from the result; an absent map gives an empty
	// result).
	Fields(ctx context.Context, key string, fields []string) (map[string]string, error)
	// Maps returns every field of each key, in order; an absent or
	// expired map gives nil.
	Maps(ctx context.Context, keys []string) ([]map[string]string, error)
	// Apply applies t atomically, or returns a Conflict when a condition
	// does not hold. A malformed op (unknown kind, OpIncr of a field that
	// is not an integer) is Invalid and nothing is applied. Apply keeps
	// nothing of t's slices once it returns (callers reuse them).
	Apply(ctx context.Context, t Txn) error
	// Delete removes the maps and logs under keys (absent ones are not
	// an error).
	Delete(ctx context.Context, keys []string) error
}

// LogEntry is one entry of a log.
type LogEntry struct {
	Seq  uint64
	Data []byte
}

// Logs keeps bounded logs of entries in ascending sequence order.
type Logs interface {
	// Append appends data to the log key with the sequence number
	// max(last Seq + 1, minSeq, 1), keeps only the keep newest entries, makes
	// the log expire ttl after its last append (ttl <= 0: never), and
	// returns the sequence number, atomically: concurrent appends get
	// distinct, increasing numbers.
	Append(ctx context.Context, key string, minSeq uint64, data []byte, keep int, ttl time.Duration) (uint64, error)
	// Entries returns up to limit entries of key with Seq > after, in
	// ascending order (limit <= 0: all).
	Entries(ctx context.Context, key string, after uint64, limit int) ([]LogEntry, error)
}

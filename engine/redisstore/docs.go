package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
)

// Definitions (engine/promo's offers, campaigns and rules, one hash per
// kind; engine/experiments' experiments) are kept as versioned document
// hashes: a HASH id → JSON and a STRING version counter, incremented by
// every write, that the replicas poll to reload.

// doc is the shape of promo.Doc and experiments.Doc.
type doc = struct {
	ID   string
	JSON []byte
}

// putDoc sets id's document in hash and increments version, in one
// MULTI/EXEC.
func (s *Store) putDoc(ctx context.Context, op, hash, version, id string, js []byte) error {
	if id == "" {
		return fmt.Errorf("redisstore: %s: %w: empty id", op, engine.ErrInvalid)
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, hash, id, js)
		p.Incr(ctx, version)
		return nil
	})
	return wrap(op, err)
}

// deleteDocScript deletes field ARGV[1] of the hash KEYS[1], increments
// the version KEYS[2] and unlinks the document's data KEYS[3…] (UNLINK:
// freed in the background), or returns 0 when there is no such document.
var deleteDocScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
for i = 3, #KEYS do redis.call('UNLINK', KEYS[i]) end
return 1
`)

// deleteDoc deletes id's document from hash, increments version and
// unlinks data (the document's other keys) with deleteDocScript:
// engine.ErrNotFound when there is no such document.
func (s *Store) deleteDoc(ctx context.Context, op, hash, version, id string, data ...string) error {
	keys := append([]string{hash, version}, data...)
	n, err := deleteDocScript.Run(ctx, s.rdb, keys, id).Int()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: %s %q: %w", op, id, engine.ErrNotFound)
	}
	return nil
}

// docs returns the documents of hash (HGETALL), sorted by id.
func docs[D ~doc](ctx context.Context, s *Store, op, hash string) ([]D, error) {
	m, err := s.rdb.HGetAll(ctx, hash).Result()
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]D, 0, len(m))
	for id, js := range m {
		out = append(out, D{ID: id, JSON: []byte(js)})
	}
	slices.SortFunc(out, func(a, b D) int { return strings.Compare(doc(a).ID, doc(b).ID) })
	return out, nil
}

// docsVersion returns the version counter (0 before any write).
func (s *Store) docsVersion(ctx context.Context, op, version string) (int64, error) {
	v, err := s.rdb.Get(ctx, version).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, wrap(op, err)
}

package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/internal/errs"
)

// Format is the storage format this package reads and writes, kept in
// the key <prefix>:format. Format 3 is the Redis Cluster layout: a
// visitor's hash, history and de-duplication marks, an identity link,
// the item rows and the item states' shards carry hash tags. Format 2
// was the layout of the storage primitives (engine/storage) with
// untagged visitor, mark, link, rows and states keys; the layout before
// it had no format key.
const Format = 3

func (s *Store) formatKey() string { return s.p + "format" }

// oldLayoutKeys are keys that every deployment of the layout before
// format 2 that ingested events or held definitions has (item rows,
// catalog items, promo and experiment definitions); they are checked
// first, by one pipeline of EXISTS, before the namespace is scanned for
// any key.
var oldLayoutKeys = []string{"rows", "rows:ids", "states", "items", "items:ids", "promo:version", "promo:offers", "promo:campaigns", "promo:rules", "promo:secret", "promo:stats", "xp:defs", "xp:version"}

// checkFormat reads the format key. When it holds Format, the namespace
// is ours. When it is absent and the namespace holds no key, it writes
// Format (SET NX: concurrent openers agree, and an opener that finds
// keys checks the format key again before it refuses them). Otherwise the namespace
// holds data of another format, and checkFormat returns an errs.Invalid
// error that names the prefix, the found and expected formats and the
// upgrade path. It runs once, in Open: the SCAN of an unmarked namespace
// is not on any request path.
func (s *Store) checkFormat(ctx context.Context) error {
	for range 3 {
		v, err := s.rdb.Get(ctx, s.formatKey()).Result()
		switch {
		case err == nil:
			if v == strconv.Itoa(Format) {
				return nil
			}
			return s.formatError(fmt.Sprintf("%q (key %s)", v, s.formatKey()))
		case !errors.Is(err, redis.Nil):
			return swrap("open: read the storage format", err)
		}
		found, err := s.anyKey(ctx)
		if err != nil {
			return swrap("open: look for data of an older format", err)
		}
		if found != "" {
			// A concurrent opener may have written the format key (and
			// data) since the GET: then read it again.
			if n, err := s.rdb.Exists(ctx, s.formatKey()).Result(); err != nil {
				return swrap("open: read the storage format", err)
			} else if n > 0 {
				continue
			}
			return s.formatError(fmt.Sprintf("1, the layout before storage formats (no key %s, but data such as %s)", s.formatKey(), found))
		}
		ok, err := s.rdb.SetNX(ctx, s.formatKey(), Format, 0).Result()
		if err != nil {
			return swrap("open: write the storage format", err)
		}
		if ok {
			return nil
		}
		// Another opener wrote it first: read what it wrote.
	}
	return fmt.Errorf("redisstore: open: %w: the storage format key %s keeps changing", errs.Unavailable, s.formatKey())
}

// anyKey returns a key under the prefix, or "" when there is none: one of
// oldLayoutKeys (one EXISTS per key, pipelined), else the first key a
// SCAN MATCH <prefix>:* finds (on every master of a cluster).
func (s *Store) anyKey(ctx context.Context) (string, error) {
	cmds := make([]*redis.IntCmd, len(oldLayoutKeys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range oldLayoutKeys {
			cmds[i] = p.Exists(ctx, s.p+k)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for i, c := range cmds {
		if c.Val() > 0 {
			return s.p + oldLayoutKeys[i], nil
		}
	}
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return scanFirst(ctx, s.rdb, s.p+"*")
	}
	// On a cluster, each master holds part of the keys: scan them all
	// (in parallel).
	var (
		mu    sync.Mutex
		found string
	)
	err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		k, err := scanFirst(ctx, m, s.p+"*")
		mu.Lock()
		defer mu.Unlock()
		if found == "" {
			found = k
		}
		return err
	})
	return found, err
}

// scanFirst returns the first key matching pattern that a SCAN of c
// finds, or "" when none does.
func scanFirst(ctx context.Context, c redis.Cmdable, pattern string) (string, error) {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 10_000).Result()
		if err != nil {
			return "", err
		}
		if len(keys) > 0 {
			return keys[0], nil
		}
		if next == 0 {
			return "", nil
		}
		cursor = next
	}
}

func (s *Store) formatError(found string) error {
	return fmt.Errorf("redisstore: open: %w: the keys under prefix %q are of storage format %s, and this Kairos reads format %d; "+
		"to upgrade, use a new prefix (or delete the keys under %q), re-create the definitions (offers, campaigns, rules, experiments, catalog items) "+
		"and replay the event history with `kairos replay`",
		errs.Invalid, s.cfg.Prefix, found, Format, s.cfg.Prefix+":")
}

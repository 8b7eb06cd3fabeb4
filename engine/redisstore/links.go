package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/redisconn"
)

// Interface guard.
var _ engine.LinkStore = (*Store)(nil)

// Identity links (engine.LinkStore):
//
//	<p>:link:{<anon>}    STRING  the user the anonymous id is linked to
//	<p>:links:{<user>}   SET     the anonymous ids linked to the user
//
// Each key has its id's hash tag (redisconn.Tag). On a Redis Cluster the
// keys of one change are in different slots: Link, Unlink and
// UnlinkDevice then write key by key, in an order that a failure half-way
// leaves harmless and a retry completes (Link: the user's set, then the
// link, then the previous user's set).

func (s *Store) linkKey(anon string) string  { return s.p + "link:" + redisconn.Tag(anon) }
func (s *Store) linksKey(user string) string { return s.p + "links:" + redisconn.Tag(user) }

// Link records that anon is user, moving anon from a previous user's set
// when it was linked elsewhere; one transaction on one server.
func (s *Store) Link(ctx context.Context, anon, user string) error {
	if anon == "" || user == "" {
		return fmt.Errorf("redisstore: link: %w: empty id", engine.ErrInvalid)
	}
	if s.cluster {
		// The user's set first (with the read of the link, in one round
		// trip: adding a member twice is no change), then the link.
		var get *redis.StringCmd
		var add *redis.IntCmd
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			get = p.Get(ctx, s.linkKey(anon))
			add = p.SAdd(ctx, s.linksKey(user), anon)
			return nil
		})
		old, err := get.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return wrap("link", err)
		}
		if err := add.Err(); err != nil {
			return wrap("link", err)
		}
		if old == user {
			return nil
		}
		if err := s.rdb.Set(ctx, s.linkKey(anon), user, 0).Err(); err != nil {
			return wrap("link", err)
		}
		if old != "" {
			return wrap("link", s.rdb.SRem(ctx, s.linksKey(old), anon).Err())
		}
		return nil
	}
	old, err := s.rdb.Get(ctx, s.linkKey(anon)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return wrap("link", err)
	}
	if old == user {
		return nil
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if old != "" {
			p.SRem(ctx, s.linksKey(old), anon)
		}
		p.Set(ctx, s.linkKey(anon), user, 0)
		p.SAdd(ctx, s.linksKey(user), anon)
		return nil
	})
	return wrap("link", err)
}

// Resolve returns the user of each id ("" when not linked), in one MGET
// (a pipeline of GETs on a cluster).
func (s *Store) Resolve(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.linkKey(id)
	}
	vals, err := s.mget(ctx, keys)
	if err != nil {
		return nil, wrap("resolve", err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i] = str
		}
	}
	return out, nil
}

// Linked returns the anonymous ids linked to user (unordered).
func (s *Store) Linked(ctx context.Context, user string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.linksKey(user)).Result()
	if err != nil {
		return nil, wrap("linked", err)
	}
	return ids, nil
}

// Unlink removes every link of user and returns the ids it had.
func (s *Store) Unlink(ctx context.Context, user string) ([]string, error) {
	ids, err := s.Linked(ctx, user)
	if err != nil || len(ids) == 0 {
		return ids, err
	}
	// The links first: a failure leaves the set, and a retry finds it.
	err = s.pipeline(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Del(ctx, s.linkKey(id))
		}
		return nil
	})
	if err == nil {
		err = s.rdb.Del(ctx, s.linksKey(user)).Err()
	}
	return ids, wrap("unlink", err)
}

// UnlinkDevice removes the link of anon and anon from its user's set, in
// one transaction (nothing when anon is not linked).
func (s *Store) UnlinkDevice(ctx context.Context, anon string) error {
	user, err := s.rdb.Get(ctx, s.linkKey(anon)).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return wrap("unlink device", err)
	}
	err = s.pipeline(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.linkKey(anon))
		p.SRem(ctx, s.linksKey(user), anon)
		return nil
	})
	return wrap("unlink device", err)
}

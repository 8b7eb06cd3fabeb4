// Package redisconn turns a Redis URL into a go-redis client, deciding
// once, for every Kairos command and test, whether the URL names one
// server or a Redis Cluster:
//
//	redis://127.0.0.1:6379/0                                   one server (redis.Client)
//	redis://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003
//	                                                           a cluster (redis.ClusterClient)
//
// The cluster form is go-redis's (redis.ParseClusterURL): the seed nodes
// are the URL's host and every addr query parameter; one seed is enough
// for go-redis to discover the others, but listing several keeps the
// client starting when one is down. A URL is in cluster form when it has
// at least one addr parameter (a cluster of one seed: add its own address
// once more as addr). Both are used through redis.UniversalClient.
//
// It also computes Redis Cluster hash slots (KeySlot) and deletes the keys
// under a prefix on one server or on every master of a cluster
// (DeleteKeys), for tests and tools.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options are the client settings Kairos sets on top of the URL's.
type Options struct {
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the maximum number of connections (per node on a
	// cluster); 0 keeps go-redis's default.
	PoolSize int
}

// IsCluster reports whether u is in go-redis's cluster form: a URL with at
// least one addr query parameter. A URL that does not parse is not.
func IsCluster(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	return len(p.Query()["addr"]) > 0
}

// Validate parses u in its form (IsCluster) and returns the parse error,
// naming the form.
func Validate(u string) error {
	if IsCluster(u) {
		if _, err := redis.ParseClusterURL(u); err != nil {
			return fmt.Errorf("cluster URL: %w", err)
		}
		if p, _ := url.Parse(u); strings.TrimPrefix(p.Path, "/") != "" {
			return errors.New("cluster URL: a database number (path) is not allowed: a Redis Cluster has database 0 only")
		}
		return nil
	}
	_, err := redis.ParseURL(u)
	return err
}

// New returns the client of u: a *redis.ClusterClient for the cluster
// form, else a *redis.Client, with o's non-zero settings, and with every
// call's context deadline bounding its network reads and writes.
// On a cluster, a connection attempt is tried once (DialerRetries 1): a
// killed master's address is then given up quickly and the slot map
// reloaded (see the callers' retry hooks).
func New(u string, o Options) (redis.UniversalClient, error) {
	if err := Validate(u); err != nil {
		return nil, err
	}
	if IsCluster(u) {
		opt, _ := redis.ParseClusterURL(u)
		set(&opt.DialTimeout, o.DialTimeout)
		set(&opt.ReadTimeout, o.ReadTimeout)
		set(&opt.WriteTimeout, o.WriteTimeout)
		set(&opt.PoolSize, o.PoolSize)
		opt.ContextTimeoutEnabled = true
		if opt.DialerRetries == 0 {
			opt.DialerRetries = 1
		}
		return redis.NewClusterClient(opt), nil
	}
	opt, _ := redis.ParseURL(u)
	set(&opt.DialTimeout, o.DialTimeout)
	set(&opt.ReadTimeout, o.ReadTimeout)
	set(&opt.WriteTimeout, o.WriteTimeout)
	set(&opt.PoolSize, o.PoolSize)
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}

func set[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// Addr describes where c connects, for logs: the address of a single
// server, or the seed addresses of a cluster.
func Addr(c redis.UniversalClient) string {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().Addr
	case *redis.ClusterClient:
		return "cluster " + strings.Join(c.Options().Addrs, ",")
	}
	return fmt.Sprintf("%T", c)
}

// DeleteKeys deletes every key under prefix ("<prefix>:*", found with
// SCAN), on the server or on every master of a cluster, by UNLINK (500
// keys per command on one server, one per command on a cluster, where the
// keys are in different slots).
func DeleteKeys(ctx context.Context, c redis.UniversalClient, prefix string) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			iter := m.Scan(ctx, 0, prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				// Through the cluster client: a key may have moved.
				if err := cc.Unlink(ctx, iter.Val()).Err(); err != nil {
					return err
				}
			}
			return iter.Err()
		})
	}
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return c.Unlink(ctx, batch...).Err()
	}
	return nil
}

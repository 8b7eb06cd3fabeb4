// Package redistest connects tests to the Redis server of the test
// environment, as the project's rules ask:
//
//	url := redistest.URL(t)            // KAIROS_REDIS_URL, or DefaultURL (one server or a cluster)
//	prefix := redistest.Prefix(t, url) // "kairos-test-<random>", its keys deleted on cleanup
//	s, err := redisstore.Open(ctx, redisstore.Config{URL: url, Prefix: prefix})
//
// URL skips the test when the server does not answer, except under
// CI=true, where an unreachable server is a failure. Prefix gives every
// test its own keys, so that packages' tests can share the server while
// they run in parallel.
package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/internal/redisconn"
)

// DefaultURL is the server used when KAIROS_REDIS_URL is not set: the
// loopback one (redisstore.DefaultURL).
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns KAIROS_REDIS_URL (default DefaultURL) once the server
// answers a PING within 3 s. When it does not, the test is skipped, or
// fails under CI=true.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("KAIROS_REDIS_URL")
	if u == "" {
		u = DefaultURL
	}
	c, err := redisconn.New(u, redisconn.Options{})
	if err != nil {
		tb.Fatalf("KAIROS_REDIS_URL: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Redis at %s unreachable under CI=true: %v", u, err)
		}
		tb.Skipf("Redis at %s unreachable: %v", u, err)
	}
	return u
}

// Prefix returns a random key prefix ("kairos-test-" and 16 hex digits)
// and, on the test's cleanup, deletes the keys under it on the server at
// url (a failure to delete is a test error). Cleanups run last in first
// out: a store opened after Prefix is closed before its keys go.
func Prefix(tb testing.TB, url string) string {
	tb.Helper()
	prefix := fmt.Sprintf("kairos-test-%016x", rand.Uint64())
	tb.Cleanup(func() {
		c, err := redisconn.New(url, redisconn.Options{})
		if err != nil {
			tb.Errorf("cleanup of %s:*: %v", prefix, err)
			return
		}
		defer c.Close()
		if err := DeleteKeys(context.Background(), c, prefix); err != nil {
			tb.Errorf("cleanup of %s:*: %v", prefix, err)
		}
	})
	return prefix
}

// DeleteKeys deletes every key under prefix ("<prefix>:*", found with
// SCAN), on the server or every master of a cluster
// (redisconn.DeleteKeys).
func DeleteKeys(ctx context.Context, c redis.UniversalClient, prefix string) error {
	return redisconn.DeleteKeys(ctx, c, prefix)
}

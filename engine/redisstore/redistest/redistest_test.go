package redistest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine/redisstore/redistest"
)

// TestPrefix: the keys under a test's prefix are gone after its cleanup,
// more than one UNLINK batch of them, and the keys of other prefixes
// stay.
func TestPrefix(t *testing.T) {
	url := redistest.URL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	other := redistest.Prefix(t, url) // outlives the subtest
	if err := c.Set(ctx, other+":k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var prefix string
	t.Run("sub", func(t *testing.T) {
		prefix = redistest.Prefix(t, url)
		if !strings.HasPrefix(prefix, "kairos-test-") || prefix == other {
			t.Fatalf("prefix %q (other %q)", prefix, other)
		}
		pipe := c.Pipeline()
		for i := range 1200 {
			pipe.Set(ctx, fmt.Sprintf("%s:k%d", prefix, i), i, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	})
	keys, err := c.Keys(ctx, prefix+":*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("after cleanup: %d keys under %s (%v), want none", len(keys), prefix, err)
	}
	if n, err := c.Exists(ctx, other+":k").Result(); err != nil || n != 1 {
		t.Errorf("another prefix's key: exists %d, %v; want it kept", n, err)
	}
}

package redisstore_test

import (
	"context"
	"log"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/redisstore"
)

// Opening the store of a deployment that shares its Redis database with
// others under its own prefix.
func ExampleOpen() {
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisstore.Config{
		URL:    "redis://127.0.0.1:6379/0",
		Prefix: "shop-eu",
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, engine.ErrUnavailable) when Redis is down
	}
	defer s.Close()
	var _ engine.Store = s
}

package membus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
)

func Example() {
	bus := membus.New(membus.Options{})
	defer bus.Close()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- bus.Consume(ctx, func(ctx context.Context, batch []signals.Event) error {
			for _, e := range batch {
				fmt.Println("applied", e.Type, e.ID)
			}
			return nil
		})
	}()
	// Publish returns once the handler has applied the batch.
	err := bus.Publish(context.Background(), []signals.Event{
		{ID: "e1", Type: signals.TypeView, Visitor: "v1", Item: "sku-42", Time: signals.Timestamp{Time: time.Now()}},
		{ID: "e2", Type: signals.TypeLike, Visitor: "v1", Item: "sku-42"},
	})
	fmt.Println("publish:", err)
	stop()
	fmt.Println("consume:", <-done)
	// Output:
	// applied view e1
	// applied like e2
	// publish: <nil>
	// consume: <nil>
}

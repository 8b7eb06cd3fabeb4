package rabbitmq_test

import (
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

func ExampleDial() {
	ctx := context.Background()
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second) // fail start-up if the broker stays down
	defer cancel()
	bus, err := rabbitmq.Dial(dialCtx, rabbitmq.Config{
		URL:     "amqp://guest:guest@127.0.0.1:5672/",
		Replica: "0",
		Logger:  slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	// The engine side: this replica's share of the stream, in batches.
	go bus.Consume(ctx, func(ctx context.Context, batch []signals.Event) error {
		return nil // apply the batch; an error has it redelivered
	})

	// The collector side: nil means the broker stored every event.
	err = bus.Publish(ctx, []signals.Event{{ID: "e1", Type: signals.TypeView, Visitor: "v1", Item: "sku-42"}})
	if err != nil {
		log.Print(err) // errors.Is(err, signals.ErrUnavailable): answer 503
	}
}

package signals

import "context"

// Routes of consumed events
//
// A keyed bus (signals/rabbitmq with partitions) delivers each event on
// the partition of its routing key: the visitor id, or the user's state
// key once the publisher knew the visitor to be linked (engine.Router).
// The engine applies an event only on the partition of the state it
// changes, so that one consumer writes each state; an event that arrived
// on another partition (published just before its visitor was linked) is
// forwarded there with Forwarder. The consumer tells the handler how each
// event of a batch arrived with WithRoutes; RoutesOf reads it.

// Route says how one consumed event arrived.
type Route struct {
	// Key is the routing key it was published with.
	Key string
	// Forwarded reports that a consumer forwarded it (Forwarder), after it
	// first arrived on another partition, or sent it back for a later try
	// (Retrier).
	Forwarded bool
	// Attempt is the number of times a consumer sent it back for a later
	// try (Retrier); 0 for an event on its first delivery.
	Attempt int
	// Foreign reports that it arrived on a partition that is not its
	// key's (a producer published it with the visitor as the routing key
	// through the consistent-hash exchange, which places keys otherwise):
	// the key's partition owns its state, so the engine forwards it there.
	Foreign bool
}

type routesKey struct{}

// WithRoutes returns ctx carrying the routes of a batch, one per event
// and in the batch's order; consumers of keyed buses call it before the
// BatchHandler.
func WithRoutes(ctx context.Context, routes []Route) context.Context {
	return context.WithValue(ctx, routesKey{}, routes)
}

// RoutesOf returns the routes WithRoutes put into ctx, or nil when the
// bus did not say (an unkeyed bus: every event is the handler's).
func RoutesOf(ctx context.Context) []Route {
	r, _ := ctx.Value(routesKey{}).([]Route)
	return r
}

// Forwarder re-publishes consumed events under an explicit routing key,
// marked as forwarded (Route.Forwarded). Like Publish, nil means the
// broker stored them all; events keep their order. They were validated
// when first published and are not validated again.
type Forwarder interface {
	Forward(ctx context.Context, key string, events []Event) error
}

// Retrier sends consumed events back to be delivered again after a delay
// (the bus's retry delay), under an explicit routing key, marked as
// forwarded and with Route.Attempt = attempt. A consumer uses it for
// events it cannot apply now but must not hold up the events behind them
// (a multi-tenant consumer: one tenant's failing engine). Like Publish,
// nil means the broker stored them all.
type Retrier interface {
	Retry(ctx context.Context, key string, events []Event, attempt int) error
}

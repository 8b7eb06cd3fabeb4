package engine

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/signals"
)

// Applied reports, for each event, whether the engine has committed it:
// its de-duplication mark is stored, under the state it was committed to
// (the user's once linked) or under its visitor id. An event the engine
// has applied stays reported for the store's de-duplication window. The
// events need not be unique; nothing is changed. With RabbitMQ the
// engine applies events after the broker confirmed them, so a caller
// that must read its own writes (a recommendation right after an
// identify) asks this until every event is applied.
func (e *Engine) Applied(ctx context.Context, evs []signals.Event) ([]bool, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	keys, _, err := e.identities(ctx, evs)
	if err != nil {
		return nil, fmt.Errorf("engine: applied: %w", err)
	}
	r := e.readSeen(ctx, evs, keys)
	<-r.done
	if r.err != nil {
		return nil, fmt.Errorf("engine: applied: %w", r.err)
	}
	return r.seen, nil
}

// Package periodic runs a function at a fixed interval until a context
// ends: the background loops of the engine, the definition watchers and
// the experiments engine.
package periodic

import (
	"context"
	"time"
)

// Run calls fn every interval (the first call one interval after the
// start) until ctx ends, and then returns nil. A call in progress when
// ctx ends finishes first; fn sees ctx.
func Run(ctx context.Context, every time.Duration, fn func(ctx context.Context)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			fn(ctx)
		}
	}
}

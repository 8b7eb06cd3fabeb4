package main

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/api"
)

// alsoErase erases a visitor's state in one more component before the
// rest: forget (e.g. promo.Engine.ForgetVisitor: caps, cooldowns and
// promotion log; experiments.Engine.ForgetVisitor: assignments and
// units), its error prefixed with name, then next.
type alsoErase struct {
	name   string
	forget func(ctx context.Context, id string) error
	next   api.VisitorEraser
}

// EraseVisitor implements api.VisitorEraser.
func (e alsoErase) EraseVisitor(ctx context.Context, id string) error {
	if err := e.forget(ctx, id); err != nil {
		return fmt.Errorf("%s: %w", e.name, err)
	}
	return e.next.EraseVisitor(ctx, id)
}

var _ api.VisitorEraser = alsoErase{}

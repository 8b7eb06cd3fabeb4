package main

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/api"
)

// alsoErase erases a visitor's state in one more component before the
// rest: forget (e.g. promo.Engine.ForgetVisitor: caps, cooldowns and
// promotion log; experiments.Engine.ForgetVisitor: assignments and
// units) for every id the erasure covers (ids: the visitor, and a user's
// linked devices — engine.Engine.ErasureIDs; nil: the id alone), its error
// prefixed with name, then next.
type alsoErase struct {
	name   string
	forget func(ctx context.Context, id string) error
	ids    func(ctx context.Context, id string) ([]string, error)
	next   api.VisitorEraser
}

// EraseVisitor implements api.VisitorEraser.
func (e alsoErase) EraseVisitor(ctx context.Context, id string) error {
	ids := []string{id}
	if e.ids != nil {
		var err error
		if ids, err = e.ids(ctx, id); err != nil {
			return err
		}
	}
	for _, v := range ids {
		if err := e.forget(ctx, v); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return e.next.EraseVisitor(ctx, id)
}

var _ api.VisitorEraser = alsoErase{}

package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kairoshq/kairos/signals"
)

// Archiver keeps every accepted event (offline/archive implements it). The
// engine appends each batch's fresh events before committing it, so every
// acknowledged event is archived; a batch that fails after the append is
// archived again when it is redelivered (readers de-duplicate by id).
type Archiver interface {
	Append(ctx context.Context, events []signals.Event) error
}

// Eraser records the erasure of a visitor so that replay and retrain skip
// its archived events (offline/archive implements it).
type Eraser interface {
	Erase(ctx context.Context, visitor string) error
}

// SetArchive makes the engine archive every fresh event and record
// erasures. Call it before Run.
func (e *Engine) SetArchive(a Archiver, er Eraser) {
	e.handleMu.Lock()
	defer e.handleMu.Unlock()
	e.archive, e.eraser = a, er
}

// archiveFresh appends the batch's fresh events to the archive, if any.
func (e *Engine) archiveFresh(ctx context.Context, fresh []signals.Event) error {
	if e.archive == nil {
		return nil
	}
	if err := e.archive.Append(ctx, fresh); err != nil {
		return fmt.Errorf("engine: archive: %w", err)
	}
	return nil
}

// EraseVisitor erases a visitor: its state in the store (history,
// factors, session) and, through the archive's tombstone, its archived
// events for every later replay and retrain (`kairos archive compact`
// rewrites the segments without them). When id is a known user (see
// LinkStore), the user's state and every anonymous id linked to it are
// erased too, and the links removed. The erased events are no longer in
// any history, so the visitor's factors vanish from the live model with
// its state; its past contributions to item factors fade at the next
// retrain, which skips its events. It returns ErrNotFound when there was
// nothing to erase and no archive is configured.
func (e *Engine) EraseVisitor(ctx context.Context, id string) error {
	if id == "" || len(id) > maxItemIDBytes {
		return fmt.Errorf("%w: visitor: must be 1 to %d bytes", ErrInvalid, maxItemIDBytes)
	}
	states, visitors := []string{id, UserKey(id)}, []string{id}
	if ls, ok := e.store.(LinkStore); ok {
		anon, err := ls.Unlink(ctx, id)
		if err != nil {
			return fmt.Errorf("engine: erase visitor: %w", err)
		}
		states = append(states, anon...)
		visitors = append(visitors, anon...)
	}
	found := false
	for _, k := range states {
		err := e.store.DeleteVisitor(ctx, k)
		switch {
		case err == nil:
			found = true
		case !isNotFound(err):
			return fmt.Errorf("engine: erase visitor: %w", err)
		}
	}
	e.handleMu.Lock()
	er := e.eraser
	e.handleMu.Unlock()
	if er != nil {
		for _, v := range visitors {
			if err := er.Erase(ctx, v); err != nil {
				return fmt.Errorf("engine: erase visitor from the archive: %w", err)
			}
		}
		e.log.LogAttrs(ctx, slog.LevelInfo, "visitor erased", slog.Bool("had_state", found), slog.Int("ids", len(visitors)))
		return nil
	}
	if !found {
		return fmt.Errorf("%w: visitor has no state", ErrNotFound)
	}
	return nil
}

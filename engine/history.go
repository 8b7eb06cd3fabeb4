package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/kairoshq/kairos/internal/errs"

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
// erased too, and the links removed. When id is an anonymous id linked to
// a user (a device), the link is removed and the device's events leave
// the user's history, whose factors are folded in again from what
// remains (events kept before histories recorded their device cannot be
// told apart and stay). The erased events are no longer in any history,
// so the visitor's factors vanish from the live model with its state;
// its past contributions to item factors fade at the next retrain, which
// skips its events. It returns ErrNotFound when there was nothing to
// erase and no archive is configured.
func (e *Engine) EraseVisitor(ctx context.Context, id string) error {
	if id == "" || len(id) > maxItemIDBytes {
		return fmt.Errorf("%w: visitor: must be 1 to %d bytes", ErrInvalid, maxItemIDBytes)
	}
	states, visitors := []string{id, UserKey(id)}, []string{id}
	found := false
	anon, err := e.store.Unlink(ctx, id)
	if err != nil {
		return fmt.Errorf("engine: erase visitor: %w", err)
	}
	states = append(states, anon...)
	visitors = append(visitors, anon...)
	if found, err = e.eraseDevice(ctx, e.store, id); err != nil {
		return fmt.Errorf("engine: erase visitor: %w", err)
	}
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
		return errs.New(ErrNotFound, "visitor %q has no state to erase", id)
	}
	return nil
}

// eraseDevice erases id from the user it is linked to, if any: the link,
// and id's events in the user's history (HistoryEvent.Device), the user
// folded in again from the rest. It reports whether the user's state
// changed. It holds handleMu, so this replica's consumer does not commit
// the user meanwhile.
func (e *Engine) eraseDevice(ctx context.Context, ls LinkStore, id string) (bool, error) {
	users, err := ls.Resolve(ctx, []string{id})
	if err != nil || users[0] == "" {
		return false, err
	}
	if err := ls.UnlinkDevice(ctx, id); err != nil {
		return false, err
	}
	e.handleMu.Lock()
	defer e.handleMu.Unlock()
	vs, err := e.store.Visitors(ctx, []string{UserKey(users[0])})
	if err != nil {
		return false, err
	}
	v := vs[0]
	kept := slices.DeleteFunc(slices.Clone(v.History), func(h HistoryEvent) bool { return h.Device == id })
	if len(kept) == len(v.History) {
		return false, nil
	}
	o, gen := e.model(), e.gen.Load()
	old, ok := unpackFactors(v.Factors, o.K(), gen)
	if !ok {
		old = nil
	}
	learn := e.learn
	learn.hist = e.modelEvents(learn.hist[:0], kept)
	v.History, v.Factors = kept, nil
	if len(learn.hist) > 0 {
		x := make([]float32, o.K())
		if err := learn.learner.Observe(x, old, learn.hist, nil); err != nil {
			return false, err
		}
		v.Factors = packFactors(x, gen)
	}
	if err := e.store.ReplaceVisitor(ctx, v); err != nil {
		learn.learner.Reset()
		return false, err
	}
	return true, learn.learner.Flush()
}

// Package defstore keeps versioned definitions — offers, campaigns, rules,
// experiments, catalog items: JSON documents of one collection each — on
// the storage primitives (storage.Documents), and tells replicas when
// any of them changed so that they reload their snapshot.
//
// It is the one place the definition stores of promo and experiments (and
// the catalog) share: create-if-absent and replace happen atomically in
// the backend (storage.Create, storage.Replace), never as a check then a
// write, and a change of a collection is seen by every replica polling
// its version.
package defstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/periodic"
)

// Collection is one collection of definitions.
type Collection struct {
	docs storage.Documents
	name string
}

// New returns the collection name of docs.
func New(docs storage.Documents, name string) Collection {
	return Collection{docs: docs, name: name}
}

// Name returns the collection's name.
func (c Collection) Name() string { return c.name }

// Put stores v as JSON under id with the given mode (storage.Create fails
// with errs.Conflict when id exists; storage.Replace with errs.NotFound
// when it does not).
func (c Collection) Put(ctx context.Context, id string, v any, mode storage.PutMode) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s %q: encode: %w", c.name, id, err)
	}
	if err := c.docs.PutDoc(ctx, c.name, id, b, mode); err != nil {
		return fmt.Errorf("%s %q: %w", c.name, id, err)
	}
	return nil
}

// Get decodes the definition id into v, or returns errs.NotFound.
func (c Collection) Get(ctx context.Context, id string, v any) error {
	b, err := c.docs.Doc(ctx, c.name, id)
	if err != nil {
		return fmt.Errorf("%s %q: %w", c.name, id, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %q: %w: stored definition: %w", c.name, id, errs.Internal, err)
	}
	return nil
}

// Delete removes the definition id, or returns errs.NotFound.
func (c Collection) Delete(ctx context.Context, id string) error {
	if err := c.docs.DeleteDoc(ctx, c.name, id); err != nil {
		return fmt.Errorf("%s %q: %w", c.name, id, err)
	}
	return nil
}

// All returns every definition in ascending id order.
func (c Collection) All(ctx context.Context) ([]storage.Doc, error) {
	return c.Page(ctx, "", 0)
}

// Page returns up to limit definitions with ids after after, in
// ascending id order (limit <= 0: all).
func (c Collection) Page(ctx context.Context, after string, limit int) ([]storage.Doc, error) {
	ds, err := c.docs.Docs(ctx, c.name, after, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: list: %w", c.name, err)
	}
	return ds, nil
}

// Version returns the collection's version (see storage.Documents).
func (c Collection) Version(ctx context.Context) (int64, error) {
	v, err := c.docs.DocsVersion(ctx, c.name)
	if err != nil {
		return 0, fmt.Errorf("%s: version: %w", c.name, err)
	}
	return v, nil
}

// Upsert creates or replaces the definition id with what build returns,
// atomically with respect to other writers of id: build is given the
// stored JSON (nil when there is none) and returns the value to store.
// It reports whether the definition was created. A concurrent create or
// delete of id makes it read again and retry (at most a few times, then
// errs.Conflict).
func (c Collection) Upsert(ctx context.Context, id string, build func(old []byte) (any, error)) (created bool, err error) {
	for range 8 {
		old, err := c.docs.Doc(ctx, c.name, id)
		switch {
		case errors.Is(err, errs.NotFound):
			old = nil
		case err != nil:
			return false, fmt.Errorf("%s %q: %w", c.name, id, err)
		}
		v, err := build(old)
		if err != nil {
			return false, err
		}
		mode := storage.Replace
		if old == nil {
			mode = storage.Create
		}
		err = c.Put(ctx, id, v, mode)
		switch {
		case err == nil:
			return old == nil, nil
		case errors.Is(err, errs.Conflict), errors.Is(err, errs.NotFound):
			continue // created or deleted meanwhile: read again
		default:
			return false, err
		}
	}
	return false, errs.New(errs.Conflict, "%s %q is being changed concurrently; retry", c.name, id)
}

// Versions watches the versions of collections: Poll reads them and
// reports whether they changed since Mark was last given a reading.
type Versions struct {
	colls []Collection
	seen  []int64
}

// NewVersions watches colls; the first Poll reports a change.
func NewVersions(colls ...Collection) *Versions {
	return &Versions{colls: colls}
}

// Poll returns the current versions and whether they differ from the
// ones last marked.
func (v *Versions) Poll(ctx context.Context) ([]int64, bool, error) {
	cur := make([]int64, len(v.colls))
	for i, c := range v.colls {
		n, err := c.Version(ctx)
		if err != nil {
			return nil, false, err
		}
		cur[i] = n
	}
	return cur, v.seen == nil || !slices.Equal(cur, v.seen), nil
}

// Mark records cur (a Poll's reading, taken before the reload that
// followed it) as seen.
func (v *Versions) Mark(cur []int64) { v.seen = cur }

// Watch polls v every interval until ctx ends and calls reload after a
// change; a failed poll or reload is logged and tried again at the next
// tick. It returns nil when ctx ends.
func Watch(ctx context.Context, v *Versions, every time.Duration, reload func(context.Context) error, log *slog.Logger) error {
	return periodic.Run(ctx, every, func(ctx context.Context) {
		if err := v.Reload(ctx, reload); err != nil && ctx.Err() == nil && log != nil {
			log.LogAttrs(ctx, slog.LevelWarn, "definitions not reloaded", slog.Any("err", err))
		}
	})
}

// Reload polls v once and, when the versions changed, calls reload and
// marks the reading seen if it succeeded.
func (v *Versions) Reload(ctx context.Context, reload func(context.Context) error) error {
	cur, changed, err := v.Poll(ctx)
	if err != nil || !changed {
		return err
	}
	if err := reload(ctx); err != nil {
		return err
	}
	v.Mark(cur)
	return nil
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/model"

	"github.com/kairoshq/kairos/signals"
)

// Catalog limits.
const (
	maxItemIDBytes = 200
	maxTextBytes   = 1024
	maxTags        = 64
	maxAttrs       = 64
)

// itemCatalog is the engine's catalog part: the item index (id ↔ row,
// assigned by the store), the cache of catalog entries with the set of
// inactive rows, the trending counters (fed by ingest, read by serving)
// and the prior of provisional item factors (provisional.go). Its methods
// are the catalog's CRUD (PutItem, Item, DeleteItem, Items), peer catalog
// changes and provisional factors.
type itemCatalog struct {
	// mu guards the item index, the catalog cache and the trending
	// counters (see doc.go for the lock order).
	mu       sync.RWMutex
	rowOf    map[string]int32
	idOf     []string // row → id ("" for rows this replica has not heard of)
	catalog  map[string]Item
	inactive model.Bitset
	// deleted holds the ids deleted from the catalog and not added back
	// (their tombstones, DeletedItemsCollection): their rows stay
	// inactive, though events name them.
	deleted  map[string]struct{}
	trending *model.Trending
	peers    peerTrending // the peers' part of trending (trending_share.go)
	segments map[string]*segment

	// The change log of item rows, for the views of filter expressions
	// (filters.go): fver changes with every change of a row's entry; flog
	// holds the rows changed after version flogBase, in order.
	fver     uint64
	flog     []int32
	flogBase uint64

	priorMu sync.Mutex // guards prior, priorAt (provisional item factors)
	prior   *model.TagPrior
	priorAt time.Time
}

// setRowLocked records id ↔ row; the catalog's mu must be held for writing
// (or the engine not yet shared).
func (e *itemCatalog) setRowLocked(id string, row int32) {
	e.rowOf[id] = row
	for int(row) >= len(e.idOf) {
		e.idOf = append(e.idOf, "")
	}
	e.idOf[row] = id
	_, gone := e.deleted[id]
	if it, ok := e.catalog[id]; ok && !it.Active || gone {
		e.inactive.Set(int(row))
	}
	e.rowChangedLocked(row)
}

// itemRow returns the row of an item id.
func (e *itemCatalog) itemRow(id string) (int32, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	r, ok := e.rowOf[id]
	return r, ok
}

// loadCatalog reads the whole catalog into the cache, then the
// tombstones of the items deleted from it.
func (e *Engine) loadCatalog(ctx context.Context) error {
	after := ""
	for {
		page, err := e.items().Items(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("engine: load catalog: %w", err)
		}
		e.mu.Lock()
		for _, it := range page {
			e.cacheItemLocked(it)
		}
		e.mu.Unlock()
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	err := e.items().DeletedIDs(ctx, func(ids []string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, id := range ids {
			if _, back := e.catalog[id]; !back { // added back after a deletion that left its tombstone
				e.uncacheItemLocked(id)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("engine: load deleted items: %w", err)
	}
	return nil
}

// cacheItemLocked updates the catalog cache and the inactive set.
func (e *itemCatalog) cacheItemLocked(it Item) {
	e.catalog[it.ID] = it
	delete(e.deleted, it.ID)
	row, ok := e.rowOf[it.ID]
	if !ok {
		return
	}
	e.rowChangedLocked(row)
	if it.Active {
		if e.inactive.Has(int(row)) {
			e.inactive[row>>6] &^= 1 << (uint(row) & 63)
		}
		return
	}
	e.inactive.Set(int(row))
}

// validateItem checks a catalog entry and names the first bad field.
func validateItem(it Item) error {
	if it.ID == "" {
		return fmt.Errorf("%w: id: missing", ErrInvalid)
	}
	if err := signals.CheckID("id", it.ID, maxItemIDBytes); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// The category, tags and attribute names are matched by filters and
	// shown in segments: the one id rule, as for ids.
	if err := signals.CheckID("category", it.Category, maxItemIDBytes); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case len(it.Title) > maxTextBytes || !utf8.ValidString(it.Title):
		return fmt.Errorf("%w: title: must be valid UTF-8, at most %d bytes", ErrInvalid, maxTextBytes)
	case len(it.Tags) > maxTags:
		return fmt.Errorf("%w: tags: %d tags, at most %d", ErrInvalid, len(it.Tags), maxTags)
	case len(it.Attrs) > maxAttrs:
		return fmt.Errorf("%w: attributes: %d attributes, at most %d", ErrInvalid, len(it.Attrs), maxAttrs)
	}
	for i, t := range it.Tags {
		if t == "" {
			return fmt.Errorf("%w: tags[%d]: empty", ErrInvalid, i)
		}
		if err := signals.CheckID(fmt.Sprintf("tags[%d]", i), t, maxItemIDBytes); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	for k, v := range it.Attrs {
		if k == "" || len(v) > maxTextBytes || !utf8.ValidString(v) {
			return fmt.Errorf("%w: attributes[%q]: keys up to %d bytes, values up to %d, valid UTF-8", ErrInvalid, k, maxItemIDBytes, maxTextBytes)
		}
		if err := signals.CheckID(fmt.Sprintf("attributes[%q]", k), k, maxItemIDBytes); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return nil
}

// PutItem validates and stores a catalog entry (creating or replacing it)
// and returns it as stored. Inactive items are never recommended.
func (e *Engine) PutItem(ctx context.Context, it Item) (Item, error) {
	if err := validateItem(it); err != nil {
		return Item{}, err
	}
	it, _, err := e.items().SaveItem(ctx, it, e.cfg.Now().UTC())
	if err != nil {
		return Item{}, fmt.Errorf("engine: put item: %w", err)
	}
	e.itemWritten(ctx, it)
	return it, nil
}

// Item returns a catalog entry or ErrNotFound.
func (e *Engine) Item(ctx context.Context, id string) (Item, error) {
	it, err := e.items().Item(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Item{}, errs.Wrap(ErrNotFound, err, "item %q not found", id)
	}
	return it, err
}

// DeleteItem removes a catalog entry (ErrNotFound if absent); the item is
// never recommended again unless it is added back: its tombstone, written
// before the entry is removed, keeps it inactive on every replica and
// after restarts, though events still name it. A delete that finds no
// entry removes only a tombstone it wrote itself: deleting twice (a
// client's retry) keeps the first delete's tombstone. Deletes are
// serialised on this replica, so that concurrent retries cannot remove
// the tombstone of the one that removed the entry.
func (e *Engine) DeleteItem(ctx context.Context, id string) error {
	e.deleteMu.Lock()
	defer e.deleteMu.Unlock()
	wrote, err := e.items().MarkDeleted(ctx, id, e.cfg.Now().UTC())
	if err != nil {
		return fmt.Errorf("engine: delete item %q: %w", id, err)
	}
	if err := e.items().DeleteItem(ctx, id); err != nil {
		if wrote { // else the tombstone is an earlier delete's, and stays
			if cerr := e.items().ClearDeleted(ctx, id); cerr != nil {
				e.log.LogAttrs(ctx, slog.LevelWarn, "tombstone of an item not deleted left behind", slog.String("item", id), slog.Any("err", cerr))
			}
		}
		if errors.Is(err, ErrNotFound) {
			return errs.Wrap(ErrNotFound, err, "item %q not found", id)
		}
		return err
	}
	e.mu.Lock()
	e.uncacheItemLocked(id)
	e.mu.Unlock()
	e.announceCatalog(ctx, catalogChange{Deleted: id})
	return nil
}

// uncacheItemLocked removes id from the catalog cache and records its
// deletion (its row becomes inactive, and stays so if events name it).
func (e *itemCatalog) uncacheItemLocked(id string) {
	delete(e.catalog, id)
	e.deleted[id] = struct{}{}
	if row, ok := e.rowOf[id]; ok {
		e.inactive.Set(int(row))
		e.rowChangedLocked(row)
	}
}

// CatalogSize returns the number of entries of the catalog (as this
// replica knows them: its own writes and its peers' announced ones).
func (e *Engine) CatalogSize() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.catalog)
}

// InCatalog reports whether id is an entry of the catalog (see
// CatalogSize).
func (e *Engine) InCatalog(id string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := e.catalog[id]
	return ok
}

// Items lists catalog entries by ascending id after the given one.
func (e *Engine) Items(ctx context.Context, after string, limit int) ([]Item, error) {
	if limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("%w: limit: %d is not in [1, 1000]", ErrInvalid, limit)
	}
	return e.items().Items(ctx, after, limit)
}

// catalogChange is the peer message of a catalog write.
type catalogChange struct {
	Replica string `json:"replica"`
	Item    *Item  `json:"item,omitempty"`
	Deleted string `json:"deleted,omitempty"`
}

func (e *Engine) announceCatalog(ctx context.Context, c catalogChange) {
	if e.bus == nil {
		return
	}
	c.Replica = e.cfg.Replica
	b, _ := json.Marshal(c)
	if err := e.bus.Broadcast(ctx, signals.TopicUpdates, append([]byte{msgCatalog}, b...)); err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "catalog change not announced to peers", slog.Any("err", err))
	}
}

func (e *Engine) applyPeerCatalog(b []byte) error {
	var c catalogChange
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	if c.Replica == e.cfg.Replica {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.Item != nil {
		e.cacheItemLocked(*c.Item)
	}
	if c.Deleted != "" {
		e.uncacheItemLocked(c.Deleted)
	}
	return nil
}

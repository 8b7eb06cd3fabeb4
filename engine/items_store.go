package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// ItemsCollection is the documents collection of the catalog items.
const ItemsCollection = "items"

// DeletedItemsCollection is the documents collection of the tombstones of
// deleted items: an item deleted from the catalog is never recommended
// again, though events still name it, until it is added back — on every
// replica, and after a restart.
const DeletedItemsCollection = "items_deleted"

// ItemStore keeps the catalog items as JSON documents (engine.Item) of
// the collection "items" on any backend's storage.Documents, written
// once for every backend: creates are atomic (storage.Create), replaces
// keep the stored Created (defstore's upsert), and Items pages in id
// order. It implements CatalogStore.
type ItemStore struct {
	c, deleted defstore.Collection
}

// tombstone is the document of a deleted item.
type tombstone struct {
	Deleted time.Time `json:"deleted"`
}

// Interface guard.
var _ CatalogStore = (*ItemStore)(nil)

// ItemsOn returns the catalog kept on docs.
func ItemsOn(docs storage.Documents) *ItemStore {
	return &ItemStore{c: defstore.New(docs, ItemsCollection), deleted: defstore.New(docs, DeletedItemsCollection)}
}

// PutItem creates or replaces it as given.
func (s *ItemStore) PutItem(ctx context.Context, it Item) error {
	if err := checkItemID(it.ID); err != nil {
		return err
	}
	return s.c.Put(ctx, it.ID, it, storage.Upsert)
}

// CreateItem stores it unless its id exists (an error wrapping
// ErrConflict); of concurrent creators of one id exactly one succeeds.
func (s *ItemStore) CreateItem(ctx context.Context, it Item) error {
	if err := checkItemID(it.ID); err != nil {
		return err
	}
	return s.c.Put(ctx, it.ID, it, storage.Create)
}

// SaveItem creates or replaces it with Updated set to now and Created
// kept from the stored item (now when it creates), atomically with
// respect to other writers of the id; it returns the item as stored and
// whether it was created.
func (s *ItemStore) SaveItem(ctx context.Context, it Item, now time.Time) (Item, bool, error) {
	if err := checkItemID(it.ID); err != nil {
		return Item{}, false, err
	}
	created, err := s.c.Upsert(ctx, it.ID, func(old []byte) (any, error) {
		it.Created, it.Updated = now, now
		if old != nil {
			var o Item
			if err := json.Unmarshal(old, &o); err != nil {
				return nil, fmt.Errorf("item %q: %w: stored item: %w", it.ID, errs.Internal, err)
			}
			it.Created = o.Created
		}
		return it, nil
	})
	if err != nil {
		return Item{}, false, err
	}
	return it, created, nil
}

// Item returns one item or an error wrapping ErrNotFound.
func (s *ItemStore) Item(ctx context.Context, id string) (Item, error) {
	var it Item
	if err := s.c.Get(ctx, id, &it); err != nil {
		return Item{}, err
	}
	return it, nil
}

// DeleteItem removes an item or returns an error wrapping ErrNotFound.
func (s *ItemStore) DeleteItem(ctx context.Context, id string) error {
	return s.c.Delete(ctx, id)
}

// MarkDeleted records that id was deleted from the catalog at, and
// reports whether it wrote the tombstone (false: id was deleted before,
// and its first tombstone is kept).
func (s *ItemStore) MarkDeleted(ctx context.Context, id string, at time.Time) (bool, error) {
	if err := checkItemID(id); err != nil {
		return false, err
	}
	err := s.deleted.Put(ctx, id, tombstone{Deleted: at}, storage.Create)
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// ClearDeleted forgets the deletion of id (it was added back, or its
// deletion did not happen); no tombstone is not an error.
func (s *ItemStore) ClearDeleted(ctx context.Context, id string) error {
	if err := s.deleted.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// DeletedIDs calls fn with the ids of the tombstones, in pages, in
// ascending order.
func (s *ItemStore) DeletedIDs(ctx context.Context, fn func(ids []string)) error {
	after := ""
	for {
		ds, err := s.deleted.Page(ctx, after, 1000)
		if err != nil {
			return err
		}
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		fn(ids)
		if len(ds) < 1000 {
			return nil
		}
		after = ds[len(ds)-1].ID
	}
}

// Items lists up to limit (at least 1) items with ids greater than
// after, in ascending id order.
func (s *ItemStore) Items(ctx context.Context, after string, limit int) ([]Item, error) {
	if limit < 1 {
		return nil, fmt.Errorf("%w: limit: %d, at least 1", ErrInvalid, limit)
	}
	ds, err := s.c.Page(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Item, len(ds))
	for i, d := range ds {
		if err := json.Unmarshal(d.JSON, &out[i]); err != nil {
			return nil, fmt.Errorf("item %q: %w: stored item: %w", d.ID, errs.Internal, err)
		}
	}
	return out, nil
}

func checkItemID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: id: missing", ErrInvalid)
	}
	return nil
}

// items is the engine's catalog, on its store's documents.
func (e *Engine) items() *ItemStore { return ItemsOn(e.store) }

// CreateItem validates and stores a new catalog entry and returns it as
// stored, or returns an error wrapping ErrConflict when the id exists
// (atomically in the store: of concurrent creators, on any replica,
// exactly one succeeds).
func (e *Engine) CreateItem(ctx context.Context, it Item) (Item, error) {
	if err := validateItem(it); err != nil {
		return Item{}, err
	}
	now := e.cfg.Now().UTC()
	it.Created, it.Updated = now, now
	switch err := e.items().CreateItem(ctx, it); {
	case errors.Is(err, errs.Conflict):
		return Item{}, errs.Wrap(errs.Conflict, err, "item %q already exists: use PUT /v1/items/{id} to replace it", it.ID)
	case err != nil:
		return Item{}, fmt.Errorf("engine: create item: %w", err)
	}
	e.itemWritten(ctx, it)
	return it, nil
}

// itemWritten updates the cache, tells the peers and gives a new item
// provisional factors, after a write of it.
func (e *Engine) itemWritten(ctx context.Context, it Item) {
	e.mu.Lock()
	_, wasDeleted := e.deleted[it.ID]
	e.cacheItemLocked(it)
	e.mu.Unlock()
	if wasDeleted { // added back: its tombstone goes (a stale one is ignored while the item exists)
		if err := e.items().ClearDeleted(ctx, it.ID); err != nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "tombstone of an item added back left behind", slog.String("item", it.ID), slog.Any("err", err))
		}
	}
	e.announceCatalog(ctx, catalogChange{Item: &it})
	if err := e.provisionalFactors(ctx, it); err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "no provisional factors", slog.String("item", it.ID), slog.Any("err", err))
	}
}

// CatalogStore is the item catalog's CRUD, as ItemStore provides it on
// the storage primitives (and tests may fake it).
type CatalogStore interface {
	// PutItem creates or replaces an item.
	PutItem(ctx context.Context, it Item) error
	// Item returns one item or ErrNotFound.
	Item(ctx context.Context, id string) (Item, error)
	// DeleteItem removes an item or returns ErrNotFound.
	DeleteItem(ctx context.Context, id string) error
	// Items lists up to limit items with ids greater than after, in
	// ascending id order (paging).
	Items(ctx context.Context, after string, limit int) ([]Item, error)
}

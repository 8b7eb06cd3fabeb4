package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/engine/storetest"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/testutil"
)

// TestItemStoreContract: the catalog checks of the store contract suite
// on the catalog kept on the reference storage primitives.
func TestItemStoreContract(t *testing.T) {
	storetest.RunCatalog(t, func(t *testing.T) engine.CatalogStore { return engine.ItemsOn(storagetest.NewMem(nil)) })
}

func TestItemStoreCreate(t *testing.T) {
	ctx := context.Background()
	s := engine.ItemsOn(storagetest.NewMem(nil))
	it := engine.Item{ID: "sku-1", Title: "One", Active: true}
	if err := s.CreateItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateItem(ctx, engine.Item{ID: "sku-1", Title: "Other"}); !errors.Is(err, errs.Conflict) {
		t.Errorf("second create: %v, want Conflict", err)
	}
	if got, err := s.Item(ctx, "sku-1"); err != nil || got.Title != "One" {
		t.Errorf("after a refused create: %+v, %v", got, err)
	}
	if err := s.CreateItem(ctx, engine.Item{}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("create without id: %v, want ErrInvalid", err)
	}
	// Of concurrent creators of one id exactly one succeeds.
	won := testutil.Wins(t, 8, errs.Conflict, func(i int) error {
		return s.CreateItem(ctx, engine.Item{ID: "sku-2", Title: fmt.Sprint(i)})
	})
	if won != 1 {
		t.Errorf("%d concurrent creates succeeded, want 1", won)
	}
}

func TestItemStoreSaveKeepsCreated(t *testing.T) {
	ctx := context.Background()
	s := engine.ItemsOn(storagetest.NewMem(nil))
	t1 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	got, created, err := s.SaveItem(ctx, engine.Item{ID: "a", Title: "x", Created: t2}, t1)
	if err != nil || !created || !got.Created.Equal(t1) || !got.Updated.Equal(t1) {
		t.Fatalf("first save = %+v, %v, %v", got, created, err)
	}
	got, created, err = s.SaveItem(ctx, engine.Item{ID: "a", Title: "y"}, t2)
	if err != nil || created || !got.Created.Equal(t1) || !got.Updated.Equal(t2) || got.Title != "y" {
		t.Fatalf("second save = %+v, %v, %v", got, created, err)
	}
	if stored, err := s.Item(ctx, "a"); err != nil || stored.Title != "y" || !stored.Created.Equal(t1) || !stored.Updated.Equal(t2) {
		t.Errorf("stored = %+v, %v", stored, err)
	}
}

// TestEngineCreateItem: the engine's create is refused for an existing id
// with a message for the client, also when another replica created it.
func TestEngineCreateItem(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir())
	defer store.Close()
	e := newEngine(t, store, nil)
	other := newEngine(t, store, nil)
	it, err := e.CreateItem(ctx, engine.Item{ID: "sku-1", Title: "One", Active: true})
	if err != nil || it.Created.IsZero() || !it.Created.Equal(it.Updated) {
		t.Fatalf("create = %+v, %v", it, err)
	}
	_, err = other.CreateItem(ctx, engine.Item{ID: "sku-1", Title: "Two"})
	if !errors.Is(err, errs.Conflict) || !strings.Contains(err.Error(), `item "sku-1" already exists: use PUT`) {
		t.Errorf("create on another replica: %v, want a Conflict", err)
	}
	if msg, ok := errs.Message(err); !ok || !strings.Contains(msg, "already exists") {
		t.Errorf("public message %q, %v", msg, ok)
	}
	if got, err := other.Item(ctx, "sku-1"); err != nil || got.Title != "One" {
		t.Errorf("item = %+v, %v", got, err)
	}
	if _, err := e.CreateItem(ctx, engine.Item{ID: "bad\n"}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("invalid id: %v", err)
	}
}

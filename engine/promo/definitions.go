package promo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Definitions are the collections of offers, campaigns and rules: JSON
// documents kept by engine/defstore on storage.Documents, one collection
// per Kind ("promo:offers", "promo:campaigns", "promo:rules").
type Definitions struct {
	colls [3]defstore.Collection
}

// kinds is the order of Definitions' collections.
var kinds = [3]Kind{KindOffer, KindCampaign, KindRule}

// CollectionName returns the name of the collection of kind.
func CollectionName(kind Kind) string { return "promo:" + string(kind) }

// NewDefinitions returns the definitions kept in docs.
func NewDefinitions(docs storage.Documents) *Definitions {
	d := &Definitions{}
	for i, k := range kinds {
		d.colls[i] = defstore.New(docs, CollectionName(k))
	}
	return d
}

// Collection returns the collection of kind, which must be valid.
func (d *Definitions) Collection(kind Kind) defstore.Collection {
	return d.colls[slices.Index(kinds[:], kind)]
}

// Versions returns a watcher of the three collections' versions.
func (d *Definitions) Versions() *defstore.Versions {
	return defstore.NewVersions(d.colls[:]...)
}

// definer is a Store that keeps definitions (BackendStore).
type definer interface {
	Definitions() *Definitions
}

// DefinitionsOf returns the definitions of s: its own when it has them
// (BackendStore), or an adapter of a LegacyDocStore (the per-backend
// stores being replaced; the adapter's creates and replaces are a check
// then a write, not atomic).
func DefinitionsOf(s Store) (*Definitions, error) {
	switch s := s.(type) {
	case definer:
		return s.Definitions(), nil
	case LegacyDocStore:
		return NewDefinitions(legacyDocs{s}), nil
	}
	return nil, fmt.Errorf("promo: store %T keeps no definitions", s)
}

// legacyDocs adapts a LegacyDocStore to storage.Documents for the
// collections of Definitions.
type legacyDocs struct{ s LegacyDocStore }

func legacyKind(coll string) (Kind, error) {
	for _, k := range kinds {
		if CollectionName(k) == coll {
			return k, nil
		}
	}
	return "", errs.New(errs.Invalid, "collection %q is not a promo collection", coll)
}

func (l legacyDocs) PutDoc(ctx context.Context, coll, id string, doc []byte, mode storage.PutMode) error {
	k, err := legacyKind(coll)
	if err != nil {
		return err
	}
	if mode != storage.Upsert {
		_, err := l.Doc(ctx, coll, id)
		switch {
		case err == nil && mode == storage.Create:
			return errs.New(errs.Conflict, "%s %q exists", coll, id)
		case errors.Is(err, errs.NotFound) && mode == storage.Replace:
			return err
		case err != nil && !errors.Is(err, errs.NotFound):
			return err
		}
	}
	return l.s.PutPromoDoc(ctx, k, id, doc)
}

func (l legacyDocs) Doc(ctx context.Context, coll, id string) ([]byte, error) {
	ds, err := l.Docs(ctx, coll, "", 0)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.ID == id {
			return d.JSON, nil
		}
	}
	return nil, errs.New(errs.NotFound, "%s %q not found", coll, id)
}

func (l legacyDocs) DeleteDoc(ctx context.Context, coll, id string) error {
	k, err := legacyKind(coll)
	if err != nil {
		return err
	}
	return l.s.DeletePromoDoc(ctx, k, id)
}

func (l legacyDocs) Docs(ctx context.Context, coll, after string, limit int) ([]storage.Doc, error) {
	k, err := legacyKind(coll)
	if err != nil {
		return nil, err
	}
	ds, err := l.s.PromoDocs(ctx, k)
	if err != nil {
		return nil, err
	}
	out := []storage.Doc{}
	for _, d := range ds {
		if d.ID > after && (limit <= 0 || len(out) < limit) {
			out = append(out, storage.Doc{ID: d.ID, JSON: d.JSON})
		}
	}
	return out, nil
}

func (l legacyDocs) DocsVersion(ctx context.Context, coll string) (int64, error) {
	if _, err := legacyKind(coll); err != nil {
		return 0, err
	}
	return l.s.PromoDocsVersion(ctx)
}

package promo

import (
	"slices"

	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/engine/storage"
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

package promotest

import (
	"testing"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

// TestMemContract runs the suite on the store on the in-memory reference
// backend.
func TestMemContract(t *testing.T) {
	Run(t, func(t *testing.T) promo.Store { return NewMem() })
}

// TestMemPersistence runs the persistence suite on one in-memory backend
// shared by the reopened stores.
func TestMemPersistence(t *testing.T) {
	RunPersistence(t, func(t *testing.T) func(t *testing.T) Closer {
		b := storagetest.NewMem(nil)
		return func(t *testing.T) Closer { return nopCloser{promo.NewStore(b)} }
	})
}

type nopCloser struct{ *promo.BackendStore }

func (nopCloser) Close() error { return nil }

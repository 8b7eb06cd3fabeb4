package promo_test

import (
	"testing"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
)

// TestBackendStoreContract runs the contract suite, and its persistence
// part, on the store written on the primitives, on every backend
// (in-memory, embedded, Redis).
func TestBackendStoreContract(t *testing.T) {
	for _, k := range backendtest.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			promotest.Run(t, func(t *testing.T) promo.Store { return promo.NewStore(k.Open(t)) })
			promotest.RunPersistence(t, func(t *testing.T) func(t *testing.T) promotest.Closer {
				open := k.New(t)
				return func(t *testing.T) promotest.Closer {
					b := open(t)
					return closer{promo.NewStore(b), b}
				}
			})
		})
	}
}

type closer struct {
	*promo.BackendStore
	b backendtest.Closer
}

func (c closer) Close() error { return c.b.Close() }

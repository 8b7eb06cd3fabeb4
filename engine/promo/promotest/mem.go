package promotest

import (
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

// NewMem returns a promo store on a new in-memory backend
// (storagetest.Mem, on the real clock): for tests of code that uses a
// promo.Store.
func NewMem() *promo.BackendStore { return promo.NewStore(storagetest.NewMem(nil)) }

package attention_test

import (
	"testing"

	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
)

// TestMapStoreContract runs the contract suite on the store written on
// the primitives, on every backend (in-memory, embedded, Redis).
func TestMapStoreContract(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, open func(testing.TB) storage.Backend) {
		attentiontest.Run(t, func(t *testing.T) attention.Store { return attention.NewStore(open(t)) })
	})
}

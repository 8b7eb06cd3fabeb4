package experimentstest

import (
	"testing"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

func TestMemBackend(t *testing.T) {
	RunBackend(t, func(t *testing.T) storage.Backend { return storagetest.NewMem(nil) })
}

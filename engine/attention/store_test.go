package attention_test

import (
	"testing"

	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

func TestMapStoreOnMem(t *testing.T) {
	attentiontest.Run(t, func(t *testing.T) attention.Store { return attention.NewStore(storagetest.NewMem(nil)) })
}

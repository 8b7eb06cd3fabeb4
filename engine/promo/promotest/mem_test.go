package promotest

import (
	"testing"

	"github.com/kairoshq/kairos/engine/promo"
)

func TestMemContract(t *testing.T) {
	Run(t, func(t *testing.T) promo.Store { return NewMem() })
}

package experimentstest

import (
	"testing"

	"github.com/kairoshq/kairos/engine/experiments"
)

func TestMemContract(t *testing.T) {
	Run(t, func(t *testing.T) experiments.Store { return NewMem() })
}

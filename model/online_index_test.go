package model

import (
	"math"
	"testing"
)

// LoadItems installs the same rows and YᵀY as SetItems.
func TestLoadItemsMatchesSetItems(t *testing.T) {
	m := clusteredModel(3000, 16, 10, 21)
	states := make([]ItemRowState, 3000)
	for i := range states {
		states[i] = ItemRowState{Row: int32(i), Factors: m.Items.Row(i), Count: int32(i % 7)}
	}
	empty := func() *Online {
		o, err := NewEmptyOnline(m.Params)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	a, b := empty(), empty()
	if err := a.SetItems(states); err != nil {
		t.Fatal(err)
	}
	if err := b.LoadItems(states); err != nil {
		t.Fatal(err)
	}
	for i := range a.gram {
		if math.Abs(a.gram[i]-b.gram[i]) > 1e-6*(1+math.Abs(a.gram[i])) {
			t.Fatalf("YᵀY[%d] = %v after LoadItems, %v after SetItems", i, b.gram[i], a.gram[i])
		}
	}
	for i := range 3000 {
		if a.norms[i] != b.norms[i] || a.counts[i] != b.counts[i] {
			t.Fatalf("row %d differs", i)
		}
	}
	if err := b.LoadItems([]ItemRowState{{Row: 1, Factors: make([]float32, 3)}}); err == nil {
		t.Fatal("LoadItems accepted a row of the wrong length")
	}
}

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

// quantize keeps every factor within half a step of its code.
func TestQuantizeError(t *testing.T) {
	m := clusteredModel(200, 64, 5, 22)
	codes := make([]int8, padK(64))
	for i := range 200 {
		y := m.Items.Row(i)
		s := quantize(codes, y)
		for f, v := range y {
			if d := math.Abs(float64(v) - float64(codes[f])*float64(s)); d > 0.5001*float64(s) {
				t.Fatalf("row %d factor %d: %v coded %d×%v (error %v)", i, f, v, codes[f], s, d)
			}
		}
	}
	if s := quantize(codes, make([]float32, 64)); s != 0 {
		t.Fatalf("a zero row has scale %v", s)
	}
}

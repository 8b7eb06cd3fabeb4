package model

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// selectBest keeps the k best of h first, whatever k and the ties.
func TestSelectBest(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 500 {
		n := rng.IntN(300)
		h := make([]Scored, n)
		for i := range h {
			h[i] = Scored{Item: int32(i), Score: float32(rng.IntN(40))} // many ties
		}
		k := 0
		if n > 0 {
			k = rng.IntN(n + 1)
		}
		want := slices.Clone(h)
		slices.SortFunc(want, compareBest)
		got := slices.Clone(h)
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		selectBest(got, k)
		best := slices.Clone(got[:k])
		slices.SortFunc(best, compareBest)
		if !slices.Equal(best, want[:k]) {
			t.Fatalf("trial %d: n %d k %d: best %v, want %v", trial, n, k, best, want[:k])
		}
	}
}

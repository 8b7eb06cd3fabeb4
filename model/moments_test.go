package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMomentsMatchScoring(t *testing.T) {
	o := mustOnline(t, clusteredModel(3000, 16, 20, 9), nil)
	m := o.Moments()
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 16)
	for f := range x {
		x[f] = float32(rng.NormFloat64())
	}
	for _, unit := range []bool{false, true} {
		scores := o.ScoreAll(nil, x, unit)
		var mean, sq float64
		for _, s := range scores {
			mean += float64(s)
		}
		mean /= float64(len(scores))
		for _, s := range scores {
			sq += (float64(s) - mean) * (float64(s) - mean)
		}
		sd := math.Sqrt(sq / float64(len(scores)))
		gm, gsd := m.Dist(x, unit)
		if math.Abs(gm-mean) > 1e-3*math.Max(1, math.Abs(mean)) || math.Abs(gsd-sd) > 1e-3*sd {
			t.Fatalf("unit=%v: moments give mean %.5f sd %.5f, scoring every item %.5f %.5f", unit, gm, gsd, mean, sd)
		}
	}
}

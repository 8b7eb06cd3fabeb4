package model

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// Calibration of the index's probe count
//
// AutoProbe is a rule of thumb: on factors whose topics are tight and
// many (a catalog of 25k items in 300 narrow topics, say) it scans too few
// lists, and recall@10 falls to 0.7–0.9. CalibrateIndex measures instead:
// it draws sample queries like a visitor's (the sum of two random items'
// factors), ranks them exactly once, and raises the number of lists
// scanned from AutoProbe by half each step until the index's top 10 holds
// the target share of the exact top 10 on average, or every list is
// scanned, then bisects back to the least count that still holds it with
// a margin. When AutoProbe's recall has a margin (0.98 for the target
// 0.95; often at 1M items, where lists are many and topics few), it
// lowers the count instead, down to AutoProbe/2, while the margin holds:
// each list skipped is CPU saved on every request. The count is kept with the index (searches that name none use
// it) until the next build or load.

// Defaults of CalibrateIndex.
const (
	DefaultCalibrationTarget  = 0.95
	DefaultCalibrationQueries = 48
)

// Calibration is the outcome of CalibrateIndex.
type Calibration struct {
	// Probe is the number of lists searches now scan by default.
	Probe int
	// Recall is the mean recall@10 of the sample queries at Probe.
	Recall float64
	// AutoRecall is their recall at AutoProbe, for comparison.
	AutoRecall float64
	// Queries is the number of sample queries.
	Queries int
}

// CalibrateIndex sets the index's default probe count to the least (in
// steps of half from AutoProbe, then bisected back to within a sixteenth)
// that reaches target mean recall@10 on
// queries sample queries (zero values: the defaults); when AutoProbe
// already exceeds the target with a margin (recall within 2/5 of the
// target's distance to 1: 0.98 for 0.95), to the least down to
// AutoProbe/2 (in steps of a sixth of it) that keeps the margin. It reads the model
// under its read lock one search at a time, so serving goes on; it
// returns an error when there is no index, or ctx ends.
func (o *Online) CalibrateIndex(ctx context.Context, target float64, queries int, seed uint64) (Calibration, error) {
	if target <= 0 || target > 1 {
		target = DefaultCalibrationTarget
	}
	if queries <= 0 {
		queries = DefaultCalibrationQueries
	}
	o.mu.RLock()
	x := o.ivf
	n := o.items.Rows()
	var qs [][]float32
	if x != nil && n > 0 {
		qs = o.sampleQueries(queries, seed)
	}
	o.mu.RUnlock()
	if x == nil {
		return Calibration{}, fmt.Errorf("model: calibrate: no index")
	}
	if len(qs) == 0 {
		return Calibration{}, fmt.Errorf("model: calibrate: no items with factors")
	}
	s := new(Scorer)
	exact := make([]map[int32]bool, len(qs))
	var dst []Scored
	for i, q := range qs {
		if err := ctx.Err(); err != nil {
			return Calibration{}, err
		}
		dst = o.TopK(s, dst, Query{Vector: q, N: 10})
		exact[i] = make(map[int32]bool, len(dst))
		for _, r := range dst {
			exact[i][int32(r.Item)] = true
		}
	}
	recall := func(probe int) (float64, error) {
		sum := 0.0
		for i, q := range qs {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			dst, _ = o.TopKApprox(s, dst, Query{Vector: q, N: 10}, IVFSearch{Probe: probe})
			hit := 0
			for _, r := range dst {
				if exact[i][int32(r.Item)] {
					hit++
				}
			}
			if len(exact[i]) > 0 {
				sum += float64(hit) / float64(len(exact[i]))
			} else {
				sum++
			}
		}
		return sum / float64(len(qs)), nil
	}
	c := Calibration{Probe: AutoProbe(x.nlist), Queries: len(qs)}
	var err error
	if c.AutoRecall, err = recall(c.Probe); err != nil {
		return Calibration{}, err
	}
	c.Recall = c.AutoRecall
	// With a margin above the target at AutoProbe, fewer lists may do:
	// down by a sixth of it at a time, while the recall stays within
	// 2/5 of the target's distance to 1 (0.98 for 0.95: the sample has
	// 48 queries, and other queries' recall falls faster than the
	// sample's as lists are dropped), and never below half of AutoProbe.
	strict := 1 - (1-target)*2/5
	for floor, step := max(1, c.Probe/2), max(1, c.Probe/6); c.Recall >= strict && c.Probe > floor; {
		p := max(floor, c.Probe-step)
		r, err := recall(p)
		if err != nil {
			return Calibration{}, err
		}
		if r < strict {
			break
		}
		c.Probe, c.Recall = p, r
	}
	below := 0 // the largest count seen short of the target
	for c.Recall < target && c.Probe < x.nlist {
		below = c.Probe
		c.Probe = min(x.nlist, c.Probe+max(1, c.Probe/2))
		if c.Recall, err = recall(c.Probe); err != nil {
			return Calibration{}, err
		}
	}
	// A step of half overshoots (100k items: 69 lists for recall 0.987
	// where 0.95 was asked): bisect back towards the last count short of
	// the target, to within a sixteenth of it, keeping a fifth of the
	// target's distance to 1 as a margin (0.96 for 0.95) for the queries
	// the sample does not hold.
	margin := 1 - (1-target)*4/5
	for below > 0 && c.Recall >= margin && c.Probe-below > max(1, below/16) {
		mid := (below + c.Probe) / 2
		r, err := recall(mid)
		if err != nil {
			return Calibration{}, err
		}
		if r >= margin {
			c.Probe, c.Recall = mid, r
		} else {
			below = mid
		}
	}
	o.mu.Lock()
	if o.ivf == x {
		x.probe = c.Probe
	}
	o.mu.Unlock()
	return c, nil
}

// sampleQueries draws up to m query vectors, each the sum of two random
// items with factors (a visitor who liked both); o.mu is held.
func (o *Online) sampleQueries(m int, seed uint64) [][]float32 {
	n := o.items.Rows()
	rng := rand.New(rand.NewPCG(seed, 0x6b61))
	pick := func() int {
		for range 32 {
			if r := rng.IntN(n); o.norms[r] != 0 {
				return r
			}
		}
		return -1
	}
	out := make([][]float32, 0, m)
	for range m {
		a, b := pick(), pick()
		if a < 0 || b < 0 {
			break
		}
		q := make([]float32, o.p.Factors)
		for f, v := range o.items.Row(a) {
			q[f] = v + o.items.Row(b)[f]
		}
		out = append(out, q)
	}
	return out
}

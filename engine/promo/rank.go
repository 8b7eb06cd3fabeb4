package promo

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// gammaSample draws from Gamma(a, 1), a >= 1 (Marsaglia and Tsang 2000).
func gammaSample(r *rand.Rand, a float64) float64 {
	if a < 1 {
		return gammaSample(r, a+1) * math.Pow(r.Float64(), 1/a)
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// betaSample draws from Beta(a, b).
func betaSample(r *rand.Rand, a, b float64) float64 {
	x := gammaSample(r, a)
	y := gammaSample(r, b)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// candidate is an eligible offer during ranking.
type candidate struct {
	o        *offerInfo
	priority int
	campaign string
	score    float64
	theta    float64
	aff      float64
	hasAff   bool
}

// eligible reports whether o may be shown at now by its own terms and its
// campaigns' (caps excepted: they need the visitor's counters), with the
// priority and the campaign that make it live.
func eligible(o *offerInfo, now time.Time, st OfferStats) (priority int, campaign string, ok bool) {
	if !o.Active || (o.Start != nil && now.Before(*o.Start)) || (o.End != nil && !now.Before(*o.End)) {
		return 0, "", false
	}
	if o.Budget > 0 && st.Impressions >= o.Budget {
		return 0, "", false
	}
	if len(o.campaigns) == 0 {
		return 0, "", true
	}
	for _, c := range o.campaigns {
		if !campaignLive(c, now) {
			continue
		}
		if !ok || c.Priority > priority {
			priority, campaign, ok = c.Priority, c.ID, true
		}
	}
	return priority, campaign, ok
}

// campaignLive reports whether c is live at now.
func campaignLive(c *Campaign, now time.Time) bool {
	if !c.Active || (c.Start != nil && now.Before(*c.Start)) || (c.End != nil && !now.Before(*c.End)) {
		return false
	}
	return c.Schedule == nil || c.Schedule.live(now)
}

// sortCandidates orders by priority, then score, then id.
func sortCandidates(cs []candidate) {
	slices.SortFunc(cs, func(a, b candidate) int {
		if a.priority != b.priority {
			return b.priority - a.priority
		}
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.o.ID, b.o.ID)
	})
}

func dot(x, y []float32) float64 {
	n := min(len(x), len(y))
	x, y = x[:n], y[:n]
	var s float32
	for i, v := range y {
		s += v * x[i]
	}
	return float64(s)
}

func isZero(x []float32) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

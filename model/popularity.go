package model

import (
	"math"
	"time"
)

// Trending is a recency-weighted popularity baseline: an item's score is the
// sum of its event weights, each decayed with the half-life from the event
// time to now, Σ w·2^(−(now − t)/halfLife). With HalfLife 0 it is plain
// popularity (the sum of weights).
//
// Scores are kept relative to an epoch, s_i = Σ w·2^((t − epoch)/halfLife),
// so that an event costs O(1) and ranking needs no decay pass (a common
// factor does not change the order); the epoch moves forward, rescaling
// every score once, before the exponent could overflow. Trending is not safe
// for concurrent use.
type Trending struct {
	halfLife time.Duration
	epoch    time.Time
	scores   []float32
}

// NewTrending returns an empty trending counter.
func NewTrending(halfLife time.Duration) *Trending {
	return &Trending{halfLife: halfLife}
}

// HalfLife returns the decay half-life (0: none).
func (t *Trending) HalfLife() time.Duration { return t.halfLife }

// maxExponent keeps 2^exponent·weight far from float32 overflow (2^127).
const maxExponent = 60

// Add records weight w for item at time at.
func (t *Trending) Add(item int, w float64, at time.Time) {
	if item >= len(t.scores) {
		t.scores = append(t.scores, make([]float32, item+1-len(t.scores))...)
	}
	if t.halfLife <= 0 {
		t.scores[item] += float32(w)
		return
	}
	if t.epoch.IsZero() {
		t.epoch = at
	}
	e := float64(at.Sub(t.epoch)) / float64(t.halfLife)
	if e > maxExponent {
		t.rebase(at)
		e = 0
	}
	t.scores[item] += float32(w * math.Exp2(e))
}

// rebase moves the epoch to at, rescaling every score.
func (t *Trending) rebase(at time.Time) {
	f := float32(math.Exp2(-float64(at.Sub(t.epoch)) / float64(t.halfLife)))
	for i := range t.scores {
		t.scores[i] *= f
	}
	t.epoch = at
}

// Scores returns the relative scores, one per item row, for ranking (e.g.
// with Scorer.SelectTop); the slice aliases internal storage.
func (t *Trending) Scores() []float32 { return t.scores }

// Score returns item's decayed score as of now.
func (t *Trending) Score(item int, now time.Time) float64 {
	if item >= len(t.scores) {
		return 0
	}
	s := float64(t.scores[item])
	if t.halfLife <= 0 {
		return s
	}
	return s * math.Exp2(-float64(now.Sub(t.epoch))/float64(t.halfLife))
}

// Len returns the number of item rows.
func (t *Trending) Len() int { return len(t.scores) }

// Epoch returns the reference time of the relative scores.
func (t *Trending) Epoch() time.Time { return t.epoch }

// AddRelative adds the relative score s, given at epoch, to item's (a
// peer's counters merged in, or taken out with a negative s); it rescales
// s when t has another epoch.
func (t *Trending) AddRelative(item int, s float32, epoch time.Time) {
	if item >= len(t.scores) {
		t.scores = append(t.scores, make([]float32, item+1-len(t.scores))...)
	}
	t.scores[item] += t.rescale(s, epoch)
}

// rescale converts the relative score s at epoch to t's epoch (taking
// epoch as t's when t has none yet).
func (t *Trending) rescale(s float32, epoch time.Time) float32 {
	if t.halfLife > 0 && !epoch.IsZero() && t.epoch.IsZero() {
		t.epoch = epoch
	}
	return RescaleTrending(s, epoch, t.epoch, t.halfLife)
}

// RescaleTrending converts a relative trending score s at epoch from to
// epoch to, for the half-life halfLife (0, or a zero epoch: unchanged).
func RescaleTrending(s float32, from, to time.Time, halfLife time.Duration) float32 {
	if halfLife <= 0 || from.IsZero() || to.IsZero() {
		return s
	}
	return s * float32(math.Exp2(float64(from.Sub(to))/float64(halfLife)))
}

// Set restores item's relative score s at the given epoch (persistence);
// it rescales s when t already has another epoch.
func (t *Trending) Set(item int, s float32, epoch time.Time) {
	if item >= len(t.scores) {
		t.scores = append(t.scores, make([]float32, item+1-len(t.scores))...)
	}
	t.scores[item] = t.rescale(s, epoch)
}

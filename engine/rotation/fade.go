package rotation

import (
	"cmp"
	"slices"
	"time"

	"github.com/kairoshq/kairos/engine"
)

// Fade is the score multiplier of an item last served to (or seen by) the
// visitor age ago, under a rotation of r: it rises linearly from 0 (just
// served) to 1 (r ago or longer). With r <= 0 (no rotation) it is 1.
func Fade(age, r time.Duration) float64 {
	switch {
	case r <= 0 || age >= r:
		return 1
	case age <= 0:
		return 0
	}
	return float64(age) / float64(r)
}

// candidate is one ranked item with its utility after the fade.
type candidate struct {
	rec     engine.Rec
	rank    int
	utility float64
}

// Rerank orders recs (the ranker's list, best first) by their fade-adjusted
// utility: an item at rank i of k has the utility (k−i)/k — its place in
// the ranker's order, whatever the sign or scale of the scores — times
// Fade(age) of its last showing (ages: item → time since it was last
// served or seen; items absent are not demoted). Ties keep the ranker's
// order. Items for which skip reports true (earlier pages) are left out.
// The Scores returned are the ranker's.
func Rerank(recs []engine.Rec, ages map[string]time.Duration, r time.Duration, skip func(item string) bool) []engine.Rec {
	k := float64(len(recs))
	cs := make([]candidate, 0, len(recs))
	for i, rec := range recs {
		if skip != nil && skip(rec.Item) {
			continue
		}
		u := (k - float64(i)) / k
		if age, ok := ages[rec.Item]; ok {
			u *= Fade(age, r)
		}
		cs = append(cs, candidate{rec: rec, rank: i, utility: u})
	}
	slices.SortStableFunc(cs, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.utility, a.utility), cmp.Compare(a.rank, b.rank))
	})
	out := make([]engine.Rec, len(cs))
	for i, c := range cs {
		out[i] = c.rec
	}
	return out
}

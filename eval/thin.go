package eval

import (
	"fmt"
	"math/rand/v2"
)

// Thin returns a copy of d in which each user keeps at most perUser of
// their interactions, drawn uniformly at random (PCG seeded with seed),
// each kept with its time and weight and in d's order; items left
// without an interaction are dropped (the rest keep their order), users
// all stay. It answers "how would the model do on this site if its
// visitors were as sparse as that": the same catalogue and tastes with a
// dozen interactions per visitor, the regime in which implicit ALS can
// lose to popularity (`kairos eval offline --thin`).
func (d *Dataset) Thin(perUser int, seed uint64) (*Dataset, error) {
	if perUser < 2 {
		return nil, fmt.Errorf("eval: thin: %d interactions per user: want at least 2 (one is held out)", perUser)
	}
	byUser := make([][]int, len(d.Users))
	for j, in := range d.Interactions {
		byUser[in.User] = append(byUser[in.User], j)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5448_494e)) // "THIN"
	keep := make([]bool, len(d.Interactions))
	for _, js := range byUser {
		if len(js) > perUser {
			rng.Shuffle(len(js), func(a, b int) { js[a], js[b] = js[b], js[a] })
			js = js[:perUser]
		}
		for _, j := range js {
			keep[j] = true
		}
	}
	used := make([]bool, len(d.Items))
	for j, in := range d.Interactions {
		used[in.Item] = used[in.Item] || keep[j]
	}
	out := &Dataset{Users: d.Users}
	number := make([]int32, len(d.Items))
	for i, id := range d.Items {
		if used[i] {
			number[i] = int32(len(out.Items))
			out.Items = append(out.Items, id)
		}
	}
	for j, in := range d.Interactions {
		if keep[j] {
			in.Item = number[in.Item]
			out.Interactions = append(out.Interactions, in)
		}
	}
	return out, nil
}

package eval

import (
	"strconv"
	"testing"
)

// TestThinKeepsAtMostPerUser thins a log of users with 1 to 30
// interactions: each keeps min(n, 5) of their own interactions with
// their times and weights, items nobody kept are dropped and the rest
// renumbered consistently, and the same seed draws the same sample.
func TestThinKeepsAtMostPerUser(t *testing.T) {
	var recs []Record
	for u := range 30 {
		for j := 0; j <= u; j++ {
			item := (u*7 + j*3) % 200
			recs = append(recs, Record{User: strconv.Itoa(u), Item: strconv.Itoa(item), Time: int64(100*u + j), Weight: float64(1 + j)})
		}
	}
	recs = append(recs, Record{User: "lone", Item: "only-here", Time: 1, Weight: 1})
	d := Build(recs, WeightRaw)
	orig := map[[2]string]Interaction{}
	for _, in := range d.Interactions {
		orig[[2]string{d.Users[in.User], d.Items[in.Item]}] = in
	}
	th, err := d.Thin(5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(th.Users) != len(d.Users) {
		t.Fatalf("%d users after thinning, want all %d", len(th.Users), len(d.Users))
	}
	per := map[int32]int{}
	used := make([]bool, len(th.Items))
	for _, in := range th.Interactions {
		per[in.User]++
		used[in.Item] = true
		o, ok := orig[[2]string{th.Users[in.User], th.Items[in.Item]}]
		if !ok || o.Time != in.Time || o.Weight != in.Weight {
			t.Fatalf("interaction %s/%s (time %d, weight %v) is not one of the user's own", th.Users[in.User], th.Items[in.Item], in.Time, in.Weight)
		}
	}
	for u := range d.Users {
		n := 0
		for _, in := range d.Interactions {
			if int(in.User) == u {
				n++
			}
		}
		if want := min(n, 5); per[int32(u)] != want {
			t.Errorf("user %s keeps %d of %d interactions, want %d", d.Users[u], per[int32(u)], n, want)
		}
	}
	for i, ok := range used {
		if !ok {
			t.Errorf("item %s kept without an interaction", th.Items[i])
		}
	}
	if len(th.Items) >= len(d.Items) {
		t.Errorf("%d items after thinning 465 interactions to 141, want fewer than %d", len(th.Items), len(d.Items))
	}
	again, _ := d.Thin(5, 1)
	other, _ := d.Thin(5, 2)
	same, differs := len(again.Interactions) == len(th.Interactions), false
	for j := range th.Interactions {
		same = same && again.Interactions[j] == th.Interactions[j]
		differs = differs || j >= len(other.Interactions) || other.Interactions[j] != th.Interactions[j]
	}
	if !same {
		t.Error("the same seed drew another sample")
	}
	if !differs {
		t.Error("another seed drew the same sample")
	}
	if _, err := d.Thin(1, 1); err == nil {
		t.Error("Thin(1) accepted: a user needs 2 interactions to hold one out")
	}
}

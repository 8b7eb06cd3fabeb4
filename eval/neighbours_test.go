package eval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kairoshq/kairos/model"
)

// groupsSplits returns the test and validation splits of a planted log of
// items that go together: each user views two of 20 popular items, then
// four of the five items of one group (more groups than the model has
// factors) in a random order.
func groupsSplits(t *testing.T, groups, perGroup int) (test, val Split) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	var recs []Record
	for k := range groups {
		for v := range perGroup {
			user := fmt.Sprintf("u%d-%d", k, v)
			items := []string{fmt.Sprintf("pop%d", rng.IntN(20)), fmt.Sprintf("pop%d", rng.IntN(20))}
			for _, i := range rng.Perm(5)[:4] {
				items = append(items, fmt.Sprintf("g%d-%d", k, i))
			}
			for j, it := range items {
				recs = append(recs, Record{User: user, Item: it, Time: int64(j), Weight: 1})
			}
		}
	}
	return latestSplits(t, recs)
}

// TestFitBlendPicksNeighboursWhereItemsGoTogether: on a log of items that
// go together the fit weighs the item neighbours (η > 0) and ranks the
// test split better than the best blend without them.
func TestFitBlendPicksNeighboursWhereItemsGoTogether(t *testing.T) {
	test, val := groupsSplits(t, 1000, 5)
	p := model.DefaultParams()
	p.Threads = 2
	ctx := context.Background()
	with, err := OfflineBlended(ctx, test, val, nil, p, DefaultBlendGrid(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	grid := DefaultBlendGrid()
	grid.Neighbours = nil
	without, err := OfflineBlended(ctx, test, val, nil, p, grid, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	cmp := ComparePaired(with.Ranks, without.Ranks)
	t.Logf("test NDCG@10 %.4f with neighbours (blend %+v), %.4f without; paired t %.1f", with.NDCG10, *with.Blend, without.NDCG10, cmp.T)
	if !(with.Blend.Neighbours > 0) || !(cmp.T > 2) {
		t.Fatalf("blend %+v, t %.2f: want η > 0 and a clear gain on test", *with.Blend, cmp.T)
	}
}

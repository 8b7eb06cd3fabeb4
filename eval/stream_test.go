package eval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/model"
)

// driftingLog is a log of days: each day ten items are the day's hits
// (nine in ten of the day's views), a new ten every day, the rest of the
// views spread over the whole catalog.
func driftingLog(days, perDay int) *Dataset {
	rng := rand.New(rand.NewPCG(7, 11))
	const items = 500
	var recs []Record
	for d := range days {
		for v := range perDay {
			item := rng.IntN(items)
			if rng.Float64() < 0.9 {
				item = (d*10 + rng.IntN(10)) % items
			}
			at := int64(d)*86400 + int64(v)*86400/int64(perDay)
			recs = append(recs, Record{User: fmt.Sprintf("u%d-%d", d, v), Item: fmt.Sprintf("i%d", item), Time: at, Weight: 1})
		}
	}
	return Build(recs, WeightOne)
}

// TestPrequentialTrendingFollowsDrift: on a log whose hits change every
// day, the engine's 24-hour trending predicts the next view far better
// than all-time popularity, a half-life given as trending=<duration> is
// honoured (a 30-day one ranks close to all-time popularity), and an
// unknown or malformed mode is an error that names it.
func TestPrequentialTrendingFollowsDrift(t *testing.T) {
	ctx := context.Background()
	d := driftingLog(20, 200)
	p := model.DefaultParams()
	p.Factors, p.Iterations, p.Threads = 8, 2, 2
	res, err := Prequential(ctx, d, 0.5, p, time.Second, []string{"pop", "trending", "trending=720h"})
	if err != nil {
		t.Fatal(err)
	}
	pop, day, month := res[0], res[1], res[2]
	t.Logf("Recall@10: all-time %.3f, 24-hour trending %.3f, 30-day %.3f", pop.Recall10, day.Recall10, month.Recall10)
	if pop.Mode != "pop" || day.Mode != "trending" || month.Mode != "trending=720h" || day.Events != 2000 {
		t.Fatalf("results %+v", res)
	}
	if !(day.Recall10 > 0.25) || !(day.Recall10 > 10*pop.Recall10) {
		t.Fatalf("24-hour trending Recall@10 %.3f, all-time popularity %.3f: want trending far ahead on a drifting log", day.Recall10, pop.Recall10)
	}
	if !(month.Recall10 < day.Recall10/2) {
		t.Fatalf("a 30-day half-life %.3f against a day's %.3f: want it far behind (closer to all-time popularity, %.3f)", month.Recall10, day.Recall10, pop.Recall10)
	}
	for _, bad := range []string{"trending=0s", "trending=soon", "popular"} {
		if _, err := Prequential(ctx, d, 0.5, p, time.Second, []string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("mode %q: %v, want an error naming it", bad, err)
		}
	}
}

// TestPrequentialFoldInLearnsNewUsers: when the stream brings users the
// warm-up never saw (a planted log whose second half of users arrives
// after it), the static model has nothing to rank them by, while the
// fold-in learns each of them from their first events — through the
// engine's learning path — and beats popularity on tastes that drive
// most draws.
func TestPrequentialFoldInLearnsNewUsers(t *testing.T) {
	c := SparseConfig{Users: 600, Items: 400, Clusters: 8, PerUser: 12, Zipf: 0.5, Taste: 0.9, Seed: 3}
	recs, err := Sparse(c)
	if err != nil {
		t.Fatal(err)
	}
	late := map[string]bool{}
	for j := range recs {
		u, err := strconv.Atoi(recs[j].User)
		if err != nil {
			t.Fatal(err)
		}
		if u >= c.Users/2 {
			recs[j].Time += 1_000_000
			late[recs[j].User] = true
		}
	}
	d := Build(recs, WeightOne)
	p := model.DefaultParams()
	p.Factors, p.Threads, p.HalfLife = 16, 2, 0
	res, err := Prequential(context.Background(), d, 0.5, p, time.Second, []string{"static", "foldin", "pop"})
	if err != nil {
		t.Fatal(err)
	}
	static, foldin, pop := res[0], res[1], res[2]
	t.Logf("Recall@10: static %.3f, fold-in %.3f, popularity %.3f (%d events, %d late users)", static.Recall10, foldin.Recall10, pop.Recall10, foldin.Events, len(late))
	if len(late) < c.Users/3 || static.Hits > foldin.Hits/10 {
		t.Fatalf("static %d hits, fold-in %d: want the static model (which never saw the late users) far behind", static.Hits, foldin.Hits)
	}
	if !(foldin.Recall10 > 1.5*pop.Recall10) {
		t.Fatalf("fold-in Recall@10 %.3f, popularity %.3f: want the fold-in well ahead on taste-driven users", foldin.Recall10, pop.Recall10)
	}
}

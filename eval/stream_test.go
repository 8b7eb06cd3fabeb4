package eval

import (
	"context"
	"fmt"
	"math/rand/v2"
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

package engine

import (
	"reflect"
	"testing"

	"github.com/kairoshq/kairos/model"
)

// TestRankersServe pins which strategy of the table serves which request:
// the order of rankers is the precedence Recommend had as a switch.
func TestRankersServe(t *testing.T) {
	noPrior, withPrior := &Engine{}, &Engine{}
	noPrior.setBlend(nil)
	withPrior.setBlend(&model.Blend{Prior: 0.3, Kappa: 8})
	x := []float32{1, 0}
	for _, tc := range []struct {
		name string
		q    rankQuery
		want ranker
	}{
		{"asked for trending", rankQuery{e: noPrior, x: x, events: 50, blendBelow: 5, req: RecRequest{Strategy: StrategyTrending}}, trendingRanker{}},
		{"no factors, no context", rankQuery{e: withPrior}, trendingRanker{}},
		{"no factors, a page", rankQuery{e: noPrior, req: RecRequest{Item: "i1"}}, coldBlend{}},
		{"no factors, a campaign", rankQuery{e: noPrior, req: RecRequest{Campaign: "c"}}, coldBlend{}},
		{"few events", rankQuery{e: withPrior, x: x, events: 2, blendBelow: 5}, coldBlend{}},
		{"enough events, a prior", rankQuery{e: withPrior, x: x, events: 5, blendBelow: 5}, priorBlend{}},
		{"enough events", rankQuery{e: noPrior, x: x, events: 5, blendBelow: 5, req: RecRequest{Item: "i1"}}, alsRanker{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range rankers {
				if r.serves(&tc.q) {
					if reflect.TypeOf(r) != reflect.TypeOf(tc.want) {
						t.Errorf("served by %T, want %T", r, tc.want)
					}
					return
				}
			}
			t.Errorf("no ranker serves it")
		})
	}
}

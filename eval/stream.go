package eval

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kairoshq/kairos/model"
)

// StreamResult is one mode's outcome of the prequential evaluation, the
// JSON line printed by `kairos eval stream`.
type StreamResult struct {
	Mode       string  `json:"mode"`
	Recall10   float64 `json:"recall10"`
	Events     int     `json:"events"`
	EventsPerS float64 `json:"events_per_s"`
	// Hits is the number of test events whose item was in the top 10.
	Hits int `json:"hits"`
}

// Prequential runs the test-then-learn protocol (Vinagre et al. 2014): the
// interactions are ordered by time (ties by user, then item); ALS is trained
// on the first warmup share; then, for each later interaction, the user's
// top 10 (excluding the items the user already has) is computed first — a
// hit if it contains the item — and the interaction is learnt afterwards.
//
// Modes: "static" never learns after warm-up; "foldin" learns each event
// through model.Learner, the code path of the engine (exact user fold-in,
// bounded item update, applied before the next event); "pop" ranks by
// running popularity; "trending" by the engine's recency-weighted
// trending (model.Trending with DefaultTrendingHalfLife, the engine's
// default; "trending=720h" sets another half-life). unit converts the
// dataset's times.
func Prequential(ctx context.Context, d *Dataset, warmup float64, p model.Params, unit TimeUnit, modes []string) ([]StreamResult, error) {
	if !(warmup > 0 && warmup < 1) {
		return nil, fmt.Errorf("eval: warmup %v must be in (0, 1)", warmup)
	}
	order := append([]Interaction(nil), d.Interactions...)
	sort.SliceStable(order, func(a, b int) bool {
		x, y := order[a], order[b]
		if x.Time != y.Time {
			return x.Time < y.Time
		}
		if x.User != y.User {
			return x.User < y.User
		}
		return x.Item < y.Item
	})
	cut := int(float64(len(order)) * warmup)
	train := Split{Users: len(d.Users), Items: len(d.Items), Train: order[:cut]}
	mod, _, err := TrainALS(ctx, train, p, unit, nil)
	if err != nil {
		return nil, err
	}
	mat, err := train.Matrix(p.HalfLife, unit)
	if err != nil {
		return nil, err
	}
	stats := model.ItemStatsFromMatrix(mod, mat)
	var out []StreamResult
	for _, mode := range modes {
		r, err := runStream(ctx, mode, mod, stats, order[:cut], order[cut:], unit)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Matrix converts the training part into the model's sparse matrix with
// decayed weights.
func (s Split) Matrix(halfLife time.Duration, unit TimeUnit) (*model.Matrix, error) {
	return model.NewMatrix(s.Users, s.Items, ModelInteractions(s, halfLife, unit))
}

// DefaultTrendingHalfLife is the half-life of the "trending" stream mode:
// the engine's default (engine.Config.TrendingHalfLife).
const DefaultTrendingHalfLife = 24 * time.Hour

// trendingMode returns the half-life of a "trending" or
// "trending=<duration>" mode, and whether mode is one.
func trendingMode(mode string) (time.Duration, bool, error) {
	name, arg, found := strings.Cut(mode, "=")
	if name != "trending" {
		return 0, false, nil
	}
	if !found {
		return DefaultTrendingHalfLife, true, nil
	}
	hl, err := time.ParseDuration(arg)
	if err != nil || hl <= 0 {
		return 0, true, fmt.Errorf("eval: stream mode %q: want trending=<positive duration>, e.g. trending=720h", mode)
	}
	return hl, true, nil
}

// streamState is the per-user knowledge of a prequential run.
type streamState struct {
	seen    []model.Bitset
	history [][]model.Event
	factors [][]float32 // nil: unknown user
}

func runStream(ctx context.Context, mode string, mod *model.Model, stats *model.ItemStats, warm, test []Interaction, unit TimeUnit) (StreamResult, error) {
	users, items := mod.Users.Rows(), mod.Items.Rows()
	o, err := model.NewOnline(mod, stats)
	if err != nil {
		return StreamResult{}, err
	}
	st := streamState{seen: make([]model.Bitset, users), history: make([][]model.Event, users), factors: make([][]float32, users)}
	pop := make([]float32, items)
	toEvent := func(in Interaction) model.Event {
		return model.Event{Item: in.Item, Weight: float32(in.Weight), Time: time.Unix(0, 0).Add(time.Duration(in.Time) * unit)}
	}
	halfLife, trending, err := trendingMode(mode)
	if err != nil {
		return StreamResult{}, err
	}
	trend := model.NewTrending(halfLife)
	if trending {
		trend.Add(items-1, 0, time.Unix(0, 0)) // one score per item row
	}
	learnPop := func(in Interaction) {
		pop[in.Item]++
		if trending {
			trend.Add(int(in.Item), in.Weight, toEvent(in).Time)
		}
	}
	for _, in := range warm {
		st.seen[in.User].Set(int(in.Item))
		st.history[in.User] = append(st.history[in.User], toEvent(in))
		learnPop(in)
	}
	for u := range users {
		if st.history[u] != nil {
			st.factors[u] = mod.Users.Row(u)
		}
	}
	learner := o.NewLearner()
	var s model.Scorer
	top := make([]model.Scored, 0, 10)
	res := StreamResult{Mode: mode, Events: len(test)}
	start := time.Now()
	for n, in := range test {
		if n%1024 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		u := in.User
		switch {
		case trending:
			top = s.SelectTop(top, trend.Scores(), 10, st.seen[u], nil)
		case mode == "pop":
			top = s.SelectTop(top, pop, 10, st.seen[u], nil)
		case mode == "static", mode == "foldin":
			if x := st.factors[u]; x != nil {
				top = o.TopK(&s, top, model.Query{Vector: x, N: 10, Exclude: st.seen[u]})
			} else {
				top = top[:0]
			}
		default:
			return res, fmt.Errorf("eval: unknown stream mode %q (want static, foldin, pop or trending[=half-life])", mode)
		}
		for _, e := range top {
			if e.Item == in.Item {
				res.Hits++
				break
			}
		}
		// Learn.
		st.seen[u].Set(int(in.Item))
		learnPop(in)
		switch mode {
		case "foldin":
			ev := toEvent(in)
			x := make([]float32, mod.Params.Factors)
			if err := learner.Observe(x, st.factors[u], st.history[u], []model.Event{ev}); err != nil {
				return res, err
			}
			if err := learner.Flush(); err != nil {
				return res, err
			}
			st.history[u] = append(st.history[u], ev)
			st.factors[u] = x
		}
	}
	el := time.Since(start)
	if len(test) > 0 {
		res.Recall10 = float64(res.Hits) / float64(len(test))
		res.EventsPerS = float64(len(test)) / el.Seconds()
	}
	return res, nil
}

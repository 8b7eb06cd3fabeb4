package eval

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// SearchBar draws a search's progress on one terminal line (carriage
// returns): the share of the budget spent, the trials so far and the best
// validation NDCG@10 on the main validation split with its configuration.
// A nil writer draws nothing.
type SearchBar struct {
	w      io.Writer
	budget time.Duration
	trials int
	best   SearchTrial
	drawn  bool
}

// NewSearchBar returns a bar for a search with the given budget (0: the
// bar counts trials only).
func NewSearchBar(w io.Writer, budget time.Duration) *SearchBar {
	return &SearchBar{w: w, budget: budget}
}

// Trial records an evaluation and redraws the bar; use it as
// SearchConfig.OnTrial (or call it from there).
func (b *SearchBar) Trial(t SearchTrial) {
	b.trials++
	// Only the main validation split's full-fidelity scores compare (a
	// race's runs on another fold score other held-out items).
	if t.Fold == 0 && (b.best.Users == 0 || t.NDCG10 > b.best.NDCG10) {
		b.best = t
	}
	if b.w == nil {
		return
	}
	const width = 24
	el := time.Duration(t.ElapsedS * float64(time.Second))
	bar, share := "", ""
	if b.budget > 0 {
		f := min(el.Seconds()/b.budget.Seconds(), 1)
		n := int(f * width)
		bar = "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] "
		share = fmt.Sprintf("%3.0f%% %s/%s  ", 100*f, el.Round(time.Second), b.budget)
	} else {
		share = fmt.Sprintf("%s  ", el.Round(time.Second))
	}
	p := b.best.Params
	fmt.Fprintf(b.w, "\rtune %s%strials %d  best val NDCG@10 %.4f (k=%d λ=%.3g α=%.3g half-life=%s it=%d ρ=%.2g κ=%.3g)   ",
		bar, share, b.trials, b.best.NDCG10, p.Factors, p.Lambda, p.Alpha, p.HalfLife, p.Iterations, b.best.Blend.Prior, b.best.Blend.Kappa)
	b.drawn = true
}

// Done ends the bar's line.
func (b *SearchBar) Done() {
	if b.w != nil && b.drawn {
		fmt.Fprintln(b.w)
	}
}

package eval

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Split is a leave-one-out split: per user one held-out item, the rest is
// training. Users and items keep the numbering of the Dataset.
type Split struct {
	Users, Items int
	// Train holds the training interactions.
	Train []Interaction
	// Held is, per user, the held-out item, or -1 when the user has none.
	Held []int32
	// Skipped counts the users with an interaction but fewer than 2, who
	// are not evaluated (their interaction stays in Train).
	Skipped int
}

// minHoldout is the least number of interactions a user needs to have
// one held out (PROTOCOL.md: sessions and users with fewer than 2 are not
// evaluated).
const minHoldout = 2

// LeaveLastOut holds out, per user with at least 2 interactions, the
// interaction with the latest time, ties broken by the larger item number
// (PROTOCOL.md, step 2). Applied to a Split's Train it gives the
// validation split ("Tuning").
func LeaveLastOut(users, items int, ins []Interaction) Split {
	last := make([]int, users)
	count := make([]int, users)
	for u := range last {
		last[u] = -1
	}
	for j, in := range ins {
		count[in.User]++
		p := last[in.User]
		if p < 0 || in.Time > ins[p].Time || (in.Time == ins[p].Time && in.Item > ins[p].Item) {
			last[in.User] = j
		}
	}
	return holdOut(users, items, ins, last, count)
}

// holdOut builds the split that holds out ins[held[u]] for every user with
// at least minHoldout interactions (count[u]).
func holdOut(users, items int, ins []Interaction, held, count []int) Split {
	s := Split{Users: users, Items: items, Held: make([]int32, users)}
	for u, p := range held {
		s.Held[u] = -1
		switch {
		case count[u] >= minHoldout && p >= 0:
			s.Held[u] = ins[p].Item
		case count[u] > 0:
			held[u] = -1
			s.Skipped++
		}
	}
	s.Train = make([]Interaction, 0, len(ins))
	for j, in := range ins {
		if held[in.User] != j {
			s.Train = append(s.Train, in)
		}
	}
	return s
}

// HoldOutRandom holds out, per user with at least 2 interactions, one
// interaction drawn uniformly by rng among the user's interactions in
// ascending item order, users in ascending order (PROTOCOL.md, "Data
// without timestamps"). Users with fewer interactions draw nothing.
func HoldOutRandom(users, items int, ins []Interaction, rng *rand.Rand) Split {
	byUser := make([][]int, users)
	count := make([]int, users)
	for j, in := range ins {
		byUser[in.User] = append(byUser[in.User], j)
		count[in.User]++
	}
	held := make([]int, users)
	for u, js := range byUser {
		held[u] = -1
		if len(js) < minHoldout {
			continue
		}
		slices.SortFunc(js, func(a, b int) int { return cmp.Compare(ins[a].Item, ins[b].Item) })
		held[u] = js[rng.IntN(len(js))]
	}
	return holdOut(users, items, ins, held, count)
}

// HoldoutRule names how a split holds out one interaction per user.
type HoldoutRule string

// Holdout rules.
const (
	// HoldoutLatest holds out each user's latest interaction (PROTOCOL.md,
	// step 2).
	HoldoutLatest HoldoutRule = "latest"
	// HoldoutRandom holds out one interaction per user at random (data
	// without timestamps).
	HoldoutRandom HoldoutRule = "random"
)

// Holdout makes the test split and then the validation split of a
// dataset with one rule. With HoldoutRandom one generator (PCG seeded 0,
// 0) draws the test items and, continued, the validation items, as
// PROTOCOL.md asks; so call Split for the test split first.
type Holdout struct {
	rule HoldoutRule
	rng  *rand.Rand
}

// NewHoldout returns the holdout of a rule ("" is HoldoutLatest).
func NewHoldout(rule HoldoutRule) (*Holdout, error) {
	switch rule {
	case "", HoldoutLatest:
		return &Holdout{rule: HoldoutLatest}, nil
	case HoldoutRandom:
		return &Holdout{rule: rule, rng: rand.New(rand.NewPCG(0, 0))}, nil
	}
	return nil, fmt.Errorf("eval: holdout %q: want latest or random", rule)
}

// Rule returns the holdout's rule.
func (h *Holdout) Rule() HoldoutRule { return h.rule }

// Split holds out one interaction per user of ins.
func (h *Holdout) Split(users, items int, ins []Interaction) Split {
	if h.rule == HoldoutRandom {
		return HoldOutRandom(users, items, ins, h.rng)
	}
	return LeaveLastOut(users, items, ins)
}

// Validation returns the validation split of a test split: the same rule
// applied to its training part.
func (h *Holdout) Validation(test Split) Split {
	return h.Split(test.Users, test.Items, test.Train)
}

// Fold returns a further validation split of test, val being
// Validation(test): the rule applied to val's training part picks each
// user's next held-out interaction (the second latest; with
// HoldoutRandom a further draw of the same generator), and the fold fits
// the rest of test's training part, val's held-out interaction included:
// as many interactions as test fits, none of test's held-out ones. A
// search scores its best configurations on it as well (SearchConfig.Folds)
// to tell them apart with two held-out interactions per user. Users with
// fewer than 2 interactions in val's training part hold out none.
func (h *Holdout) Fold(test, val Split) Split { return h.Folds(test, val, 1)[0] }

// Folds returns n further validation splits of test in turn, Fold's
// first: fold j holds out each user's (j+2)-th latest interaction (with
// HoldoutRandom the next draw) and fits the rest of test's training
// part. A search that scored its configurations on the first fold leaves
// the second as the one split nothing was chosen on, where its pick is
// checked against popularity (the race would otherwise confirm itself).
// A user holds out nothing in a fold once fewer than 2 of their
// interactions are left.
func (h *Holdout) Folds(test, val Split, n int) []Split {
	folds := make([]Split, n)
	prev := val
	for j := range folds {
		next := h.Split(prev.Users, prev.Items, prev.Train)
		f := Split{Users: test.Users, Items: test.Items, Held: next.Held, Skipped: next.Skipped}
		f.Train = make([]Interaction, 0, len(test.Train))
		for _, in := range test.Train {
			if next.Held[in.User] != in.Item {
				f.Train = append(f.Train, in)
			}
		}
		folds[j], prev = f, next
	}
	return folds
}

// ScoreFunc fills dst (one score per item) for user u. It is called
// concurrently from several goroutines, each with its own dst.
type ScoreFunc func(u int, dst []float32)

// Ranking is the outcome of ranking every user's held-out item.
type Ranking struct {
	// Ranks is the 1-based rank of each user's held-out item, 0 for users
	// without one.
	Ranks []int
}

// Rank scores, for every user with a held-out item, all candidate items
// (every item not in the user's training set) and ranks the held-out one:
// r = 1 + #{candidate j ≠ held : score_j ≥ score_held}, so ties count
// against it; a NaN held-out score ranks last and a NaN competitor never
// outranks (PROTOCOL.md, "Clarifications").
func Rank(ctx context.Context, s Split, score ScoreFunc, threads int) (Ranking, error) {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	train := newUserItems(s)
	ranks := make([]int, s.Users)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]float32, s.Items)
			mark := make([]bool, s.Items)
			for ctx.Err() == nil {
				u := int(next.Add(1) - 1)
				if u >= s.Users {
					return
				}
				if s.Held[u] < 0 {
					continue
				}
				score(u, dst)
				ranks[u] = rankOf(dst, int(s.Held[u]), train.of(u), mark)
			}
		}()
	}
	wg.Wait()
	return Ranking{Ranks: ranks}, ctx.Err()
}

// rankOf ranks the held item among the items not in train; mark is all
// false, as long as scores, and is left so.
func rankOf(scores []float32, held int, train []int32, mark []bool) int {
	distinct := 0
	for _, i := range train {
		if !mark[i] {
			mark[i] = true
			distinct++
		}
	}
	defer func() {
		for _, i := range train {
			mark[i] = false
		}
	}()
	t := scores[held]
	if math.IsNaN(float64(t)) {
		return len(scores) - distinct
	}
	r := 1
	for j, v := range scores {
		if j == held || v < t || !(v >= t) || mark[j] {
			continue
		}
		r++
	}
	return r
}

// Metrics are the LOO-full ranking metrics over users with a held-out item.
type Metrics struct {
	Users    int     `json:"users"`
	HR10     float64 `json:"hr10"`
	NDCG10   float64 `json:"ndcg10"`
	Recall50 float64 `json:"recall50"`
	// NDCG10SE and HR10SE are standard errors over users (sample sd / √n).
	NDCG10SE float64 `json:"ndcg10_se"`
	HR10SE   float64 `json:"hr10_se"`
}

// Summarize computes HR@10, NDCG@10 (1/log2(r+1) when r ≤ 10) and Recall@50
// with their standard errors.
func (r Ranking) Summarize() Metrics {
	var m Metrics
	var nd, hr []float64
	for _, rank := range r.Ranks {
		if rank <= 0 {
			continue
		}
		m.Users++
		n, h := NDCGAt(rank, 10), 0.0
		if rank <= 10 {
			h = 1
		}
		if rank <= 50 {
			m.Recall50++
		}
		nd = append(nd, n)
		hr = append(hr, h)
	}
	if m.Users == 0 {
		return m
	}
	m.NDCG10, m.NDCG10SE = meanSE(nd)
	m.HR10, m.HR10SE = meanSE(hr)
	m.Recall50 /= float64(m.Users)
	return m
}

// NDCGAt is the NDCG@k contribution of a single relevant item at rank r.
func NDCGAt(r, k int) float64 {
	if r < 1 || r > k {
		return 0
	}
	return 1 / math.Log2(float64(r)+1)
}

func meanSE(x []float64) (mean, se float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss/float64(len(x)-1)) / math.Sqrt(float64(len(x)))
}

// Paired compares two systems' per-user ranks on the same split: the mean
// per-user NDCG@10 difference (a − b), its standard error and t = diff/se.
type Paired struct {
	A, B     string  `json:"-"`
	Users    int     `json:"users"`
	NDCGDiff float64 `json:"ndcg10_diff"`
	SE       float64 `json:"se"`
	T        float64 `json:"t"`
}

// ComparePaired computes the paired NDCG@10 difference of ranks a and b
// (users with rank 0 in either are skipped).
func ComparePaired(a, b []int) Paired {
	var d []float64
	for u := range a {
		if u >= len(b) || a[u] <= 0 || b[u] <= 0 {
			continue
		}
		d = append(d, NDCGAt(a[u], 10)-NDCGAt(b[u], 10))
	}
	return pairedOf(d)
}

// ComparePairedValues is ComparePaired for per-user values already
// computed (e.g. NDCG@10 over several held-out items); NaN marks a user
// without a value.
func ComparePairedValues(a, b []float64) Paired {
	var d []float64
	for u := range a {
		if u >= len(b) || math.IsNaN(a[u]) || math.IsNaN(b[u]) {
			continue
		}
		d = append(d, a[u]-b[u])
	}
	return pairedOf(d)
}

func pairedOf(d []float64) Paired {
	p := Paired{Users: len(d)}
	if len(d) == 0 {
		return p
	}
	p.NDCGDiff, p.SE = meanSE(d)
	if p.SE > 0 {
		p.T = p.NDCGDiff / p.SE
	}
	return p
}

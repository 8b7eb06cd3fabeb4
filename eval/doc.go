// Package eval measures ranking quality offline: the LOO-full protocol
// of PROTOCOL.md (leave one out, rank every unseen item), prequential
// test-then-learn (Prequential), cold start (ColdUsers, ColdItems), the
// popularity prior of the served ranking (FitBlend), hyperparameter search
// within a budget (Search), and A/B statistics (package eval/abtest).
// `kairos eval …` prints its results.
//
// # Data and splits
//
// Load reads a dataset (movielens, csv, diginetica and otto formats; the
// last two treat a session as the user) and Build numbers users and items
// and merges repeated pairs. A Holdout makes the test split and then the
// validation split with one rule: HoldoutLatest holds out each user's
// latest interaction (ties: the larger item), HoldoutRandom one drawn by a
// PCG(0, 0) generator in ascending user order, the validation draw
// continuing the same generator (data without timestamps). Users with
// fewer than 2 interactions are not evaluated (Split.Skipped) and stay in
// the training part. Rank ranks each held-out item among all items the
// user has not trained on, ties counting against it.
//
// # The popularity prior (why, and how it is fitted)
//
// Implicit ALS alone can rank worse than "most popular" on sparse data —
// a dozen interactions per user and many rarely seen items, where the
// missing entries say more about popularity than about taste (Steck 2011,
// "Item popularity and recommendation accuracy"; Rendle et al. 2022,
// "Revisiting the performance of iALS on item recommendation
// benchmarks", on how much a well-set iALS owes to its handling of
// popularity). The served ranking therefore mixes the ALS score with
// popularity, both standardised, the popularity weight fading as the
// model learns the user:
//
//	score_i ∝ z(x_u·y_i) + c(n)·z(log(1 + pop_i)),   c(n) = (ρ + κ/n)/(1 − ρ)
//
// which is model.Blend with its Prior ρ and the cold-start confidence
// n/(n + κ) (the engine ranks a new visitor with the same formula, the page
// item's neighbours joining the context). κ/n is a credibility weight in
// the sense of empirical Bayes shrinkage: with few events the estimate is
// pulled to the population's (popularity); ρ keeps a share for users the
// model knows well. FitBlend picks ρ and κ by validation NDCG@10 over a
// grid; nothing is tuned to a particular dataset, so the defaults stay
// above popularity on data they never saw: on a planted sparse log (Sparse)
// where plain ALS loses to popularity, ALS with the fitted prior does not
// (a test). For a user, rank(c) of the held-
// out item is a step function of c: each item overtakes it on one side of
// a break-even c, so one pass over the items counts every grid point's
// rank (a binary search per item into the grid's sorted c values), and
// the users are scored 32 at a time by one matrix product.
//
// The alternatives considered: an item-neighbour model (item-kNN, EASE)
// blended in. EASE inverts an items × items matrix (12,700 items: 2·10¹²
// flops and 650 MB), item-kNN needs a second, co-occurrence model in the
// engine with its own real-time updates; the prior reuses what the engine
// already keeps (trending, the blend's standardisation) at no serving
// cost, and one formula covers the first event and the thousandth.
//
// # Search within a budget
//
// Search is Hyperband (Li et al. 2018) over successive halving (Jamieson
// & Talwalkar 2016) with ALS sweeps as the resource: rungs of 6 and 18
// sweeps (after 2 sweeps every configuration scores about the same), the
// survivors trained further with model.Continue rather than again. Each
// trained model is scored by the validation NDCG@10 of its best prior (a
// coarse grid, at most 20,000 users as in the defaults' fit), so the
// search picks the configuration of the ranking actually served. Before
// the brackets the warm starts (the previous pick, kept in a TuneState
// file or the retrain log, then the reference: the defaults) are trained
// at full fidelity, at their own sweeps and at 18. k, λ, α and the half-life are then drawn
// half near the best so far, a quarter near the defaults and a quarter
// from the whole space (log-uniform λ and α). A training step that the
// measured speed says would overrun the budget is not started. Only
// full-fidelity scores compete for the pick. At the end the best five
// configurations and the defaults race (the spread of one configuration
// over seeds is about as large as the validation differences between
// good configurations): in each of three rounds they are trained again
// with another seed, on a second validation split in turn with the first
// (Holdout.Fold: each user's next held-out interaction, the first
// split's fitted), and the worse half leaves; the best mean per user over
// its runs is the pick, when the measured speed says the race fits in
// the budget. The pick replaces the defaults only if its per-user
// validation NDCG@10, averaged over the runs, beats theirs (paired t >
// MinT, 0 by default): a search never hands back a configuration that
// loses to the defaults on validation. Validation and test still disagree within the
// split's noise: see docs/evaluation.md for what 120 s reach against the
// 540-point grid.
//
// FitBlend falls back to the most popularity-heavy blend of its grid
// (popularity, the model breaking its ties) when the best blend does not
// beat it by a paired t of 1 over the validation users: with a dozen
// users every blend scores the same few hits and the first in grid order
// (plain ALS) would win the tie.
package eval

// Package model is the mathematics of Kairos: implicit-feedback ALS (Hu,
// Koren, Volinsky 2008) trained in batch (Train, Continue) and kept live
// (Online: exact fold-in of a visitor, bounded item updates, Learner for
// the engine's per-event path), factor tables, exact top-K (TopK, and
// TopKBatched, which scores concurrent queries in one pass), the
// approximate index (IVF: quantised scan, exact re-rank, kept fresh by
// RefreshIndex, persisted by EncodeIndex/LoadIndex), popularity and recency-weighted trending (Trending), the
// cold-start and popularity blend (Blend), provisional factors of new
// items (TagPrior) and the snapshot format (Snapshot, Decode). It does no
// I/O beyond io.Reader and io.Writer.
//
// # Ranking = ALS + a fitted popularity prior
//
// What a visitor is shown is Blend.Scores of the visitor's ALS scores
// x_u·y_i, the context of the request (the page item's neighbours) and
// trending popularity, each standardised, with weights that depend on how
// many events n the model has seen from the visitor: the context fades as
// n/(n + κ), and a share ρ of popularity (Blend.Prior) stays in the
// personal part. Popularity's weight relative to the ALS score is thus
// (ρ + κ/n)/(1 − ρ) (Blend.PopularityWeight): one formula for the first
// event and the thousandth. ρ and κ are fitted on a validation split by
// package eval (FitBlend) and travel with a retrained snapshot
// (Meta.Blend); see coldstart.go for the formulas and eval's package
// documentation for why.
package model

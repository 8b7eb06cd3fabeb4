// Package offline is the batch side of Kairos: it retrains the model from
// the event archive (package offline/archive), decides whether the new
// model may replace the live one, and publishes the snapshot to the
// running engines.
//
// # Retrain
//
// Retrain reads the archive in two streaming passes (the first finds the
// time range and each visitor's span, the second aggregates), so its
// memory is proportional to the distinct (visitor, item) pairs, not to the
// number of events. Events are turned into weights exactly as the engine
// does (signals.Weights; decay with the half-life measured back from each
// visitor's latest event; duplicates — a batch archived twice because its
// first delivery failed after the append — are dropped by id over a
// sliding window), for every half-life a search may try at once.
//
// The range is cut into the events before a held-out tail and the tail.
// On the events before it, each visitor's latest pair is held out as a
// validation split (PROTOCOL.md's rule): the popularity prior of the
// ranking (model.Blend's ρ and κ, eval.FitBlend) is fitted there and, with
// RetrainConfig.Tune, the hyperparameters are searched there within a
// budget (eval.Search, warm-started from the last pick and the live
// parameters). Finally the pick is trained on everything for the
// snapshot, which carries the prior (Meta.Blend) and, as Meta.ArchiveSeq,
// the last archive record read: the cut-off.
//
// # The guard
//
// The new model must be compared with the live one on events neither has
// learnt from. The live model learns every event in real time, so its
// current item factors have already seen any tail; instead the live model
// is taken as of the tail's start. When the live model was loaded from a
// snapshot (the blob "model/current") and enough visitors are active on
// both sides of its cut-off, the tail is everything after the cut-off and
// the snapshot is exactly the live model as of then (reference
// "snapshot"). Otherwise the tail starts at the latest time — between the
// 50th and the 90th percentile of the events — with RetrainConfig.
// TargetUsers such visitors (or the most there are), and the live model is
// its parameters and blend trained on the events before it (reference
// "recipe"). For every visitor with events on both sides, the items of the
// tail they had not seen are ranked among all unseen items by the new
// model (trained on the events before the tail), the live one and
// popularity (its ties broken arbitrarily), each visitor folded in from
// the same history: NDCG@10 over the tail items, HR@10, Recall@50, and a
// paired per-visitor t statistic of the new model against each.
//
// Runner publishes the snapshot only when at least MinUsers visitors were
// compared, the new model beats popularity (positive difference, t ≥
// BeatT) and is not significantly worse than the live model (t ≥ WorseT,
// or a difference within Tolerance); otherwise it keeps the live model
// and says why (RunResult.Reason). Every run, failed ones included, is
// kept in the retrain log (Log, the blob "model/retrains") that
// `kairos retrain`, the server's scheduled retrains, /metrics and the
// dashboard share.
//
// # Publish
//
// Publish stores the snapshot under the blob "model/current" and announces
// it on signals.TopicModels; every engine loads it without stopping and
// replays the archive records after the cut-off, so that nothing learnt in
// real time is lost (engine.Engine.LoadSnapshot).
//
// offline imports eval for the validation metrics, the prior's fit and
// the search (eval depends on model only).
package offline

// Package offline is the batch side of Kairos: it retrains the model from
// the event archive (package offline/archive) and publishes the snapshot to
// the running engines.
//
// # Retrain
//
// Retrain reads the archive in two streaming passes (the first finds the
// time range, the second aggregates), so its memory is proportional to the
// distinct (visitor, item) pairs, not to the number of events. Events are
// turned into weights exactly as the engine does (signals.Weights; decay
// with the model's half-life measured back from each visitor's latest
// event; duplicates — a batch archived twice because its first delivery
// failed after the append — are dropped by id over a sliding window). It
// holds out the last part of the range (RetrainConfig.Holdout), trains on
// the rest and ranks, for every visitor active both before and in the
// tail, the first tail item the visitor had not seen: HR@10 and NDCG@10 of
// the retrained model and of the live one (its item factors, visitors
// folded in from the same pre-tail history). The live model has learnt the
// tail in real time, which favours it slightly: a retrain that still beats
// it is clearly better. Finally it trains on everything for the snapshot,
// whose Meta.ArchiveSeq is the last archive record read: the cut-off.
//
// # Publish
//
// Publish stores the snapshot under the blob "model/current" and announces
// it on signals.TopicModels; every engine loads it without stopping and
// replays the archive records after the cut-off, so that nothing learnt in
// real time is lost (engine.Engine.LoadSnapshot).
package offline

package engine

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus instruments.
type metrics struct {
	consumed, applied, duplicates prometheus.Counter
	forwarded                     prometheus.Counter
	newItems, swaps               prometheus.Counter
	refolded                      prometheus.Counter
	indexBuilds                   prometheus.Counter
	filterExact                   prometheus.Counter
	foldIn, batch, lag            prometheus.Histogram
	recommend                     *prometheus.HistogramVec
	// stage times the steps of a consumed batch (handle.go, stages).
	stage *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consumed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_events_consumed_total", Help: "Events delivered to the engine, duplicates included."}),
		applied:    prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_events_applied_total", Help: "Events committed to the store and learnt."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_events_duplicate_total", Help: "Events dropped because their id was seen before."}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_events_forwarded_total",
			Help: "Events that arrived on another partition than their state's and were forwarded there (published before their visitor's link was known)."}),
		newItems: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_items_started_total", Help: "Items that got their first factors from an event."}),
		refolded: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_visitors_refolded_total",
			Help: "Visitors folded in again after their batch's item updates because their first fold-in met an item's random start (factors-only commit)."}),
		swaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_model_swaps_total", Help: "Retrained models loaded (hot swaps) by this process."}),
		indexBuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_index_builds_total",
			Help: "Approximate index builds (clusterings) by this process; an index loaded with the state is not one."}),
		filterExact: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_engine_filter_exact_total",
			Help: "Filtered requests that the approximate index answered short and were scored exactly."}),
		foldIn: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairos_engine_foldin_seconds", Help: "Time to fold one visitor in (mean per visitor of a batch).",
			Buckets: prometheus.ExponentialBuckets(5e-6, 2, 14)}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairos_engine_batch_seconds", Help: "Time to process one consumed batch end to end.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 14)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairos_engine_consume_lag_seconds", Help: "Event time to applied (consume lag).",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 18)}),
		recommend: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kairos_engine_recommend_seconds", Help: "Time to rank items for one request, by strategy.",
			Buckets: prometheus.ExponentialBuckets(5e-5, 2, 14)}, []string{"strategy"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kairos_engine_batch_stage_seconds",
			Help:    "Time of one step of a consumed batch, by stage: wait (for the batch before it), dedup (identities and seen marks), forward, archive, prepare (item rows, links, merges), read (the rest of the wait for the visitor states, read since dedup began), foldin, commit, apply (item updates, reactions, trending).",
			Buckets: prometheus.ExponentialBuckets(5e-5, 2, 16)}, []string{"stage"}),
	}
	for _, s := range batchStages {
		m.stage.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.applied, m.duplicates, m.forwarded, m.newItems, m.refolded, m.swaps, m.indexBuilds, m.filterExact, m.foldIn, m.batch, m.lag, m.recommend, m.stage)
	}
	return m
}

// batchStages are the stage labels of kairos_engine_batch_stage_seconds.
var batchStages = []string{"wait", "dedup", "forward", "archive", "prepare", "read", "foldin", "commit", "apply"}

// stageClock times the consecutive stages of one batch.
type stageClock struct {
	m    *prometheus.HistogramVec
	last time.Time
}

func newStageClock(m *prometheus.HistogramVec) stageClock { return stageClock{m: m, last: time.Now()} }

// lap records the time since the last lap (or the start) as stage.
func (c *stageClock) lap(stage string) {
	now := time.Now()
	c.m.WithLabelValues(stage).Observe(now.Sub(c.last).Seconds())
	c.last = now
}

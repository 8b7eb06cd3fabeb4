package experiments

import "github.com/prometheus/client_golang/prometheus"

// metrics are the experiments engine's Prometheus metrics.
type metrics struct {
	served    *prometheus.CounterVec
	exposures prometheus.Counter
	units     prometheus.Counter
	outcomes  prometheus.Counter
	rejected  prometheus.Counter
	dropped   prometheus.Counter
	reweighs  prometheus.Counter
	errors    *prometheus.CounterVec
	react     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_experiment_decisions_total",
			Help: "Decisions served in experiments (every request in an experiment), by experiment and variant."}, []string{"experiment", "variant"}),
		exposures: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_experiment_exposures_published_total",
			Help: "First exposures published as exposure events (one per new unit)."}),
		units: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_experiment_units_total",
			Help: "Units counted from consumed exposure events."}),
		outcomes: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_experiment_outcomes_total",
			Help: "Clicks, add-to-carts and conversions attributed to a unit."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_experiment_exposures_rejected_total",
			Help: "Exposure events that did not verify (bad signature, unknown variant): counted nothing."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_experiment_exposures_dropped_total",
			Help: "Exposures of pushed promotions that could not be published (queue full or bus errors)."}),
		reweighs: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_experiment_reweighs_total",
			Help: "Bandit re-weightings stored by this replica."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_experiment_errors_total",
			Help: "Store or bus errors of the experiments engine, by operation (units, reload, reweigh, look, publish)."}, []string{"op"}),
		react: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairos_experiment_react_seconds",
			Help:    "Time the experiments engine spends on one committed batch (attribution).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}),
	}
	if reg != nil {
		reg.MustRegister(m.served, m.exposures, m.units, m.outcomes, m.rejected, m.dropped, m.reweighs, m.errors, m.react)
	}
	return m
}

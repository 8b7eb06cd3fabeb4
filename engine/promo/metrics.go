package promo

import "github.com/prometheus/client_golang/prometheus"

// metrics are the promo engine's Prometheus metrics.
type metrics struct {
	promotions prometheus.Counter
	matches    prometheus.Counter
	skips      *prometheus.CounterVec
	ranked     prometheus.Counter
	tokens     *prometheus.CounterVec
	errors     *prometheus.CounterVec
	react      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		promotions: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_promo_promotions_total",
			Help: "Instant promotions fired (logged for the visitor and broadcast)."}),
		matches: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_promo_rule_matches_total",
			Help: "Rule conditions that held (a match fires unless cooling down or no offer is eligible)."}),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_promo_rule_skips_total",
			Help: "Rule matches that pushed nothing, by reason: cooldown, no_offer, capped, holdout."}, []string{"reason"}),
		ranked: prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_promo_offers_ranked_total",
			Help: "Offers returned by offer requests (exposures with a token)."}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_promo_tokens_rejected_total",
			Help: "Event tokens that did not attribute: forged, other_visitor, expired or stale (issued before the offer was created again)."}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_promo_errors_total",
			Help: "Store or bus errors of the promo engine, by operation (counts, fire, broadcast)."}, []string{"op"}),
		react: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairos_promo_react_seconds",
			Help:    "Time the promo engine spends on one committed batch (counters and rules).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}),
	}
	if reg != nil {
		reg.MustRegister(m.promotions, m.matches, m.skips, m.ranked, m.tokens, m.errors, m.react)
	}
	return m
}

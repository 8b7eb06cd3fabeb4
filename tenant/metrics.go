package tenant

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// OtherLabel is the tenant label of the tenants beyond the labelled ones.
const OtherLabel = "other"

// metrics are the router's and the pool's metrics. Per-tenant series are
// bounded: the first top tenants to be seen since the start get their id
// as the label, every later one shares OtherLabel.
type metrics struct {
	loaded      prometheus.Gauge
	loads       prometheus.Counter
	evictions   prometheus.Counter
	loadSeconds prometheus.Histogram
	requests    *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	tenants     *prometheus.GaugeVec

	mu      sync.Mutex
	top     int
	labeled map[string]struct{}
}

// newMetrics registers the metrics on reg (nil: unregistered); top is the
// number of tenants labelled by id.
func newMetrics(reg prometheus.Registerer, top int) *metrics {
	m := &metrics{
		loaded:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "kairos_tenants_loaded", Help: "Tenants whose server is loaded."}),
		loads:       prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_tenant_loads_total", Help: "Tenant servers loaded (first request, or after an eviction)."}),
		evictions:   prometheus.NewCounter(prometheus.CounterOpts{Name: "kairos_tenant_evictions_total", Help: "Idle tenant servers unloaded to stay within --tenant-max-loaded."}),
		loadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairos_tenant_load_seconds", Help: "Time to load a sleeping tenant's server.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_tenant_requests_total",
			Help: "Requests per tenant and status code (tenant: the id for the first --tenant-metrics-top tenants seen, else \"other\")."}, []string{"tenant", "code"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairos_tenant_quota_refusals_total",
			Help: "Requests refused with 429 by a tenant quota (requests_per_second, events_per_day, items, visitors) or its in-flight bound (in_flight)."}, []string{"tenant", "quota"}),
		tenants: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kairos_tenants", Help: "Tenants in the registry by status."}, []string{"status"}),
		top:     top,
		labeled: map[string]struct{}{},
	}
	if reg != nil {
		reg.MustRegister(m.loaded, m.loads, m.evictions, m.loadSeconds, m.requests, m.refusals, m.tenants)
	}
	return m
}

// label returns the tenant label of id.
func (m *metrics) label(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.labeled[id]; ok {
		return id
	}
	if len(m.labeled) < m.top {
		m.labeled[id] = struct{}{}
		return id
	}
	return OtherLabel
}

func (m *metrics) request(id string, code int) {
	m.requests.WithLabelValues(m.label(id), strconv.Itoa(code)).Inc()
}

func (m *metrics) refused(id, quota string) {
	m.refusals.WithLabelValues(m.label(id), quota).Inc()
}

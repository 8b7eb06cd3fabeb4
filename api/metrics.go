package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the API's Prometheus metrics. Label values are bounded:
// route is a route template or "unmatched", method one of the standard
// methods or "other", code an HTTP status, reason a field name.
type metrics struct {
	requests  *prometheus.CounterVec   // route, method, code
	duration  *prometheus.HistogramVec // route
	inFlight  prometheus.Gauge
	received  prometheus.Counter
	accepted  prometheus.Counter
	rejected  *prometheus.CounterVec   // reason
	publish   *prometheus.HistogramVec // result
	shed      *prometheus.CounterVec   // route
	handler   http.Handler
	codeNames [600]string

	// streamsOpen and streamsRefused count promotion streams.
	streamsOpen    prometheus.Gauge
	streamsRefused *prometheus.CounterVec // limit: server or visitor
}

// newMetrics registers the API's metrics on reg; eventsInFlight reads the
// event requests being served.
func newMetrics(reg *prometheus.Registry, eventsInFlight func() float64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kairos_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kairos_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kairos_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kairos_events_received_total",
			Help: "Events received from authenticated clients (POST /v1/events and the pixel), before validation.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kairos_events_accepted_total",
			Help: "Events validated and durably published.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kairos_events_rejected_total",
			Help: "Events not accepted, by reason: the invalid field (id, type, visitor, item, ts, value, props, ..., or event for the whole event), duplicate (id repeated in a batch), or unavailable (publishing failed: outcome unknown, the client retries with the same ids).",
		}, []string{"reason"}),
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kairos_events_publish_duration_seconds",
			Help:    "Time to publish one batch of accepted events (until the broker confirmed), by result (ok, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"result"}),
		streamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kairos_promotion_streams_open",
			Help: "Promotion streams (GET /v1/promotions/stream) open now.",
		}),
		streamsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kairos_promotion_streams_refused_total",
			Help: "Promotion streams refused with 503, by the limit reached: server (MaxStreams) or visitor (MaxVisitorStreams).",
		}, []string{"limit"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kairos_event_requests_shed_total",
			Help: "Event requests (POST /v1/events, the pixel, POST /v1/identify) answered 503 at once, their bodies unread, because Config.MaxEventRequests were being served (admission control), by route.",
		}, []string{"route"}),
	}
	eventsGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kairos_event_requests_in_flight",
		Help: "Event requests (POST /v1/events, the pixel, POST /v1/identify) being served; at most Config.MaxEventRequests.",
	}, eventsInFlight)
	m.streamsRefused.WithLabelValues(limitServer)
	m.streamsRefused.WithLabelValues(limitVisitor)
	for _, r := range []string{"/v1/events", "/v1/pixel.gif", "/v1/identify"} {
		m.shed.WithLabelValues(r) // exported as 0 from the start
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.received, m.accepted, m.rejected, m.publish,
		m.streamsOpen, m.streamsRefused, m.shed, eventsGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	for i := range m.codeNames {
		m.codeNames[i] = strconv.Itoa(i)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m, nil
}

func (m *metrics) observeRequest(route, method string, code int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions,
		http.MethodHead, http.MethodPatch:
	default:
		method = "other"
	}
	codeName := "other"
	if code >= 0 && code < len(m.codeNames) {
		codeName = m.codeNames[code]
	}
	m.requests.WithLabelValues(route, method, codeName).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// rejectReason bounds the reason label: known field names, "event",
// "duplicate" and "unavailable"; anything else is "other".
func rejectReason(field string) string {
	switch field {
	case "":
		return "event"
	case "id", "type", "visitor", "user", "item", "offer", "token", "session", "element",
		"page", "referrer", "ts", "value", "props", "user_hash", "duplicate", "unavailable":
		return field
	}
	return "other"
}

// metricsHandler serves the registry in the Prometheus exposition format.
func (s *Server) metricsHandler(c echo.Context) error {
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}

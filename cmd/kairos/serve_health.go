package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// dependencyProbeTimeout bounds each dependency's check during a scrape.
const dependencyProbeTimeout = 2 * time.Second

// dependencyCollector exports, at each scrape of /metrics, whether the
// store and the bus answer (kairos_dependency_up{dependency}: 1 or 0; the
// dependency is redis or store (embedded), rabbitmq or bus (in-process))
// and how many poison messages the bus dead-lettered
// (kairos_events_dead_lettered_total). The Prometheus alert rules of
// deploy/prometheus read them.
type dependencyCollector struct {
	a                                    *app
	up, deadDesc                         *prometheus.Desc
	packedMessagesDesc, packedEventsDesc *prometheus.Desc
}

func newDependencyCollector(a *app) *dependencyCollector {
	return &dependencyCollector{
		a: a,
		up: prometheus.NewDesc("kairos_dependency_up",
			"Whether a dependency answered its check at this scrape (1) or not (0): redis or store (embedded), rabbitmq or bus (in-process).",
			[]string{"dependency"}, nil),
		deadDesc: prometheus.NewDesc("kairos_events_dead_lettered_total",
			"Poison messages (events a consumer could not accept) dead-lettered by this process since it started.", nil, nil),
		packedMessagesDesc: prometheus.NewDesc("kairos_bus_packed_messages_total",
			"Partition-addressed messages this process published to RabbitMQ (confirmed) since it started.", nil, nil),
		packedEventsDesc: prometheus.NewDesc("kairos_bus_packed_events_total",
			"Events those messages carried: events per message shows how well concurrent requests share messages.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *dependencyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.deadDesc
	ch <- c.packedMessagesDesc
	ch <- c.packedEventsDesc
}

// Collect implements prometheus.Collector: it pings the store and the bus.
func (c *dependencyCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), dependencyProbeTimeout)
	defer cancel()
	store, bus := "store", "bus"
	if c.a.cfg.RedisURL != "" {
		store = "redis"
	}
	if c.a.cfg.AMQPURL != "" {
		bus = "rabbitmq"
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, upValue(c.a.store.Ping(ctx)), store)
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, upValue(c.a.bus.Ready(ctx)), bus)
	var dead uint64
	if d, ok := c.a.bus.(interface{ DeadLettered() uint64 }); ok {
		dead = d.DeadLettered()
	}
	ch <- prometheus.MustNewConstMetric(c.deadDesc, prometheus.CounterValue, float64(dead))
	if p, ok := c.a.bus.(interface{ Packing() (uint64, uint64) }); ok {
		messages, events := p.Packing()
		ch <- prometheus.MustNewConstMetric(c.packedMessagesDesc, prometheus.CounterValue, float64(messages))
		ch <- prometheus.MustNewConstMetric(c.packedEventsDesc, prometheus.CounterValue, float64(events))
	}
}

func upValue(err error) float64 {
	if err != nil {
		return 0
	}
	return 1
}

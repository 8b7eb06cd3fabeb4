package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// historyConfig is the cluster's history of `kairos serve`
// (docs/history.md): the RabbitMQ stream every accepted event is written
// to, and the cold tier written by the elected archiver.
type historyConfig struct {
	// Stream declares the stream and binds it to the events exchange.
	Stream bool
	// Dir is the cold tier (default <data-dir>/history): a directory
	// every replica that may be elected reaches (a shared volume).
	Dir string
	// MaxAge and MaxGiB are the stream's retention.
	MaxAge time.Duration
	MaxGiB int
	// Retention is the cold tier's (0: forever).
	Retention time.Duration
	// Archiver makes this replica a candidate for the archiver lease.
	Archiver bool
	// LeaseTTL is the archiver lease's time to live.
	LeaseTTL time.Duration
}

func (h *historyConfig) register(e *envFlags) {
	e.bool(&h.Stream, "history-stream", false, "write every accepted event to the RabbitMQ stream <namespace>.history (needs --amqp-url) and archive it to --history-dir from one elected replica")
	e.str(&h.Dir, "history-dir", "", "cold tier of the cluster's history, shared by the replicas that may archive (default <data-dir>/history)")
	e.dur(&h.MaxAge, "history-max-age", rabbitmq.DefaultStreamMaxAge, "retention of the history stream by age (x-max-age; change an existing stream with a policy)")
	e.int(&h.MaxGiB, "history-max-gb", int(rabbitmq.DefaultStreamMaxBytes>>30), "retention of the history stream by size, GiB (x-max-length-bytes)")
	e.dur(&h.Retention, "history-retention", 0, "how long the cold tier keeps events (0 = forever)")
	e.bool(&h.Archiver, "history-archiver", true, "compete for the archiver lease (false: this replica never writes the cold tier)")
	e.dur(&h.LeaseTTL, "history-lease-ttl", history.DefaultLeaseTTL, "archiver lease time to live: a dead archiver is replaced after it")
}

// validate fills the default directory and reports every problem.
func (h *historyConfig) validate(dataDir, amqpURL string) []error {
	if h.Dir == "" {
		h.Dir = filepath.Join(dataDir, "history")
	}
	if !h.Stream {
		return nil
	}
	var errs []error
	if amqpURL == "" {
		errs = append(errs, errors.New("--history-stream needs --amqp-url (the stream is a RabbitMQ stream queue)"))
	}
	if h.MaxAge < time.Second {
		errs = append(errs, fmt.Errorf("--history-max-age %v must be >= 1s", h.MaxAge))
	}
	if h.MaxGiB < 1 {
		errs = append(errs, fmt.Errorf("--history-max-gb %d must be >= 1", h.MaxGiB))
	}
	if h.Retention < 0 {
		errs = append(errs, fmt.Errorf("--history-retention %v is negative", h.Retention))
	}
	if h.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("--history-lease-ttl %v must be >= 1s", h.LeaseTTL))
	}
	return errs
}

// streamConfig is the bus's configuration of the stream.
func (h historyConfig) streamConfig() rabbitmq.StreamConfig {
	if !h.Stream {
		return rabbitmq.StreamConfig{}
	}
	c := rabbitmq.StreamConfig{Enabled: true, MaxAge: h.MaxAge, MaxBytes: int64(h.MaxGiB) << 30}
	c.SegmentBytes = min(rabbitmq.DefaultStreamSegmentBytes, c.MaxBytes)
	return c
}

// addHistory builds the archiver (when this replica is a candidate).
func (a *app) addHistory(_ context.Context, w *wiring) error {
	h := a.cfg.History
	// Erasures reach the cold tier through the store's erasure log, which
	// the engine's eraser appends to (addErasureLog).
	if !h.Archiver {
		return nil
	}
	stream, err := rabbitmq.NewStreamReader(rabbitmq.StreamReaderConfig{URL: a.cfg.AMQPURL, Prefix: a.cfg.Namespace, Logger: a.log})
	if err != nil {
		return err
	}
	a.archiver, err = history.NewArchiver(history.ArchiverConfig{Dir: h.Dir, Stream: stream, Store: a.store, Holder: a.cfg.Replica,
		LeaseTTL: h.LeaseTTL, Retention: h.Retention, Logger: a.log})
	if err != nil {
		return err
	}
	registerArchiverMetrics(w.reg, a.archiver)
	return nil
}

// registerArchiverMetrics exports the archiver's state on /metrics.
func registerArchiverMetrics(reg prometheus.Registerer, ar *history.Archiver) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kairos_history_archiver_leading",
			Help: "Whether this replica holds the archiver lease of the cluster's history (1) or not (0)."},
			func() float64 {
				if ar.Stats().Leading {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kairos_history_archived_events_total",
			Help: "Events this replica archived from the history stream to the cold tier since it started."},
			func() float64 { return float64(ar.Stats().Events) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kairos_history_committed_offset",
			Help: "The first history stream offset not yet archived, as this replica last committed or read it."},
			func() float64 { return float64(ar.Stats().Next) }),
	)
}

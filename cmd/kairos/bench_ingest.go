package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/internal/redisconn"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

func init() {
	register(command{
		name:    "bench ingest",
		summary: "sustained ingest through RabbitMQ into updated factors (events/s, event-to-fresh-factors latency)",
		run:     runBenchIngest,
	})
}

// ingestResult is the JSON line of `kairos bench ingest`.
type ingestResult struct {
	Bench        string  `json:"bench"`
	Store        string  `json:"store"`
	Events       int     `json:"events"`
	Visitors     int     `json:"visitors"`
	PerMessage   int     `json:"events_per_visitor_burst"`
	PublishS     float64 `json:"publish_s"`
	PublishRate  float64 `json:"publish_events_per_s"`
	ApplyS       float64 `json:"apply_s"`
	EventsPerS   float64 `json:"events_per_s"`
	LagP50ms     float64 `json:"lag_p50_ms"`
	LagP99ms     float64 `json:"lag_p99_ms"`
	LagMaxms     float64 `json:"lag_max_ms"`
	Duplicates   int64   `json:"duplicates"`
	Archive      bool    `json:"archive"`
	Stream       bool    `json:"history_stream"`
	FactorsK     int     `json:"k"`
	RateLimitEPS float64 `json:"offered_events_per_s,omitempty"`
	// EventsPerMsg is the events per partition-addressed message the
	// publishers' flights packed (0 without partitions).
	EventsPerMsg float64 `json:"events_per_message,omitempty"`
}

// lagStore wraps a store and records, at each successful commit, the delay
// from every committed event's timestamp (its publish time) to the commit.
type lagStore struct {
	engine.Store
	mu      sync.Mutex
	sent    map[string]time.Time
	lags    []time.Duration
	applied atomic.Int64
}

func (s *lagStore) Commit(ctx context.Context, c engine.Commit) error {
	if err := s.Store.Commit(ctx, c); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	for _, r := range c.Events {
		if t, ok := s.sent[r.ID]; ok {
			s.lags = append(s.lags, now.Sub(t))
		}
	}
	s.mu.Unlock()
	s.applied.Add(int64(len(c.Events)))
	return nil
}

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench ingest", stderr)
	amqpURL := fs.String("amqp-url", envOr("KAIROS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "RabbitMQ URL")
	redisURL := fs.String("redis-url", envOr("KAIROS_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (\"embedded\": the embedded store in a temp dir)")
	events := fs.Int("events", 200_000, "events to ingest")
	visitors := fs.Int("visitors", 20_000, "distinct visitors")
	items := fs.Int("items", 10_000, "distinct items (Zipf-distributed)")
	per := fs.Int("burst", 20, "events per visitor burst (the tracker sends up to 20 per request)")
	publishers := fs.Int("publishers", 4, "concurrent publishers")
	rate := fs.Float64("rate", 0, "offered events/s (0: as fast as the broker confirms)")
	prefetch := fs.Int("prefetch", 256, "consumer prefetch")
	queueType := fs.String("queue-type", envOr("KAIROS_QUEUE_TYPE", rabbitmq.QueueQuorum), "queue type: quorum or classic")
	partitions := fs.Int("partitions", defaultPartitions, "partition queues, all consumed by the benchmark's engine (0: one replica queue)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	withStream := fs.Bool("history-stream", false, "bind the history stream to the events exchange (the broker writes every event to it too, as kairos serve --history-stream)")
	waitReplicas := fs.Int("redis-wait-replicas", 0, "on a Redis Cluster, commits wait for this many replicas (as kairos serve --redis-wait-replicas)")
	withArchive := fs.Bool("archive", false, "archive every event (as kairos serve does; in a temporary directory, fsync policy interval)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// An empty URL (an unset shell variable) would reach the defaults
	// while the clean-up of the run's queues and keys silently failed.
	for _, f := range []struct{ flag, v string }{{"--amqp-url", *amqpURL}, {"--redis-url", *redisURL}} {
		if strings.TrimSpace(f.v) == "" {
			return fmt.Errorf("%s is empty: give a URL, or leave the flag out for the default", f.flag)
		}
	}
	if *cpuprofile != "" {
		stopProfile, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	ns := fmt.Sprintf("kbench%d", rand.Uint32())
	store, storeName, cleanup, err := benchStore(ctx, *redisURL, ns, *waitReplicas)
	if err != nil {
		return err
	}
	defer cleanup()
	ls := &lagStore{Store: store, sent: make(map[string]time.Time, *events)}
	bus, err := rabbitmq.Dial(ctx, rabbitmq.Config{URL: *amqpURL, Prefix: ns, Prefetch: *prefetch, QueueType: *queueType, Partitions: *partitions,
		Stream: rabbitmq.StreamConfig{Enabled: *withStream, MaxAge: time.Hour, MaxBytes: 8 << 30}})
	if err != nil {
		return err
	}
	defer deleteNamespaceQueues(*amqpURL, ns)
	defer bus.Close()
	eng, err := engine.New(ctx, engine.Config{}, ls, bus)
	if err != nil {
		return err
	}
	if *withArchive {
		dir, err := mkTemp()
		if err != nil {
			return err
		}
		defer removeAll(dir)
		arc, err := archive.Open(ctx, archive.Options{Dir: dir})
		if err != nil {
			return err
		}
		defer arc.Close()
		eng.SetArchive(arc, arc)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(runCtx) }()

	bursts := makeBursts(*events, *visitors, *items, *per)
	fmt.Fprintf(stderr, "publishing %d events of %d visitors in bursts of %d (%s store)\n", *events, *visitors, *per, storeName)
	start := time.Now()
	pubTook, err := publishBursts(ctx, bus, bursts, ls, *publishers, *rate)
	if err != nil {
		return err
	}
	for ls.applied.Load() < int64(*events) {
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("only %d of %d events applied after 10 min", ls.applied.Load(), *events)
		}
		time.Sleep(2 * time.Millisecond)
	}
	applyTook := time.Since(start)
	stop()
	if err := <-engDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	res := ingestResult{Bench: "ingest", Store: storeName, Events: *events, Visitors: *visitors, PerMessage: *per,
		PublishS: pubTook.Seconds(), PublishRate: float64(*events) / pubTook.Seconds(),
		ApplyS: applyTook.Seconds(), EventsPerS: float64(*events) / applyTook.Seconds(),
		FactorsK: engine.Config{}.Defaults().Params.Factors, RateLimitEPS: *rate, Archive: *withArchive, Stream: *withStream}
	slices.Sort(ls.lags)
	if n := len(ls.lags); n > 0 {
		q := func(p float64) float64 { return float64(ls.lags[min(n-1, int(p*float64(n)))]) / 1e6 }
		res.LagP50ms, res.LagP99ms, res.LagMaxms = q(0.5), q(0.99), float64(ls.lags[n-1])/1e6
	}
	res.Duplicates = int64(len(ls.lags)) - int64(*events)
	if messages, packed := bus.Packing(); messages > 0 {
		res.EventsPerMsg = float64(packed) / float64(messages)
	}
	return writeJSON(stdout, res)
}

// benchStore opens a Redis store under a fresh prefix (deleted afterwards;
// commits wait for waitReplicas replicas on a cluster) or an embedded
// store in a temp dir.
func benchStore(ctx context.Context, url, ns string, waitReplicas int) (engine.Store, string, func(), error) {
	if url == "embedded" {
		dir, err := mkTemp()
		if err != nil {
			return nil, "", nil, err
		}
		s, err := embedded.Open(dir, embedded.Config{})
		if err != nil {
			return nil, "", nil, err
		}
		return s, "embedded", func() { s.Close(); removeAll(dir) }, nil
	}
	s, err := redisstore.Open(ctx, redisstore.Config{URL: url, Prefix: ns, WaitReplicas: waitReplicas})
	if err != nil {
		return nil, "", nil, err
	}
	return s, "redis", func() { s.Close(); deleteRedisPrefix(url, ns) }, nil
}

// makeBursts generates bursts of events, each of one visitor.
func makeBursts(events, visitors, items, per int) [][]signals.Event {
	rng := rand.New(rand.NewPCG(42, 1))
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(items-1))
	types := []signals.Type{signals.TypeView, signals.TypeView, signals.TypeView, signals.TypeView, signals.TypeView,
		signals.TypeView, signals.TypeView, signals.TypeClick, signals.TypeClick, signals.TypeAddToCart}
	var bursts [][]signals.Event
	for n := 0; n < events; {
		v := rng.IntN(visitors)
		b := make([]signals.Event, 0, per)
		for j := 0; j < per && n < events; j++ {
			b = append(b, signals.Event{ID: fmt.Sprintf("b%d", n), Type: types[rng.IntN(len(types))],
				Visitor: fmt.Sprintf("v%d", v), Item: fmt.Sprintf("i%d", zipf.Uint64())})
			n++
		}
		bursts = append(bursts, b)
	}
	return bursts
}

// publishBursts publishes every burst (stamping ts and recording the send
// time) from several goroutines, a burst per Publish call (the shape of a
// tracker request), optionally paced to rate events/s.
func publishBursts(ctx context.Context, bus signals.Publisher, bursts [][]signals.Event, ls *lagStore, publishers int, rate float64) (time.Duration, error) {
	var next atomic.Int64
	var sentEvents atomic.Int64
	errc := make(chan error, publishers)
	start := time.Now()
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bursts) {
					return
				}
				b := bursts[i]
				if rate > 0 {
					due := start.Add(time.Duration(float64(sentEvents.Load()) / rate * float64(time.Second)))
					if w := time.Until(due); w > 0 {
						time.Sleep(w)
					}
				}
				now := time.Now()
				ls.mu.Lock()
				for j := range b {
					b[j].Time = signals.Timestamp{Time: now.UTC().Truncate(time.Millisecond)}
					ls.sent[b[j].ID] = now
				}
				ls.mu.Unlock()
				if err := bus.Publish(ctx, b); err != nil {
					errc <- err
					return
				}
				sentEvents.Add(int64(len(b)))
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// deleteRedisPrefix deletes the keys under prefix on the server or the
// cluster of url (best effort: a benchmark's clean-up).
func deleteRedisPrefix(url, prefix string) {
	rc, err := redisconn.New(url, redisconn.Options{})
	if err != nil {
		return
	}
	defer rc.Close()
	_ = redisconn.DeleteKeys(context.Background(), rc, prefix)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

func init() {
	register(command{
		name:    "replay",
		summary: "re-feed archived events to the exchange or straight into a store (idempotent: events are de-duplicated by id)",
		run:     runReplay,
	})
}

// replayResult is the JSON line of `kairos replay`.
type replayResult struct {
	Target     string  `json:"target"`
	Events     int     `json:"events"`
	TookS      float64 `json:"took_s"`
	EventsPerS float64 `json:"events_per_s"`
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", stderr)
	dir := archiveDirFlags(fs)
	from := fs.String("from", "", "first event time (RFC 3339 or a duration back from now)")
	to := fs.String("to", "", "end of the range, exclusive (RFC 3339 or a duration back from now)")
	toExchange := fs.Bool("to-exchange", false, "publish to the kairos.events exchange (needs --amqp-url)")
	toStore := fs.Bool("to-store", false, "apply straight to the store through an in-process engine (Redis, or the embedded store of --data-dir when kairos serve is stopped)")
	amqpURL := fs.String("amqp-url", envOr("KAIROS_AMQP_URL", ""), "RabbitMQ URL")
	redisURL := fs.String("redis-url", envOr("KAIROS_REDIS_URL", ""), "Redis URL")
	namespace := fs.String("namespace", envOr("KAIROS_NAMESPACE", "kairos"), "prefix of RabbitMQ and Redis names")
	dataDir := fs.String("store-data-dir", envOr("KAIROS_DATA_DIR", "./kairos-data"), "data dir of the embedded store for --to-store without Redis")
	batchSize := fs.Int("batch", 500, "events per publish or engine batch")
	trendingFlag := fs.String("trending-half-life", envOr("KAIROS_TRENDING_HALF_LIFE", "24h"), "with --to-store, the half-life of the trending counts it builds: kairos serve's --trending-half-life ($KAIROS_TRENDING_HALF_LIFE)")
	hist := bindHistoryFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *toExchange == *toStore {
		return errors.New("choose exactly one of --to-exchange and --to-store")
	}
	if err := atLeast("batch", *batchSize, 1); err != nil {
		return err
	}
	trendingHalfLife, err := time.ParseDuration(*trendingFlag)
	if err != nil || trendingHalfLife < time.Minute {
		return fmt.Errorf("--trending-half-life %q: want a duration of at least 1m", *trendingFlag)
	}
	now := time.Now()
	f, err := parseWhen(*from, now)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	t, err := parseWhen(*to, now)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if !f.IsZero() && !t.IsZero() && !f.Before(t) {
		return fmt.Errorf("--from %s is not before --to %s: nothing to replay", f.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	var sink func(context.Context, []signals.Event) error
	target := "store"
	if *toExchange {
		if *amqpURL == "" {
			return errors.New("--to-exchange needs --amqp-url")
		}
		bcfg, err := toolBusConfig(*amqpURL, *namespace)
		if err != nil {
			return err
		}
		if err := checkToolPartitions(ctx, bcfg, *redisURL); err != nil {
			return err
		}
		bus, err := rabbitmq.Dial(ctx, bcfg)
		if err != nil {
			return err
		}
		defer bus.Close()
		sink, target = bus.Publish, *namespace+".events"
	} else {
		store, err := openToolStore(ctx, *redisURL, *namespace, *dataDir)
		if err != nil {
			return err
		}
		defer store.Close()
		// Its own name: the trending counts of the events it applies
		// are shared beside the replicas' (a replica's name would have
		// its counts overwritten by the replica's next save).
		eng, err := engine.New(ctx, engine.Config{Replica: "replay", TrendingHalfLife: trendingHalfLife}, store, nil)
		if err != nil {
			return err
		}
		sink = eng.Handle
		defer func() { _ = eng.SaveState(context.WithoutCancel(ctx)) }()
	}
	start := time.Now()
	n := 0
	batch := make([]signals.Event, 0, *batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := sink(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		if n%50_000 < *batchSize {
			fmt.Fprintf(stderr, "\rreplayed %d events", n)
		}
		return nil
	}
	hr, closeHist, err := hist.reader(ctx, *dataDir, *amqpURL, *namespace, stderr)
	if err != nil {
		return err
	}
	defer closeHist()
	var src interface {
		Scan(context.Context, time.Time, time.Time, func(signals.Event) error) error
	} = archive.NewReader(dir(), nil)
	if hr != nil {
		src = hr
	}
	err = src.Scan(ctx, f, t, func(ev signals.Event) error {
		batch = append(batch, upgradeVisitor(ev))
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	if hr != nil {
		historyNote(stderr, hr)
	}
	el := time.Since(start)
	return writeJSON(stdout, replayResult{Target: target, Events: n, TookS: el.Seconds(), EventsPerS: float64(n) / el.Seconds()})
}

// upgradeVisitor rewrites an event of an older archive whose visitor is a
// user's state key ("user:<id>" with user <id>: the exposure events of
// experiments once named a user without a device so) to name the user
// itself, as visitor ids may no longer start with the reserved prefix and
// the broker would refuse it. The engine files both under the user.
func upgradeVisitor(ev signals.Event) signals.Event {
	if u, ok := strings.CutPrefix(ev.Visitor, signals.UserKeyPrefix); ok && u == ev.User {
		ev.Visitor = ev.User
	}
	return ev
}

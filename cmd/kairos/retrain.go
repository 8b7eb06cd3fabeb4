package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

func init() {
	register(command{
		name:    "retrain",
		summary: "batch ALS from the event archive (optionally tuned), compared on a held-out tail with the live model and popularity, published to running engines when the guard lets it",
		run:     runRetrain,
	})
}

func runRetrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("retrain", stderr)
	dataDir := fs.String("data-dir", envOr("KAIROS_DATA_DIR", "./kairos-data"), "data dir (archive in <data-dir>/archive; embedded store in <data-dir>/state)")
	archiveDir := fs.String("archive-dir", "", "archive directory (default <data-dir>/archive)")
	redisURL := fs.String("redis-url", envOr("KAIROS_REDIS_URL", ""), "Redis URL of the running deployment (empty: the embedded store of --data-dir, which must not be in use)")
	amqpURL := fs.String("amqp-url", envOr("KAIROS_AMQP_URL", ""), "RabbitMQ URL to announce the model on kairos.models")
	namespace := fs.String("namespace", envOr("KAIROS_NAMESPACE", "kairos"), "prefix of RabbitMQ and Redis names")
	from := fs.String("from", "", "first event time (RFC 3339, or a duration back from now like 720h; default: the archive's start)")
	to := fs.String("to", "", "end of the event range, exclusive (RFC 3339 or a duration back from now; default: now)")
	holdout := fs.Duration("holdout", 0, "tail held out for the evaluation (default: from the live snapshot's cut-off when enough users are active on both sides, else placed to compare as many users as possible)")
	tolerance := fs.Float64("tolerance", 0.002, "refuse only if the tail NDCG@10 is more than this much below the live model's (and significantly so)")
	minUsers := fs.Int("min-users", 50, "publish only when at least this many users are compared on the tail")
	guardUsers := fs.Int("guard-users", offline.DefaultGuardUsers, "rank at most this many of the tail's users in the comparison, an even spread of them (negative: all)")
	tune := fs.Bool("tune", false, "search k, λ, α, half-life and iterations on the validation split before the tail (Hyperband, warm-started from the last pick)")
	tuneBudget := fs.Duration("tune-budget", 120*time.Second, "wall-clock budget of --tune")
	dryRun := fs.Bool("dry-run", false, "train and evaluate, do not publish")
	force := fs.Bool("force", false, "publish even if the guard refuses (worse than the live model, not better than popularity, too few users)")
	out := fs.String("out", "", "also write the snapshot to this file")
	neighbours := fs.Bool("item-neighbours", true, "weigh item neighbours (item-kNN, 50 per item) into the ranking when validation says they help")
	hist := bindHistoryFlags(fs)
	p := model.DefaultParams()
	solver := paramFlags(fs, &p)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := setSolver(&p, *solver); err != nil {
		return err
	}
	var err error
	cfg := offline.RetrainConfig{Params: p, Holdout: *holdout, Progress: stderr, HistoryCut: *hist.stream,
		FitItemLambda: !*tune && !flagSet(fs, "item-lambda-exponent"), FitHalfLife: !*tune && !flagSet(fs, "half-life"),
		FitAlpha:         !*tune && !flagSet(fs, "alpha"),
		NoItemNeighbours: !*neighbours, GuardUsers: *guardUsers}
	now := time.Now()
	if cfg.From, err = parseWhen(*from, now); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if cfg.To, err = parseWhen(*to, now); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if err := errors.Join(atLeast("min-users", *minUsers, 1), guardUsersFlag("guard-users", *guardUsers), nonNegative("tune-budget", *tuneBudget), nonNegative("holdout", *holdout)); err != nil {
		return err
	}
	if !(*tolerance >= 0) || math.IsInf(*tolerance, 0) { // NaN too
		return fmt.Errorf("--tolerance: %v is not a number >= 0", *tolerance)
	}
	if !cfg.From.IsZero() && !cfg.To.IsZero() && !cfg.From.Before(cfg.To) {
		return fmt.Errorf("--from %s is not before --to %s", cfg.From.Format(time.RFC3339), cfg.To.Format(time.RFC3339))
	}
	hr, closeHist, err := hist.reader(ctx, *dataDir, *amqpURL, *namespace, stderr)
	if err != nil {
		return err
	}
	defer closeHist()
	var src offline.RecordSource = hr
	if hr == nil {
		if *archiveDir == "" {
			*archiveDir = filepath.Join(*dataDir, "archive")
		}
		if _, err := os.Stat(*archiveDir); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		src = archive.NewReader(*archiveDir, nil)
	}
	runner := &offline.Runner{Source: src, Config: cfg, Tolerance: *tolerance, MinUsers: *minUsers}
	if *tune {
		runner.TuneBudget = *tuneBudget
		if runner.TuneBudget == 0 {
			runner.TuneBudget = -1 // one Hyperband cycle
		}
	}
	store, err := openToolStore(ctx, *redisURL, *namespace, *dataDir)
	switch {
	case err == nil:
		defer store.Close()
		runner.Live = func(ctx context.Context) (*offline.LiveModel, error) { return liveFromStore(ctx, store) }
		runner.Log = &offline.Log{Store: storeBlobs{store}}
	case *dryRun:
		fmt.Fprintf(stderr, "no comparison with the live model: %v\n", err)
	default:
		return err
	}
	var bus *rabbitmq.Bus
	if *amqpURL != "" {
		bcfg, err := toolBusConfig(*amqpURL, *namespace)
		if err != nil {
			return err
		}
		if err := checkToolPartitions(ctx, bcfg, *redisURL); err != nil {
			return err
		}
		if bus, err = rabbitmq.Dial(ctx, bcfg); err != nil {
			return err
		}
		defer bus.Close()
	}
	runner.Publish = func(ctx context.Context, snap *model.Snapshot) error {
		var b signals.Broadcaster
		if bus != nil {
			b = bus
		}
		return offline.Publish(ctx, store, b, snap)
	}
	res, err := runner.Run(ctx, *dryRun, *force)
	if err != nil {
		return err
	}
	if hr != nil {
		historyNote(stderr, hr)
	}
	enc := json.NewEncoder(stdout)
	if res.Search != nil {
		if err := enc.Encode(struct {
			Pick       string                 `json:"pick"`
			Method     string                 `json:"method"`
			Params     model.Params           `json:"params"`
			Blend      model.Blend            `json:"blend"`
			Validation any                    `json:"validation"`
			Search     *offline.SearchSummary `json:"search"`
		}{"tune", "hyperband", res.Params, res.Blend, res.Validation, res.Search}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "%s: %s\n", res.Decision, res.Reason)
	if *out != "" && res.Snapshot != nil {
		if err := writeSnapshot(*out, res.Snapshot); err != nil {
			return err
		}
	}
	if res.Decision == offline.DecisionPublished && bus == nil {
		fmt.Fprintln(stderr, "published to the store; without --amqp-url running engines load it at their next start (or when announced)")
	}
	return enc.Encode(res)
}

// parseWhen reads an RFC 3339 time or a duration back from now ("" is the
// zero time).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration", s)
	}
	return t, nil
}

// openToolStore opens the deployment's store for an offline tool.
func openToolStore(ctx context.Context, redisURL, namespace, dataDir string) (engine.Store, error) {
	if redisURL != "" {
		return redisstore.Open(ctx, redisstore.Config{URL: redisURL, Prefix: namespace})
	}
	s, err := embedded.Open(filepath.Join(dataDir, "state"), embedded.Config{Logger: slog.New(slog.DiscardHandler)})
	if errors.Is(err, embedded.ErrLocked) {
		return nil, fmt.Errorf("%w (kairos serve is running on this data dir: stop it, or let it retrain itself with --retrain-every)", err)
	}
	return s, err
}

// openToolStoreReadOnly is openToolStore for tools that only read: the
// embedded store is loaded without its lock (embedded.OpenReadOnly), so
// that they run beside kairos serve; it sees the server's writes up to the
// moment it is opened.
func openToolStoreReadOnly(ctx context.Context, redisURL, namespace, dataDir string) (engine.Store, error) {
	if redisURL != "" {
		return redisstore.Open(ctx, redisstore.Config{URL: redisURL, Prefix: namespace})
	}
	dir := filepath.Join(dataDir, "state")
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no embedded store at %s (set --data-dir, or --redis-url for Redis): %w", dir, err)
	}
	return embedded.OpenReadOnly(dir, embedded.Config{Logger: slog.New(slog.DiscardHandler)})
}

// liveFromStore reads the live item factors from the store.
func liveFromStore(ctx context.Context, store engine.Store) (*offline.LiveModel, error) {
	ids, err := store.RowIDs(ctx)
	if err != nil {
		return nil, err
	}
	states, err := store.ItemStates(ctx)
	if err != nil {
		return nil, err
	}
	if len(states) == 0 {
		return nil, nil
	}
	k := len(states[0].Factors)
	items := model.NewFactors(len(ids), k)
	for _, s := range states {
		if int(s.Row) < len(ids) && len(s.Factors) == k {
			copy(items.Row(int(s.Row)), s.Factors)
		}
	}
	p, ok, err := engine.StoredParams(ctx, store)
	if err != nil {
		return nil, err
	}
	if !ok || p.Factors != k {
		p = model.DefaultParams()
		p.Factors = k
	}
	live := &offline.LiveModel{Params: p, Blend: model.DefaultBlend(), ItemIDs: ids, Items: items}
	if live.Snapshot, err = liveSnapshot(ctx, store); err != nil {
		return nil, err
	}
	if s := live.Snapshot; s != nil && s.Meta.Blend != nil {
		live.Blend.Prior, live.Blend.Kappa = s.Meta.Blend.Prior, s.Meta.Blend.Kappa
	}
	return live, nil
}

func writeSnapshot(path string, s *model.Snapshot) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := s.Encode(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

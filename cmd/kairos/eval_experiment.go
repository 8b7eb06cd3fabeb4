package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

func init() {
	register(command{
		name: "eval experiment",
		summary: "an experiment's results from the store (as GET /v1/experiments/{id}/results), its counts rebuilt from the archive " +
			"(--from-archive), or its decision log for kairos eval offpolicy (--decisions)",
		run: runEvalExperiment,
	})
}

// rebuildLine is the JSON line of `kairos eval experiment --from-archive`.
type rebuildLine struct {
	Experiment string `json:"experiment"`
	Source     string `json:"source"`
	Events     int    `json:"events"`
	Duplicates int    `json:"duplicates"`
	Units      int    `json:"units"`
	// Rebuilt and Live are the counts per variant (revenue in cents, Σx²
	// as limbs: experiments.Counts); Equal compares them exactly.
	Rebuilt map[string]experiments.Counts `json:"rebuilt"`
	Live    map[string]experiments.Counts `json:"live"`
	Equal   bool                          `json:"equal"`
	// Results analyses the rebuilt counts (without looks).
	Results experiments.Results `json:"results"`
}

func runEvalExperiment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval experiment", stderr)
	id := fs.String("id", "", "experiment id (required)")
	fromArchive := fs.Bool("from-archive", false, "rebuild the counts from the archived events and compare them with the live ones")
	decisions := fs.Bool("decisions", false, `print the decision log, one {"propensity","reward","target","variant","exposed"} line per unit, for kairos eval offpolicy`)
	target := fs.String("target", "", `target policy of --decisions: a variant name ("always B") or weights "A=0.2,B=0.8"`)
	metric := fs.String("metric", "", "reward of --decisions: ctr, add_to_cart, conversion or revenue (default the experiment's)")
	dataDir := fs.String("data-dir", envOr("KAIROS_DATA_DIR", "./kairos-data"), "data dir: the embedded store (<data-dir>/state, read without its lock: kairos serve may run) and the default archive")
	archiveDirs := fs.String("archive-dir", "", "archive directories, comma-separated (default <data-dir>/archive; with several replicas, all of theirs)")
	redisURL := fs.String("redis-url", envOr("KAIROS_REDIS_URL", ""), "Redis URL (the store, instead of the embedded one)")
	namespace := fs.String("namespace", envOr("KAIROS_NAMESPACE", "kairos"), "prefix of the Redis keys (and of the history stream)")
	amqpURL := fs.String("amqp-url", envOr("KAIROS_AMQP_URL", ""), "RabbitMQ URL (the history stream of --history-stream)")
	hist := bindHistoryFlags(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if !experiments.ValidID(*id) {
		return errors.New("--id: an experiment id is required")
	}
	if *fromArchive && *decisions {
		return errors.New("choose at most one of --from-archive and --decisions")
	}
	if *decisions && *target == "" {
		return errors.New("--decisions needs --target (a variant, or weights A=0.2,B=0.8)")
	}
	store, err := openToolStoreReadOnly(ctx, *redisURL, *namespace, *dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	xs := experiments.NewStore(store)
	x, err := storedExperiment(ctx, xs, *id)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	if !*fromArchive && !*decisions {
		counts, err := xs.ExperimentCounts(ctx, *id)
		if err != nil {
			return err
		}
		looks, err := xs.ExperimentLooks(ctx, *id)
		if err != nil {
			return err
		}
		r, err := experiments.Analyze(&x, counts, looks, time.Now().UTC(), experiments.ResultsOptions{})
		if err != nil {
			return err
		}
		return enc.Encode(r)
	}
	secret, err := promo.NewStore(store).PromoSecret(ctx)
	if errors.Is(err, embedded.ErrReadOnly) {
		return fmt.Errorf("experiment %q: the store has no offer-token secret yet, so no exposure was ever served", *id)
	}
	if err != nil {
		return err
	}
	signer, err := experiments.NewSigner(secret)
	if err != nil {
		return err
	}
	scan, source, closeSource, err := experimentSource(ctx, hist, *archiveDirs, *dataDir, *amqpURL, *namespace, stderr)
	if err != nil {
		return err
	}
	defer closeSource()
	start := time.Now()
	rb, err := experiments.Rebuild(ctx, &x, signer, scan)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "eval experiment: %s: %d events read in %.1f s, %d units\n", *id, rb.Events, time.Since(start).Seconds(), len(rb.Units))
	if *decisions {
		m := x.Metric
		if *metric != "" {
			if m = experiments.Metric(*metric); !m.Valid() {
				return fmt.Errorf("--metric: %q is not ctr, add_to_cart, conversion or revenue", *metric)
			}
		}
		pi, err := targetPolicy(&x, *target)
		if err != nil {
			return fmt.Errorf("--target: %w", err)
		}
		for _, d := range rb.Decisions(&x, m, pi) {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	live, err := xs.ExperimentCounts(ctx, *id)
	if err != nil {
		return err
	}
	for v, c := range live {
		c.Normalize()
		live[v] = c
	}
	res, err := experiments.Analyze(&x, rb.Counts, nil, time.Now().UTC(), experiments.ResultsOptions{NoHistory: true})
	if err != nil {
		return err
	}
	return enc.Encode(rebuildLine{Experiment: *id, Source: source, Events: rb.Events, Duplicates: rb.Duplicates,
		Units: len(rb.Units), Rebuilt: rb.Counts, Live: live, Equal: reflect.DeepEqual(nonZero(rb.Counts), nonZero(live)), Results: res})
}

// storedExperiment reads one definition from the store.
func storedExperiment(ctx context.Context, xs experiments.Store, id string) (experiments.Experiment, error) {
	docs, err := xs.ExperimentDocs(ctx)
	if err != nil {
		return experiments.Experiment{}, err
	}
	for _, d := range docs {
		if d.ID != id {
			continue
		}
		x, err := experiments.Decode(d.JSON, "")
		if err != nil {
			return x, err
		}
		var ts struct{ Created time.Time }
		if err := json.Unmarshal(d.JSON, &ts); err != nil {
			return x, err
		}
		x.Created = ts.Created
		return x, nil
	}
	return experiments.Experiment{}, fmt.Errorf("experiment %q: %w", id, engine.ErrNotFound)
}

// targetPolicy parses "B" (always B) or "A=0.2,B=0.8" into a probability
// per variant.
func targetPolicy(x *experiments.Experiment, s string) ([]float64, error) {
	pi := make([]float64, len(x.Variants))
	if !strings.Contains(s, "=") {
		i := x.VariantIndex(s)
		if i < 0 {
			return nil, fmt.Errorf("no variant %q", s)
		}
		pi[i] = 1
		return pi, nil
	}
	var sum float64
	for _, part := range strings.Split(s, ",") {
		name, val, _ := strings.Cut(part, "=")
		i := x.VariantIndex(strings.TrimSpace(name))
		if i < 0 {
			return nil, fmt.Errorf("no variant %q", name)
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("%q is not a probability", val)
		}
		pi[i] = p
		sum += p
	}
	if sum < 1-1e-9 || sum > 1+1e-9 {
		return nil, fmt.Errorf("the probabilities sum to %v, not 1", sum)
	}
	return pi, nil
}

// nonZero drops variants without counts (a store may list none).
func nonZero(m map[string]experiments.Counts) map[string]experiments.Counts {
	out := map[string]experiments.Counts{}
	for k, c := range m {
		if !c.IsZero() {
			out[k] = c
		}
	}
	return out
}

// experimentSource returns the scan of the events an experiment is
// rebuilt from, and its description: the cluster's history with
// --history-stream, else the archive directories (every replica's,
// comma-separated); release releases what it opened.
func experimentSource(ctx context.Context, hist historyFlags, archiveDirs, dataDir, amqpURL, namespace string, stderr io.Writer) (scan func(func(signals.Event) error) error, source string, release func(), err error) {
	hr, closeHist, err := hist.reader(ctx, dataDir, amqpURL, namespace, stderr)
	if err != nil {
		return nil, "", nil, err
	}
	if hr != nil {
		return func(fn func(signals.Event) error) error { return hr.Scan(ctx, time.Time{}, time.Time{}, fn) }, "history", closeHist, nil
	}
	dirs := strings.Split(archiveDirs, ",")
	if archiveDirs == "" {
		dirs = []string{filepath.Join(dataDir, "archive")}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			return nil, "", nil, fmt.Errorf("archive: %w", err)
		}
	}
	return func(fn func(signals.Event) error) error {
		for _, d := range dirs {
			if err := archive.NewReader(d, nil).Scan(ctx, time.Time{}, time.Time{}, fn); err != nil {
				return fmt.Errorf("archive %s: %w", d, err)
			}
		}
		return nil
	}, strings.Join(dirs, ","), closeHist, nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine/membership"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/internal/fileperm"
	"github.com/kairoshq/kairos/internal/redisconn"
	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// defaultPartitions is the default of --partitions.
const defaultPartitions = 16

// defaultGCMinHeapMB is the default of --gc-min-heap-mb: a floor well
// above a small server's live heap (tens of MiB), well below what a
// large catalog holds anyway (0.7 GB at 1M items).
const defaultGCMinHeapMB = 256

// serveConfig is the whole configuration of `kairos serve`. Every field
// has a flag and a KAIROS_* environment variable (the flag wins); README.md
// lists them.
type serveConfig struct {
	Addr     string
	DataDir  string
	AMQPURL  string
	RedisURL string
	// RedisWaitReplicas: on a Redis Cluster, a commit is acknowledged once
	// that many replicas of each master it wrote to have it
	// (redisstore.Config.WaitReplicas).
	RedisWaitReplicas int
	// DedupWindow is how long the store remembers an applied event id
	// (a redelivered or replayed event within it is a no-op).
	DedupWindow time.Duration
	Replica     string
	// Namespace prefixes every RabbitMQ exchange and queue and every Redis
	// key, so that several Kairos installations can share the servers.
	Namespace string
	// QueueType is the type of the RabbitMQ queues (rabbitmq.Config.QueueType).
	QueueType string
	// Partitions is the number of RabbitMQ partition queues (0: one queue
	// per replica, the mode of earlier releases); LeaseTTL is how long a
	// replica's membership lease lasts without renewal (a dead replica's
	// partitions move after it).
	Partitions int
	LeaseTTL   time.Duration

	Params     model.Params
	Weights    signals.Weights
	SessionGap time.Duration
	// TrendingHalfLife decays the trending that ranks visitors without
	// factors (engine.Config.TrendingHalfLife).
	TrendingHalfLife time.Duration
	Prefetch         int
	Approx           bool
	// FitItemLambda says each retrain fits ν (Params.ItemLambdaExponent)
	// on its validation split: neither the flag nor its variable is set.
	FitItemLambda bool
	// FitHalfLife says each retrain tries eval.FittedHalfLives (no decay,
	// a week) against Params.HalfLife on its validation split:
	// neither the flag nor its variable is set.
	FitHalfLife bool
	// FitAlpha says each retrain tries half and double Params.Alpha
	// (eval.FittedAlphaFactors) on its validation split: neither the
	// flag nor its variable is set.
	FitAlpha bool
	// ItemNeighbours lets retrains fit the item neighbours' weight η
	// (off: η = 0, no neighbours in the snapshots).
	ItemNeighbours bool
	// IndexLists, IndexProbe and IndexShortlist override the approximate
	// index's automatic parameters (0: automatic).
	IndexLists, IndexProbe, IndexShortlist int
	Blend                                  model.Blend
	BlendBelow                             int

	PublishableKeys []string
	SecretKeys      []string
	AllowedOrigins  []string
	SecretRate      float64
	PublicRate      float64
	// RequireOrigin, TrustedProxies, MetricsPublic, MaxStreams and
	// MaxStreamsPerVisitor are the api.Config fields of the same meaning
	// (MaxVisitorStreams for the last).
	RequireOrigin        bool
	TrustedProxies       []string
	MetricsPublic        bool
	MaxStreams           int
	MaxStreamsPerVisitor int
	// GCMinHeapMB is the heap floor of the garbage collector, in MiB
	// (internal/gcfloor; 0: GOGC alone).
	GCMinHeapMB int
	// IdentitySecrets sign user ids for identity verification (from
	// --identity-secret or the file of --identity-secret-file);
	// IdentityVerification is off, optional, required or "" (required
	// with a secret, else off).
	IdentitySecrets      []string
	IdentityVerification api.IdentityVerification
	// MaxEventRequests bounds the event requests served at once
	// (api.Config.MaxEventRequests; -1: no bound).
	MaxEventRequests int

	// ArchiveDir holds the event archive ("" = <data-dir>/archive, "off"
	// disables it).
	ArchiveDir       string
	ArchiveSync      string
	ArchiveRetention time.Duration
	// History* configure the cluster's history (docs/history.md): the
	// RabbitMQ stream (hot tier) and the cold tier the elected archiver
	// writes.
	History historyConfig
	// RetrainEvery runs a retrain from the archive in the background (0:
	// never); RetrainWindow limits it to the last events (0: all).
	RetrainEvery, RetrainWindow time.Duration
	// RetrainTuneBudget, when positive, lets each scheduled retrain
	// search hyperparameters within it; RetrainMinUsers is the least
	// number of users a retrain's comparison needs to publish.
	RetrainTuneBudget time.Duration
	RetrainMinUsers   int
	// RetrainGuardUsers bounds the tail users a retrain's comparison
	// ranks (offline.RetrainConfig.GuardUsers; negative: all).
	RetrainGuardUsers int
	// StatsRetention is the retention of the event counters per
	// resolution (engine/stats); StatsFlush coalesces their writes, and
	// the attention heat's, over this period (stats.Config.FlushEvery,
	// attention.Config.FlushEvery; 0: every batch).
	StatsRetention stats.Retention
	StatsFlush     time.Duration

	// PprofAddr serves net/http/pprof when set (e.g. 127.0.0.1:6060).
	PprofAddr string

	LogLevel  string
	LogFormat string
	Demo      bool

	// HoldoutShare is the share of visitors held out of personalization
	// (engine/holdout; 0: off).
	HoldoutShare float64

	// Rotation is the default rotation of GET /v1/recommendations (0:
	// none unless a request asks), RotationMax the longest one a request
	// may ask for (engine/rotation).
	Rotation, RotationMax time.Duration

	// Now is the clock of the rotation layer (nil: time.Now); tests set it.
	Now func() time.Time

	// Tenants configures multi-tenant mode (serve_tenants.go).
	Tenants tenantConfig
}

// envFlags registers flags whose defaults come from KAIROS_* variables and
// records the environment values that do not parse.
type envFlags struct {
	fs   *flag.FlagSet
	errs []error
}

func envName(flagName string) string {
	return "KAIROS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (e *envFlags) str(p *string, name, def, usage string) {
	e.fs.StringVar(p, name, envOr(envName(name), def), usage+" ($"+envName(name)+")")
}

func (e *envFlags) dur(p *time.Duration, name string, def time.Duration, usage string) {
	if v := os.Getenv(envName(name)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s: %w", envName(name), err))
		} else {
			def = d
		}
	}
	e.fs.DurationVar(p, name, def, usage+" ($"+envName(name)+")")
}

func (e *envFlags) float(p *float64, name string, def float64, usage string) {
	if v := os.Getenv(envName(name)); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s: %w", envName(name), err))
		} else {
			def = f
		}
	}
	e.fs.Float64Var(p, name, def, usage+" ($"+envName(name)+")")
}

func (e *envFlags) int(p *int, name string, def int, usage string) {
	if v := os.Getenv(envName(name)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s: %w", envName(name), err))
		} else {
			def = n
		}
	}
	e.fs.IntVar(p, name, def, usage+" ($"+envName(name)+")")
}

func (e *envFlags) bool(p *bool, name string, def bool, usage string) {
	if v := os.Getenv(envName(name)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s: %w", envName(name), err))
		} else {
			def = b
		}
	}
	e.fs.BoolVar(p, name, def, usage+" ($"+envName(name)+")")
}

// parseServeConfig parses flags and environment and validates the result,
// reporting every problem at once.
func parseServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := newFlagSet("serve", stderr)
	e := &envFlags{fs: fs}
	p := model.DefaultParams()
	e.str(&c.Addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	e.str(&c.DataDir, "data-dir", "./kairos-data", "data directory: keys, and the embedded store when no Redis URL is set")
	e.str(&c.AMQPURL, "amqp-url", "", "RabbitMQ URL, or the comma-separated URLs of a cluster's nodes to fail over between (empty: in-process bus)")
	e.str(&c.RedisURL, "redis-url", "", "Redis URL (empty: embedded store in --data-dir); a Redis Cluster in go-redis's form redis://host:port?addr=host:port&addr=…")
	e.dur(&c.DedupWindow, "dedup-window", redisstore.DefaultDedupWindow, "how long an applied event id is remembered: a redelivery or replay of it within the window is a no-op (each id costs ~90 B in Redis for the window)")
	e.int(&c.RedisWaitReplicas, "redis-wait-replicas", 0, "on a Redis Cluster, replicas that must have each commit before the batch is acknowledged (0: none, asynchronous)")
	e.str(&c.Replica, "replica", "0", "engine replica name (stable per replica: its RabbitMQ queue is kairos.engine.<replica>)")
	e.str(&c.Namespace, "namespace", "kairos", "prefix of RabbitMQ exchanges/queues and Redis keys")
	e.int(&p.Factors, "factors", p.Factors, "ALS factors k")
	e.float(&p.Lambda, "lambda", p.Lambda, "ALS regularisation λ")
	e.float(&p.Alpha, "alpha", p.Alpha, "ALS confidence scale α (c = 1 + α·w); unset: each retrain also tries half and double it on its validation split (each with either ν while ν is fitted, and on the same way again while each step wins), the best kept when clearly better")
	e.float(&p.ItemLambdaExponent, "item-lambda-exponent", p.ItemLambdaExponent, "ALS ν, 0..2: item i's λ is λ·(n_i/n̄)^ν, n_i its users (unset: each retrain fits 0 or 1 on its validation split; 0 = plain λ)")
	e.dur(&p.HalfLife, "half-life", p.HalfLife, "half-life of interaction weights, back from the visitor's latest event; unset: each retrain also tries a week and no decay on its validation split, the better kept when clearly better")
	e.int(&p.Iterations, "iterations", p.Iterations, "ALS sweeps of a retrain")
	weights := signals.DefaultWeights().String()
	e.str(&weights, "weights", weights, "signal weights name=value,…")
	e.dur(&c.SessionGap, "session-gap", 30*time.Minute, "inactivity that ends a session")
	e.dur(&c.TrendingHalfLife, "trending-half-life", 24*time.Hour, "half-life of the trending that ranks visitors without factors (a restart with another carries this replica's counts over; every replica and kairos replay --to-store must use the same: counts they keep with another are ignored)")
	e.int(&c.Prefetch, "prefetch", 256, "RabbitMQ prefetch: unacknowledged messages per consumed queue")
	e.int(&c.Partitions, "partitions", defaultPartitions, "RabbitMQ partition queues <namespace>.p.<i>, shared by the replicas by leases in the store (0: one queue per replica, <namespace>.engine.<replica>)")
	e.dur(&c.LeaseTTL, "lease-ttl", membership.DefaultTTL, "how long a replica's lease lasts unrenewed: a dead replica's partitions move to the others after it")
	e.str(&c.QueueType, "queue-type", rabbitmq.QueueQuorum, "type of the RabbitMQ event and dead-letter queues: quorum (replicated) or classic (one node)")
	b := model.DefaultBlend()
	e.float(&b.Kappa, "blend-kappa", b.Kappa, "cold start: events at which the visitor's fold-in and the context weigh the same")
	e.float(&b.Trending, "blend-trending", b.Trending, "cold start: trending's share of the context when the page item is known (0..1)")
	e.int(&c.BlendBelow, "blend-below", 20, "visitors with fewer learning events get the fold-in blended with the context; from this many on, the fold-in alone")
	e.bool(&c.Approx, "approximate", true, "serve large catalogs (>= 20k items) through the approximate index")
	e.bool(&c.ItemNeighbours, "item-neighbours", true, "let retrains weigh item neighbours (item-kNN, 50 per item) into the ranking when validation says they help")
	e.int(&c.IndexLists, "index-lists", 0, "clusters of the approximate index (0: 2√items)")
	e.int(&c.IndexProbe, "index-probe", 0, "index clusters scanned per request (0: 1.8·√clusters)")
	e.int(&c.IndexShortlist, "index-shortlist", 0, "index candidates re-ranked exactly per request (0: max(50, 2·n))")
	var pub, sec, origins string
	e.str(&pub, "publishable-key", "", "publishable key(s), comma-separated (empty with no secret key: generated in --data-dir)")
	e.str(&sec, "secret-key", "", "secret key(s), comma-separated")
	e.str(&origins, "allowed-origins", "", "origins allowed to use the publishable key, comma-separated (https://shop.example, https://*.shop.example, *)")
	var idSecret, idSecretFile, idMode string
	e.str(&idSecret, "identity-secret", "", "identity verification secret(s), comma-separated: the site's back end signs user ids with it (user_hash = hex HMAC-SHA256(secret, user id))")
	e.str(&idSecretFile, "identity-secret-file", "", "file holding the identity secret(s), comma- or newline-separated (mode 0600 or stricter)")
	e.str(&idMode, "identity-verification", "", "off, optional or required: what events with a user sent with the publishable key must prove (default: required with an identity secret, else off)")
	e.float(&c.SecretRate, "secret-rate", 5000, "requests per second per secret key")
	e.float(&c.PublicRate, "publishable-rate", 20, "requests per second per publishable key and client IP")
	e.bool(&c.RequireOrigin, "require-origin", false, "refuse publishable-key requests without an Origin or Referer header")
	var proxies string
	e.str(&proxies, "trusted-proxies", "", "reverse proxies whose X-Forwarded-For names the client IP, comma-separated CIDRs or addresses (10.0.0.0/8, 192.0.2.10)")
	e.bool(&c.MetricsPublic, "metrics-public", false, "serve /metrics without a key")
	e.int(&c.MaxStreams, "max-streams", api.DefaultMaxStreams, "promotion streams open at once on this server (beyond: 503)")
	e.int(&c.MaxStreamsPerVisitor, "max-streams-per-visitor", api.DefaultMaxVisitorStreams, "promotion streams open at once per visitor (beyond: 503)")
	e.int(&c.GCMinHeapMB, "gc-min-heap-mb", defaultGCMinHeapMB, "heap size in MiB below which the garbage collector does not run (a small heap allocating fast collects less often; 0: GOGC alone)")
	e.int(&c.MaxEventRequests, "max-event-requests", api.DefaultMaxEventRequests, "event requests (events, pixel, identify) served at once; beyond it 503 + Retry-After at once (-1: no bound)")
	e.str(&c.ArchiveDir, "archive-dir", "", "event archive directory (default <data-dir>/archive; \"off\" disables archiving)")
	e.str(&c.ArchiveSync, "archive-sync", "interval", "archive fsync policy: always, interval (every 100 ms) or none")
	e.dur(&c.ArchiveRetention, "archive-retention", 0, "how long raw archived events are kept (0 = forever)")
	c.History.register(e)
	e.dur(&c.RetrainEvery, "retrain-every", 0, "retrain from the archive in the background this often, and hot-swap the result when it beats popularity and is not worse than the live model on a held-out tail (0 = never)")
	e.dur(&c.RetrainWindow, "retrain-window", 0, "retrain on the events of this last period only (0 = the whole archive)")
	e.dur(&c.RetrainTuneBudget, "retrain-tune-budget", 0, "let each scheduled retrain search hyperparameters within this wall-clock budget (0 = keep the parameters, fit the popularity prior only)")
	e.int(&c.RetrainMinUsers, "retrain-min-users", 50, "a retrain publishes only when at least this many users are compared on the held-out tail")
	e.int(&c.RetrainGuardUsers, "retrain-guard-users", offline.DefaultGuardUsers, "a retrain ranks at most this many of the held-out tail's users in its comparison, an even spread of them (negative: all)")
	statsRetention := stats.DefaultRetention().String()
	e.str(&statsRetention, "stats-retention", statsRetention, "retention of the event counters per resolution, resolution:retention,… (0 = forever)")
	e.dur(&c.StatsFlush, "stats-flush", time.Second, "write the event counters and the attention heat of this period's batches together, off the consumer (reads on this server see them at once; 0 = with every batch)")
	e.str(&c.PprofAddr, "pprof-addr", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (empty: off)")
	e.str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	e.str(&c.LogFormat, "log-format", "text", "text or json")
	e.bool(&c.Demo, "demo", false, "serve the demo shop at /")
	e.dur(&c.Rotation, "rotation", 0, "default rotation of GET /v1/recommendations: items served to or seen by the visitor this recently are demoted, fading back (0: none unless the request asks with rotation=)")
	e.dur(&c.RotationMax, "rotation-max", 24*time.Hour, "longest rotation a request may ask for; how long the items shown to a visitor are remembered")
	e.float(&c.HoldoutShare, "holdout-share", 0, "share of visitors held out of personalization (0..0.5; sticky per visitor or user): they get the non-personalized baseline on recommendations, similar items and offers, and GET /v1/holdout/results shows the lift (0: off)")
	c.Tenants.register(e)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	errs := e.errs
	c.Params = p
	c.FitItemLambda = !flagSet(fs, "item-lambda-exponent") && os.Getenv(envName("item-lambda-exponent")) == ""
	c.FitHalfLife = !flagSet(fs, "half-life") && os.Getenv(envName("half-life")) == ""
	c.FitAlpha = !flagSet(fs, "alpha") && os.Getenv(envName("alpha")) == ""
	c.Blend = b
	demoDefaults(fs, &c)
	if b.Kappa < 0 || b.Trending < 0 || b.Trending > 1 || c.BlendBelow < 1 {
		errs = append(errs, fmt.Errorf("--blend-kappa %v must be >= 0, --blend-trending %v in [0, 1], --blend-below %d >= 1", b.Kappa, b.Trending, c.BlendBelow))
	}
	if err := p.Validate(); err != nil {
		errs = append(errs, err)
	}
	var err error
	if c.Weights, err = signals.ParseWeights(weights); err != nil {
		errs = append(errs, fmt.Errorf("--weights: %w", err))
	}
	c.PublishableKeys, c.SecretKeys, c.AllowedOrigins = splitList(pub), splitList(sec), splitList(origins)
	if (len(c.PublishableKeys) == 0) != (len(c.SecretKeys) == 0) {
		errs = append(errs, errors.New("set both --publishable-key and --secret-key, or neither (then a pair is generated)"))
	}
	if c.IdentitySecrets, err = identitySecrets(idSecret, idSecretFile); err != nil {
		errs = append(errs, err)
	}
	if c.IdentityVerification, err = api.ParseIdentityVerification(idMode); err != nil {
		errs = append(errs, fmt.Errorf("--identity-verification: %w", err))
	} else if c.IdentityVerification != "" && c.IdentityVerification != api.IdentityOff && len(c.IdentitySecrets) == 0 {
		errs = append(errs, fmt.Errorf("--identity-verification %s needs --identity-secret or --identity-secret-file", c.IdentityVerification))
	}
	if !validNamespace(c.Namespace) {
		errs = append(errs, fmt.Errorf("--namespace %q: want letters, digits, '.', '-' or '_'", c.Namespace))
	}
	if c.Addr == "" {
		errs = append(errs, errors.New("--addr is empty"))
	}
	if c.RedisURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is empty (needed without --redis-url)"))
	}
	if c.RedisURL != "" {
		if err := redisconn.Validate(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("--redis-url: %w", err))
		}
	}
	if c.RedisWaitReplicas < 0 || c.RedisWaitReplicas > 16 {
		errs = append(errs, fmt.Errorf("--redis-wait-replicas %d: want 0..16", c.RedisWaitReplicas))
	}
	if c.RotationMax < time.Second || c.Rotation < 0 || c.Rotation > c.RotationMax {
		errs = append(errs, fmt.Errorf("--rotation %v must be in [0, --rotation-max %v], --rotation-max >= 1s", c.Rotation, c.RotationMax))
	}
	if !(c.HoldoutShare >= 0 && c.HoldoutShare <= 0.5) {
		errs = append(errs, fmt.Errorf("--holdout-share %v: want a share in [0, 0.5]", c.HoldoutShare))
	}
	if c.DedupWindow < time.Minute {
		errs = append(errs, fmt.Errorf("--dedup-window %v is below 1m", c.DedupWindow))
	}
	if c.TrendingHalfLife < time.Minute {
		errs = append(errs, fmt.Errorf("--trending-half-life %v is below 1m", c.TrendingHalfLife))
	}
	if c.SessionGap < time.Second {
		errs = append(errs, fmt.Errorf("--session-gap %v is below 1s", c.SessionGap))
	}
	if c.Prefetch < 1 || c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("--prefetch %d outside [1, 65535]", c.Prefetch))
	}
	if c.Partitions < 0 || c.Partitions > rabbitmq.MaxPartitions {
		errs = append(errs, fmt.Errorf("--partitions %d outside [0, %d]", c.Partitions, rabbitmq.MaxPartitions))
	}
	if c.LeaseTTL < 200*time.Millisecond {
		errs = append(errs, fmt.Errorf("--lease-ttl %v is below 200ms", c.LeaseTTL))
	}
	if c.QueueType != rabbitmq.QueueQuorum && c.QueueType != rabbitmq.QueueClassic {
		errs = append(errs, fmt.Errorf("--queue-type %q: want quorum or classic", c.QueueType))
	}
	if c.MaxEventRequests == 0 || c.MaxEventRequests < -1 {
		errs = append(errs, fmt.Errorf("--max-event-requests %d: want >= 1, or -1 for no bound", c.MaxEventRequests))
	}
	if !(c.SecretRate > 0) || !(c.PublicRate > 0) {
		errs = append(errs, errors.New("--secret-rate and --publishable-rate must be > 0"))
	}
	c.TrustedProxies = splitList(proxies)
	for _, p := range c.TrustedProxies {
		if _, err := api.ParseTrustedProxy(p); err != nil {
			errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
		}
	}
	if c.GCMinHeapMB < 0 {
		errs = append(errs, fmt.Errorf("--gc-min-heap-mb %d must be >= 0", c.GCMinHeapMB))
	}
	if c.MaxStreams < 1 || c.MaxStreamsPerVisitor < 1 {
		errs = append(errs, fmt.Errorf("--max-streams %d and --max-streams-per-visitor %d must be >= 1", c.MaxStreams, c.MaxStreamsPerVisitor))
	} else if c.MaxStreamsPerVisitor > c.MaxStreams {
		errs = append(errs, fmt.Errorf("--max-streams-per-visitor %d is larger than --max-streams %d", c.MaxStreamsPerVisitor, c.MaxStreams))
	}
	if c.ArchiveDir == "" {
		c.ArchiveDir = filepath.Join(c.DataDir, "archive")
	}
	if _, err := archive.ParseSyncPolicy(c.ArchiveSync); err != nil {
		errs = append(errs, fmt.Errorf("--archive-sync: %w", err))
	}
	if c.RetrainEvery < 0 || c.RetrainWindow < 0 || c.RetrainTuneBudget < 0 {
		errs = append(errs, errors.New("--retrain-every, --retrain-window and --retrain-tune-budget must be >= 0"))
	}
	if err := guardUsersFlag("retrain-guard-users", c.RetrainGuardUsers); err != nil {
		errs = append(errs, err)
	}
	if c.RetrainMinUsers < 1 {
		errs = append(errs, fmt.Errorf("--retrain-min-users %d must be >= 1", c.RetrainMinUsers))
	}
	if c.RetrainEvery > 0 && c.ArchiveDir == "off" {
		errs = append(errs, errors.New("--retrain-every needs the archive (--archive-dir is off)"))
	}
	if c.StatsFlush < 0 {
		errs = append(errs, fmt.Errorf("--stats-flush %v: want >= 0", c.StatsFlush))
	}
	if c.StatsRetention, err = stats.ParseRetention(statsRetention); err != nil {
		errs = append(errs, fmt.Errorf("--stats-retention: %w", err))
	}
	errs = append(errs, c.History.validate(c.DataDir, c.AMQPURL)...)
	if c.ArchiveRetention < 0 {
		errs = append(errs, fmt.Errorf("--archive-retention %v is negative", c.ArchiveRetention))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	errs = append(errs, c.Tenants.validate(&c)...)
	if len(errs) > 0 {
		return c, fmt.Errorf("invalid configuration:\n  %w", joinLines(errs))
	}
	return c, nil
}

// identitySecrets returns the identity secrets of --identity-secret or,
// else, of the file --identity-secret-file (comma- or newline-separated),
// which others may not read or write (like keys.json).
func identitySecrets(list, file string) ([]string, error) {
	if file == "" {
		return splitList(list), nil
	}
	if list != "" {
		return nil, errors.New("set --identity-secret or --identity-secret-file, not both")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--identity-secret-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--identity-secret-file: %w", err)
	}
	if err := fileperm.CheckPrivate(file, fi.Mode(), "the identity secret"); err != nil {
		return nil, fmt.Errorf("--identity-secret-file: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("--identity-secret-file: %w", err)
	}
	secrets := splitList(strings.NewReplacer("\r", ",", "\n", ",").Replace(string(b)))
	if len(secrets) == 0 {
		return nil, fmt.Errorf("--identity-secret-file: %s holds no secret", file)
	}
	return secrets, nil
}

func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = strings.ReplaceAll(e.Error(), "\n", "\n  ")
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(c serveConfig, w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func validNamespace(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

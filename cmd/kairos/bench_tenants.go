package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/model"
)

func init() {
	register(command{
		name:    "bench tenants",
		summary: "multi-tenant mode: many small tenants (embedded): resident memory, first-request latency of a sleeping tenant, p99 of active ones, a noisy neighbour's effect (JSON result)",
		run:     runBenchTenants,
	})
}

// tenantsBenchResult is the JSON line of `kairos bench tenants`.
type tenantsBenchResult struct {
	Bench     string  `json:"bench"`
	Tenants   int     `json:"tenants"`
	Items     int     `json:"items_per_tenant"`
	Visitors  int     `json:"visitors_per_tenant"`
	Factors   int     `json:"factors"`
	MaxLoaded int     `json:"max_loaded"`
	SetupS    float64 `json:"setup_s"`
	// Resident memory (this process: server and load generator) after
	// setup with no tenant loaded, and at the end with MaxLoaded loaded.
	RSSIdleMB   float64 `json:"rss_idle_mb"`
	RSSLoadedMB float64 `json:"rss_loaded_mb"`
	HeapMB      float64 `json:"heap_loaded_mb"`
	// First request of a sleeping tenant (its server loaded from its
	// store, evicting another).
	ColdN     int     `json:"cold_requests"`
	ColdP50ms float64 `json:"cold_p50_ms"`
	ColdP99ms float64 `json:"cold_p99_ms"`
	ColdMaxms float64 `json:"cold_max_ms"`
	// Recommendations over the active (loaded) tenants, open loop.
	Active      int     `json:"active_tenants"`
	Rate        float64 `json:"active_rps"`
	ActiveN     int     `json:"active_requests"`
	ActiveErrs  int     `json:"active_errors"`
	ActiveP50ms float64 `json:"active_p50_ms"`
	ActiveP99ms float64 `json:"active_p99_ms"`
	// One active tenant's p99 (recommendations at VictimRate req/s)
	// without, then with a noisy tenant (quotas NoisyQuota req/s and
	// NoisyEventsQuota events/s) offered NoisyRate req/s: of
	// recommendations (VictimNoisyP99ms), then of event batches of
	// NoisyBatch events (VictimEventsNoisyP99ms); the flood alternates
	// on and off in windows, and the victim's requests are pooled by
	// window (VictimP99ms: one value per kind of flood, its off windows).
	// The ratios are with / without: the acceptance is <= 2.
	VictimRate             float64   `json:"victim_rps"`
	VictimP99ms            []float64 `json:"victim_p99_ms"`
	VictimNoisyP99ms       []float64 `json:"victim_p99_with_noisy_ms,omitempty"`
	VictimEventsNoisyP99ms []float64 `json:"victim_p99_with_noisy_events_ms,omitempty"`
	NoisyRatio             float64   `json:"noisy_p99_ratio,omitempty"`
	NoisyEventsRatio       float64   `json:"noisy_events_p99_ratio,omitempty"`
	NoisyRate              float64   `json:"noisy_offered_rps"`
	NoisyQuota             float64   `json:"noisy_quota_rps"`
	NoisyEventsQuota       float64   `json:"noisy_quota_events_per_s"`
	NoisyBatch             int       `json:"noisy_batch_events"`
	NoisyRefused           int       `json:"noisy_refused_429"`
	NoisyEventsOK          int       `json:"noisy_event_requests_accepted"`
	NoisyEventsRefused     int       `json:"noisy_event_requests_refused_429"`
	// CPU of this process (server and load generators, % of one core)
	// in the windows without the flood, with the noisy recommendations,
	// with the noisy events.
	CPUAlonePct       float64 `json:"cpu_alone_pct"`
	CPUNoisyPct       float64 `json:"cpu_with_noisy_pct,omitempty"`
	CPUNoisyEventsPct float64 `json:"cpu_with_noisy_events_pct,omitempty"`
	// IdleCPUPct is the process's CPU use (% of one core) with
	// MaxLoaded tenants loaded and no request.
	IdleCPUPct float64 `json:"idle_cpu_pct"`
	LoadAvg    string  `json:"loadavg"`
}

func runBenchTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench tenants", stderr)
	n := fs.Int("tenants", 1000, "tenants (with --noisy-only: default 4)")
	items := fs.Int("items", 1000, "items per tenant")
	visitors := fs.Int("visitors", 1000, "visitors per tenant")
	k := fs.Int("factors", model.DefaultParams().Factors, "factors k")
	maxLoaded := fs.Int("max-loaded", 64, "--tenant-max-loaded of the server")
	active := fs.Int("active", 16, "active tenants for the p99 (<= max-loaded)")
	rate := fs.Float64("rate", 200, "recommendation requests per second over the active tenants")
	dur := fs.Duration("duration", 15*time.Second, "duration of each measured phase")
	cold := fs.Int("cold", 100, "first requests of sleeping tenants to time")
	noisyRate := fs.Float64("noisy-rate", 500, "requests per second offered by the noisy tenant (default 5× its quota)")
	noisyQuota := fs.Float64("noisy-quota", 100, "the noisy tenant's requests_per_second quota")
	noisyEventsQuota := fs.Float64("noisy-events-quota", 1000, "the noisy tenant's events_per_second quota")
	noisyBatch := fs.Int("noisy-batch", 100, "events per request of the noisy tenant's event flood")
	noisyKind := fs.String("noisy", "both", "the noisy tenant's flood: recs, events or both")
	rounds := fs.Int("rounds", 8, "noisy-neighbour windows on (and as many off) per kind of flood")
	noisyWindow := fs.Duration("noisy-window", 2*time.Second, "length of each window with and without the noisy flood")
	noisyOnly := fs.Bool("noisy-only", false, "measure the noisy neighbour only (skip the cold, active and idle phases)")
	dataDir := fs.String("data-dir", "", "data directory (default: a temporary one, removed)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the cold-request phase (with --noisy-only: of the noisy-neighbour phases) to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end (max-loaded tenants loaded) to this file")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *noisyOnly && !flagSet(fs, "tenants") {
		*n = 4 // the victim, the noisy tenant and two sleeping ones
	}
	if *active > *maxLoaded || *active < 2 || (!*noisyOnly && *n < *active+*cold) || *n < 2 {
		return fmt.Errorf("want 2 <= --active <= --max-loaded and --tenants >= --active + --cold (with --noisy-only: --tenants >= 2)")
	}
	if *noisyKind != "recs" && *noisyKind != "events" && *noisyKind != "both" {
		return fmt.Errorf("--noisy %q: want recs, events or both", *noisyKind)
	}
	if *noisyBatch < 1 || *noisyBatch > 500 || *rounds < 1 {
		return fmt.Errorf("want 1 <= --noisy-batch <= 500 and --rounds >= 1")
	}
	dir := *dataDir
	if dir == "" {
		d, err := mkTemp()
		if err != nil {
			return err
		}
		defer removeAll(d)
		dir = d
	}
	res := tenantsBenchResult{Bench: "tenants", Tenants: *n, Items: *items, Visitors: *visitors, Factors: *k, MaxLoaded: *maxLoaded,
		Active: *active, Rate: *rate, NoisyRate: *noisyRate, NoisyQuota: *noisyQuota, NoisyEventsQuota: *noisyEventsQuota, NoisyBatch: *noisyBatch}
	start := time.Now()
	cfg, err := parseServeConfig([]string{"--admin-key", "adm_bench_0123456789abcdef", "--data-dir", dir, "--log-level", envOr("KAIROS_BENCH_LOG", "error"),
		"--amqp-url", "", "--redis-url", "", "--tenant-max-loaded", fmt.Sprint(*maxLoaded), "--factors", fmt.Sprint(*k),
		"--secret-rate", "1000000", "--archive-dir", "off"}, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	srv, err := newTenantServer(sctx, cfg, stderr)
	if err != nil {
		stop()
		ln.Close()
		return err
	}
	srv.listener = ln
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	defer func() {
		stop()
		<-done
		srv.Close()
	}()
	b := &tenantBench{base: "http://" + ln.Addr().String(), admin: cfg.Tenants.AdminKey,
		c: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}}

	// Create and seed every tenant (directly in its store: it is not
	// loaded yet).
	keys := make([]string, *n)
	for i := range *n {
		id := fmt.Sprintf("t%04d", i)
		quotas := map[string]any{}
		if i == 1 { // tenant 1 is the noisy one
			quotas = map[string]any{"requests_per_second": *noisyQuota, "events_per_second": *noisyEventsQuota}
		}
		sk, err := b.create(id, quotas)
		if err != nil {
			return err
		}
		keys[i] = sk
		if err := seedTenant(ctx, filepath.Join(dir, "tenants", id, "state"), *items, *visitors, *k, uint64(i)); err != nil {
			return fmt.Errorf("seed %s: %w", id, err)
		}
		if (i+1)%100 == 0 {
			fmt.Fprintf(stderr, "bench tenants: %d tenants created and seeded (%.0f s)\n", i+1, time.Since(start).Seconds())
		}
	}
	res.SetupS = time.Since(start).Seconds()
	runtime.GC()
	res.RSSIdleMB = rssMB(os.Getpid())

	rng := rand.New(rand.NewPCG(1, 2))
	call := func(key string) func() func() error {
		return func() func() error {
			v := rng.IntN(*visitors)
			return func() error { return b.recsVisitor(key, v) }
		}
	}
	if !*noisyOnly {
		// The first request of sleeping tenants, one at a time (the pool is
		// full from the second max-loaded on: each load evicts one).
		var coldLat []time.Duration
		stopProfile := func() {}
		if *cpuProfile != "" {
			if stopProfile, err = startCPUProfile(*cpuProfile); err != nil {
				return err
			}
		}
		for i := *active; i < *active+*cold; i++ {
			t0 := time.Now()
			if err := b.recs(keys[i], *visitors); err != nil {
				return fmt.Errorf("cold request of t%04d: %w", i, err)
			}
			coldLat = append(coldLat, time.Since(t0))
		}
		stopProfile()
		slices.Sort(coldLat)
		res.ColdN, res.ColdP50ms, res.ColdP99ms, res.ColdMaxms = len(coldLat), quantileMs(coldLat, 0.5), quantileMs(coldLat, 0.99), quantileMs(coldLat, 1)
		fmt.Fprintf(stderr, "bench tenants: cold first requests p50 %.1f ms p99 %.1f ms\n", res.ColdP50ms, res.ColdP99ms)

		// Active tenants: load them, then an open loop over them.
		for i := range *active {
			if err := b.recs(keys[i], *visitors); err != nil {
				return err
			}
		}
		run := runOpenLoop(ctx, func(time.Time) func() error { return call(keys[rng.IntN(*active)])() }, *rate, *dur, 512)
		lat, errs := slices.Sorted(slices.Values(run.Lat)), run.Errs
		res.ActiveN, res.ActiveErrs, res.ActiveP50ms, res.ActiveP99ms = len(lat), errs, quantileMs(lat, 0.5), quantileMs(lat, 0.99)
		fmt.Fprintf(stderr, "bench tenants: active p50 %.2f ms p99 %.2f ms\n", res.ActiveP50ms, res.ActiveP99ms)

		// Idle cost of the loaded tenants' background loops.
		cpu0, t0 := cpuSeconds(0), time.Now()
		time.Sleep(5 * time.Second)
		res.IdleCPUPct = 100 * (cpuSeconds(0) - cpu0) / time.Since(t0).Seconds()
	}

	// A noisy neighbour: tenant 0's recommendations at victim-rate req/s
	// all along, while tenant 1 is offered noisy-rate req/s, over its
	// quotas, in windows of --noisy-window on and off (of recommendations,
	// then of event batches). The victim's requests are pooled by whether
	// the flood was on when they were due (those due within 300 ms of a
	// switch are left out): both sides see the same machine, whatever
	// else runs on it.
	res.VictimRate = min(*rate, 100)
	for _, k := range keys[:2] { // loaded before the first window
		if err := b.recs(k, *visitors); err != nil {
			return err
		}
	}
	var seq int
	events := func() func() error {
		seq++
		body := b.noisyBatch(seq, *noisyBatch, *items)
		return func() error { return b.postEvents(keys[1], body) }
	}
	recsFlood := func() func() error { return func() error { return b.recsVisitor(keys[1], 1) } }
	if *noisyOnly && *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	measure := func(name string, flood func() func() error) noisyResult {
		nr := runNoisy(ctx, call(keys[0]), res.VictimRate, flood, *noisyRate, *noisyWindow, *rounds)
		fmt.Fprintf(stderr, "bench tenants: noisy %s: victim p99 %.2f ms alone, %.2f ms with the flood (%d and %d requests); CPU %.1f%% and %.1f%% of a core; flood %d passed, %d refused\n",
			name, nr.aloneP99, nr.withP99, nr.aloneN, nr.withN, nr.cpuOff, nr.cpuOn, nr.ok, nr.refused)
		return nr
	}
	if *noisyKind != "events" {
		nr := measure("recommendations", recsFlood)
		res.VictimP99ms, res.VictimNoisyP99ms = append(res.VictimP99ms, nr.aloneP99), []float64{nr.withP99}
		res.NoisyRatio, res.NoisyRefused = nr.withP99/nr.aloneP99, nr.refused
		res.CPUAlonePct, res.CPUNoisyPct = nr.cpuOff, nr.cpuOn
	}
	if *noisyKind != "recs" {
		nr := measure("events", events)
		res.VictimP99ms, res.VictimEventsNoisyP99ms = append(res.VictimP99ms, nr.aloneP99), []float64{nr.withP99}
		res.NoisyEventsRatio, res.NoisyEventsOK, res.NoisyEventsRefused = nr.withP99/nr.aloneP99, nr.ok, nr.refused
		res.CPUNoisyEventsPct = nr.cpuOn
		if res.CPUAlonePct == 0 {
			res.CPUAlonePct = nr.cpuOff
		}
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapMB = float64(ms.HeapInuse) / (1 << 20)
	res.RSSLoadedMB = rssMB(os.Getpid())
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		err = pprof.WriteHeapProfile(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = string(bytes.TrimSpace(b))
	}
	return writeJSON(stdout, res)
}

// tenantBench is the bench's client of the tenant server.
type tenantBench struct {
	base, admin string
	c           *http.Client
}

func (b *tenantBench) create(id string, quotas map[string]any) (string, error) {
	body, _ := json.Marshal(map[string]any{"id": id, "quotas": quotas})
	req, _ := http.NewRequest(http.MethodPost, b.base+"/v1/tenants", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+b.admin)
	resp, err := b.c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Keys struct {
			Secret string `json:"secret_key"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create tenant %s: %d %v", id, resp.StatusCode, err)
	}
	return v.Keys.Secret, nil
}

func (b *tenantBench) recs(key string, visitors int) error { return b.recsVisitor(key, visitors/2) }

func (b *tenantBench) recsVisitor(key string, v int) error {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/recommendations?visitor=v%d&n=10", b.base, v), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	return getOK(b.c, req)
}

// noisyBatch is the body of the noisy tenant's event request seq: n views
// of catalog items by n visitors of its own.
func (b *tenantBench) noisyBatch(seq, n, items int) []byte {
	buf := make([]byte, 0, n*90)
	buf = append(buf, '[')
	for i := range n {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":"noisy-`...)
		buf = strconv.AppendInt(buf, int64(seq), 10)
		buf = append(buf, '-')
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `","type":"view","visitor":"nv`...)
		buf = strconv.AppendInt(buf, int64((seq*n+i)%5000), 10)
		buf = append(buf, `","item":"`...)
		buf = append(buf, fmt.Sprintf("sku-%06d", (seq*31+i*7)%items)...)
		buf = append(buf, `"}`...)
	}
	return append(buf, ']')
}

// postEvents posts an events body with key; a refusal (429) is an error.
func (b *tenantBench) postEvents(key string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPost, b.base+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return getOK(b.c, req)
}

// noisyResult is one noisy-neighbour measurement (runNoisy).
type noisyResult struct {
	aloneP99, withP99 float64 // ms
	aloneN, withN     int
	cpuOff, cpuOn     float64 // % of one core
	ok, refused       int     // the flood's requests
}

// runNoisy runs the victim's calls at rate for 2×rounds windows of
// window, the flood's at floodRate in every other one, and pools the
// victim's latencies (from their due time) by window.
func runNoisy(ctx context.Context, victim func() func() error, rate float64, flood func() func() error, floodRate float64, window time.Duration, rounds int) noisyResult {
	const guard = 300 * time.Millisecond
	var (
		mu                       sync.Mutex
		alone, with              []time.Duration
		on                       atomic.Bool
		switched                 atomic.Int64 // UnixNano of the last switch
		wg                       sync.WaitGroup
		nr                       noisyResult
		cpuOn, cpuOff, tOn, tOff float64
	)
	switched.Store(time.Now().UnixNano())
	total := time.Duration(2*rounds) * window
	wg.Go(func() {
		runOpenLoop(ctx, func(due time.Time) func() error {
			c := victim()
			tag := 0 // 0: left out, 1: alone, 2: with the flood
			if due.Sub(time.Unix(0, switched.Load())) > guard {
				tag = 1
				if on.Load() {
					tag = 2
				}
			}
			return func() error {
				err := c()
				if err == nil && tag > 0 {
					l := time.Since(due)
					mu.Lock()
					if tag == 1 {
						alone = append(alone, l)
					} else {
						with = append(with, l)
					}
					mu.Unlock()
				}
				return err
			}
		}, rate, total, 512)
	})
	for r := range 2 * rounds {
		noisy := r%2 == 1
		on.Store(noisy)
		switched.Store(time.Now().UnixNano())
		cpu0, t0 := cpuSeconds(0), time.Now()
		if noisy {
			run := runOpenLoop(ctx, func(time.Time) func() error { return flood() }, floodRate, window, 512)
			nr.ok += len(run.Lat)
			nr.refused += run.Errs
		} else {
			time.Sleep(window)
		}
		cpu, d := cpuSeconds(0)-cpu0, time.Since(t0).Seconds()
		if noisy {
			cpuOn, tOn = cpuOn+cpu, tOn+d
		} else {
			cpuOff, tOff = cpuOff+cpu, tOff+d
		}
	}
	wg.Wait()
	slices.Sort(alone)
	slices.Sort(with)
	nr.aloneP99, nr.withP99 = quantileMs(alone, 0.99), quantileMs(with, 0.99)
	nr.aloneN, nr.withN = len(alone), len(with)
	nr.cpuOff, nr.cpuOn = 100*cpuOff/tOff, 100*cpuOn/tOn
	return nr
}

// seedTenant fills the embedded store dir with items sku-000000… (factors
// around 20 topics) and visitors v0… with factors and a short history.
func seedTenant(ctx context.Context, dir string, items, visitors, k int, seed uint64) error {
	store, err := embedded.Open(dir, embedded.Config{Sync: embedded.SyncNever})
	if err != nil {
		return err
	}
	defer store.Close()
	rng := rand.New(rand.NewPCG(seed, 17))
	const topics = 20
	centres := make([][]float32, topics)
	for t := range centres {
		centres[t] = gaussian(rng, k, 0.3)
	}
	ids := make([]string, items)
	for i := range ids {
		ids[i] = fmt.Sprintf("sku-%06d", i)
	}
	rows, err := store.ItemRows(ctx, ids)
	if err != nil {
		return err
	}
	topic := make([]int, items)
	states := make([]engine.ItemState, items)
	for j := range ids {
		topic[j] = rng.IntN(topics)
		f := gaussian(rng, k, 0.1)
		for d := range f {
			f[d] += centres[topic[j]][d]
		}
		states[j] = engine.ItemState{Row: rows[j], Factors: f, Curv: make([]float32, k), Count: 10}
	}
	if err := store.SaveItemStates(ctx, states); err != nil {
		return err
	}
	now := time.Now().UTC()
	var c engine.Commit
	for v := range visitors {
		x := make([]float32, k)
		var hist []engine.HistoryEvent
		for j := range 3 {
			it := rng.IntN(items)
			for d, c := range centres[topic[it]] {
				x[d] += c
			}
			hist = append(hist, engine.HistoryEvent{ID: fmt.Sprintf("seed-%d-%d", v, j), Type: "view", Item: ids[it], Weight: 1, Time: now})
		}
		c.Visitors = append(c.Visitors, engine.VisitorUpdate{ID: fmt.Sprintf("v%d", v), Append: hist, Factors: x,
			Session: engine.Session{ID: "seed", Start: now, Last: now, Events: 3}})
	}
	return store.Commit(ctx, c)
}

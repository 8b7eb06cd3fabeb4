package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func init() {
	register(command{
		name:    "bench overload",
		summary: "offer POST /v1/events far more than kairos serve can take (open loop): accepted events/s, p99, RSS, time to first 503",
		run:     runBenchOverload,
	})
}

// overloadResult is the JSON line of `kairos bench overload`, one per
// store.
type overloadResult struct {
	Bench            string `json:"bench"`
	Store            string `json:"store"`
	Bus              string `json:"bus"`
	MaxEventRequests int    `json:"max_event_requests"`
	Batch            int    `json:"events_per_request"`

	// The sustainable rate: closed loop, --concurrency clients, no 503;
	// capacity is the smaller of what the API accepted and what the
	// engine applied meanwhile (with RabbitMQ the API can accept faster
	// than the engine applies, filling the queue), drained before the
	// overload.
	CapacityEPS      float64 `json:"capacity_events_per_s"`
	CapacityAccepted float64 `json:"capacity_accepted_events_per_s"`
	CapacityApplied  float64 `json:"capacity_applied_events_per_s"`
	CapacityP99ms    float64 `json:"capacity_p99_ms"`

	// The overload: open loop at --factor × capacity.
	Factor        float64 `json:"factor"`
	OfferedEPS    float64 `json:"offered_events_per_s"`
	SentEPS       float64 `json:"sent_events_per_s"` // what the generator managed to send
	ClientNice    int     `json:"client_nice,omitempty"`
	AcceptedEPS   float64 `json:"accepted_events_per_s"`
	AcceptedRatio float64 `json:"accepted_vs_capacity"`
	AppliedEPS    float64 `json:"applied_events_per_s"`
	Requests      int     `json:"requests"`
	OK            int     `json:"ok"`
	Shed          int     `json:"shed_503"`
	Unknown       int     `json:"unknown_503"`
	Errors        int     `json:"errors"`
	Dropped       int     `json:"client_dropped"`
	RetryAfterAll bool    `json:"retry_after_on_every_503"`
	FirstShedMs   float64 `json:"time_to_first_503_ms"`
	P50ms         float64 `json:"answered_p50_ms"`
	P99ms         float64 `json:"answered_p99_ms"`
	Maxms         float64 `json:"answered_max_ms"`
	OKP99ms       float64 `json:"ok_p99_ms"`
	ShedP99ms     float64 `json:"shed_p99_ms"`
	MaxInFlight   int     `json:"client_max_in_flight"`

	// CPU used, in cores, by the server and by this load generator (on
	// the same machine, it competes with the server and the broker).
	ServerCPUCapacity float64 `json:"server_cpu_cores_capacity"`
	ServerCPUOverload float64 `json:"server_cpu_cores_overload"`
	ClientCPUOverload float64 `json:"client_cpu_cores_overload"`

	RSSIdleMB     float64 `json:"rss_idle_mb"`
	RSSCapacityMB float64 `json:"rss_capacity_peak_mb"`
	RSSOverloadMB float64 `json:"rss_overload_peak_mb"`

	// After the run: every accepted event is applied (applied >= accepted;
	// more when 503s of unknown outcome were applied).
	AcceptedEvents int64   `json:"accepted_events"`
	AppliedEvents  int64   `json:"applied_events"`
	DrainS         float64 `json:"drain_s"`
}

// overloadOpts are the flags of `kairos bench overload`.
type overloadOpts struct {
	stores          []string
	amqpURL         string
	redisURL        string
	batch           int
	factor          float64
	rate            float64
	concurrency     int
	warmup          time.Duration
	capacityDur     time.Duration
	overloadDur     time.Duration
	maxEventReqs    int
	maxInFlight     int
	visitors, items int
	serverLog       string
	serverArgs      []string
	clientNice      int
}

func runBenchOverload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench overload", stderr)
	var o overloadOpts
	stores := fs.String("stores", "embedded,redis", "stores to run on, comma-separated: embedded (in-process bus) and/or redis (RabbitMQ and Redis)")
	fs.StringVar(&o.amqpURL, "amqp-url", envOr("KAIROS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "RabbitMQ URL (store redis)")
	fs.StringVar(&o.redisURL, "redis-url", envOr("KAIROS_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (store redis)")
	fs.IntVar(&o.batch, "batch", 20, "events per request (the tracker sends up to 20)")
	fs.Float64Var(&o.factor, "factor", 5, "offered rate as a multiple of the measured capacity")
	fs.Float64Var(&o.rate, "rate", 0, "offered events/s (overrides --factor)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "closed-loop clients measuring the capacity")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "closed-loop warm-up, not recorded")
	fs.DurationVar(&o.capacityDur, "capacity-duration", 10*time.Second, "capacity measurement")
	fs.DurationVar(&o.overloadDur, "duration", 15*time.Second, "overload measurement")
	fs.IntVar(&o.maxEventReqs, "max-event-requests", 0, "the server's --max-event-requests (0: its default; -1: no bound, to see the collapse)")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 10000, "client requests in flight at most (open loop; a send due beyond it is counted as dropped)")
	fs.IntVar(&o.visitors, "visitors", 20_000, "distinct visitors")
	fs.IntVar(&o.items, "items", 10_000, "distinct items (Zipf-distributed)")
	fs.StringVar(&o.serverLog, "server-log", "", "append the server's log to this file (default: discarded)")
	fs.IntVar(&o.clientNice, "client-nice", 0, "run the load generator at this niceness once the server is up (Linux; e.g. 10: it yields the CPU to the server and the broker, as clients on other machines would)")
	serverArgs := fs.String("server-args", "", "more kairos serve flags, space-separated (e.g. \"--pprof-addr 127.0.0.1:6060\")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.stores = splitList(*stores)
	o.serverArgs = strings.Fields(*serverArgs)
	var errs []error
	for _, s := range o.stores {
		if s != "embedded" && s != "redis" {
			errs = append(errs, fmt.Errorf("--stores: %q is not embedded or redis", s))
		}
	}
	if len(o.stores) == 0 {
		errs = append(errs, errors.New("--stores is empty"))
	}
	if o.batch < 1 || o.batch > 500 {
		errs = append(errs, fmt.Errorf("--batch %d: want 1..500", o.batch))
	}
	if o.factor <= 0 || o.rate < 0 || o.concurrency < 1 || o.maxInFlight < 1 || o.visitors < 1 || o.items < 2 {
		errs = append(errs, errors.New("--factor, --concurrency, --max-in-flight, --visitors must be positive, --items >= 2, --rate >= 0"))
	}
	if o.capacityDur <= 0 || o.overloadDur <= 0 || o.warmup < 0 {
		errs = append(errs, errors.New("--capacity-duration and --duration must be positive, --warmup >= 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, store := range o.stores {
		res, err := overloadRun(ctx, o, store, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

// benchServer is a `kairos serve` child process.
type benchServer struct {
	store   string
	cmd     *exec.Cmd
	base    string
	pk, sk  string
	dir, ns string
	done    chan error
}

// startBenchServer starts this binary's `kairos serve` on a free port
// with a fresh data directory (and namespace, on RabbitMQ and Redis) and
// waits until /readyz answers 200.
func startBenchServer(ctx context.Context, o overloadOpts, store string, stderr io.Writer) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := mkTemp()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		removeAll(dir)
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &benchServer{store: store, base: "http://" + addr, pk: "pk_bench_" + strconv.FormatUint(rand.Uint64(), 16) + "0000",
		sk: "sk_bench_" + strconv.FormatUint(rand.Uint64(), 16) + "0000", dir: dir,
		ns: fmt.Sprintf("kbench%d", rand.Uint32()), done: make(chan error, 1)}
	args := []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--namespace", s.ns,
		"--publishable-key", s.pk, "--secret-key", s.sk, "--secret-rate", "1e9", "--publishable-rate", "1e9",
		"--log-level", "warn", "--amqp-url", "", "--redis-url", ""}
	if store == "redis" {
		args = append(args, "--amqp-url", o.amqpURL, "--redis-url", o.redisURL)
	}
	if o.maxEventReqs != 0 {
		args = append(args, "--max-event-requests", strconv.Itoa(o.maxEventReqs))
	}
	args = append(args, o.serverArgs...)
	s.cmd = exec.Command(exe, args...)
	s.cmd.Stdout = io.Discard
	s.cmd.Stderr = io.Discard
	if o.serverLog != "" {
		f, err := os.OpenFile(o.serverLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			removeAll(dir)
			return nil, err
		}
		defer f.Close() // the child has its own descriptor
		s.cmd.Stderr = f
	}
	if err := s.cmd.Start(); err != nil {
		removeAll(dir)
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	fmt.Fprintf(stderr, "%s: kairos serve (pid %d) on %s\n", store, s.cmd.Process.Pid, addr)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			s.cleanup(o)
			return nil, fmt.Errorf("kairos serve exited: %v (run with --server-log to see why)", err)
		case <-ctx.Done():
			s.stop(o)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(o)
			return nil, errors.New("kairos serve not ready after 60 s")
		}
	}
}

// stop ends the server gracefully (SIGTERM, then SIGKILL after 30 s) and
// removes its data and namespace.
func (s *benchServer) stop(o overloadOpts) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cleanup(o)
}

func (s *benchServer) cleanup(o overloadOpts) {
	removeAll(s.dir)
	if s.store == "redis" {
		deleteNamespaceQueues(o.amqpURL, s.ns)
		deleteRedisPrefix(o.redisURL, s.ns)
	}
}

// rssMB is the resident set size of process pid in MB (0 where /proc is
// not readable).
func rssMB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSeconds is the user and system CPU time of process pid (0 where /proc
// is not readable); pid 0 is this process.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command (in parentheses): utime and stime are
	// the 12th and 13th, in clock ticks (100 per second on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// reniceSelf sets the niceness of every thread of this process (Linux
// schedules threads: a process-wide setpriority reaches one thread only);
// threads started later inherit it from the thread that starts them.
func reniceSelf(nice int) error {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("setpriority of thread %d: %w", tid, err)
		}
	}
	return nil
}

// rssPeak samples the RSS of pid every 50 ms until stop is called, which
// returns the largest sample.
func rssPeak(pid int) (stop func() float64) {
	var peak atomic.Uint64
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v := uint64(rssMB(pid) * 1024); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(quit)
		<-done
		return float64(peak.Load()) / 1024
	}
}

// metricSum reads the sum of the series of a metric from /metrics.
func (s *benchServer) metricSum(name string) (float64, error) {
	req, _ := http.NewRequest(http.MethodGet, s.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.sk)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

// drain waits (at most 5 minutes) until the engine has applied every
// event the API accepted, and returns both counts and the wait.
func (s *benchServer) drain() (accepted, applied int64, took time.Duration, err error) {
	want, err := s.metricSum("kairos_events_accepted_total")
	if err != nil {
		return 0, 0, 0, err
	}
	t0 := time.Now()
	for {
		got, err := s.metricSum("kairos_engine_events_applied_total")
		if err != nil {
			return 0, 0, 0, err
		}
		if got >= want || time.Since(t0) > 5*time.Minute {
			return int64(want), int64(got), time.Since(t0), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventBodies builds request bodies of batch events with unique ids.
type eventBodies struct {
	mu     sync.Mutex
	rng    *rand.Rand
	zipf   *rand.Zipf
	run    string
	n      uint64
	batch  int
	visits int
}

func newEventBodies(o overloadOpts) *eventBodies {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 7))
	return &eventBodies{rng: rng, zipf: rand.NewZipf(rng, 1.1, 2, uint64(o.items-1)),
		run: strconv.FormatUint(rand.Uint64()%1e9, 36), batch: o.batch, visits: o.visitors}
}

var benchTypes = []string{"view", "view", "view", "view", "view", "view", "view", "click", "click", "add_to_cart"}

// next returns the body of one request: batch events of one visitor.
func (g *eventBodies) next() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := make([]byte, 0, 80*g.batch)
	v := g.rng.IntN(g.visits)
	b = append(b, '[')
	for j := range g.batch {
		if j > 0 {
			b = append(b, ',')
		}
		g.n++
		b = append(b, `{"id":"ov-`...)
		b = append(b, g.run...)
		b = append(b, '-')
		b = strconv.AppendUint(b, g.n, 36)
		b = append(b, `","type":"`...)
		b = append(b, benchTypes[g.rng.IntN(len(benchTypes))]...)
		b = append(b, `","visitor":"v`...)
		b = strconv.AppendInt(b, int64(v), 10)
		b = append(b, `","item":"i`...)
		b = strconv.AppendUint(b, g.zipf.Uint64(), 10)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

// answer is the outcome of one request.
type answer struct {
	status     int
	accepted   int
	shed       bool // the admission-control 503
	retryAfter bool
	lat        time.Duration // from the scheduled send
	at         time.Duration // when it was answered, from the phase start
	err        error
}

// post sends one batch and reads the answer.
func post(ctx context.Context, c *http.Client, s *benchServer, body []byte) answer {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.pk)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After") != "", err: err}
	switch resp.StatusCode {
	case http.StatusOK:
		var out struct {
			Accepted int `json:"accepted"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			a.err = err
		}
		a.accepted = out.Accepted
	case http.StatusServiceUnavailable:
		a.shed = bytes.Contains(raw, []byte("too many event requests"))
	}
	return a
}

func newBenchClient(maxInFlight int) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: maxInFlight, MaxIdleConnsPerHost: maxInFlight, IdleConnTimeout: time.Minute,
		DisableCompression: true, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
}

// closedLoop runs n clients posting back to back for d and returns their
// answers.
func closedLoop(ctx context.Context, c *http.Client, s *benchServer, g *eventBodies, n int, d time.Duration) []answer {
	var mu sync.Mutex
	var out []answer
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d && ctx.Err() == nil {
				t := time.Now()
				a := post(ctx, c, s, g.next())
				a.lat, a.at = time.Since(t), time.Since(start)
				mu.Lock()
				out = append(out, a)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// openLoop sends a request every 1/rate s for d, whatever the answers
// take (no coordinated omission: latency counts from the scheduled send),
// and returns the answers and the requests dropped because maxInFlight
// were outstanding.
func openLoop(ctx context.Context, c *http.Client, s *benchServer, g *eventBodies, rate float64, d time.Duration, maxInFlight int) (out []answer, dropped, maxIn int) {
	var mu sync.Mutex
	start := time.Now()
	run := runOpenLoop(ctx, func(due time.Time) func() error {
		body := g.next()
		return func() error {
			a := post(ctx, c, s, body)
			a.at = time.Since(start)
			a.lat = time.Since(due)
			mu.Lock()
			out = append(out, a)
			mu.Unlock()
			return a.err
		}
	}, rate, d, maxInFlight)
	return out, run.Dropped, run.MaxIn
}

// quantile of sorted durations, in ms.
func quantileMs(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	return float64(d[min(len(d)-1, int(q*float64(len(d))))]) / 1e6
}

// overloadRun measures one store: idle RSS, the closed-loop capacity, the
// open-loop overload at factor × capacity, and the drain.
func overloadRun(ctx context.Context, o overloadOpts, store string, stderr io.Writer) (overloadResult, error) {
	res := overloadResult{Bench: "overload", Store: store, Bus: "membus", Batch: o.batch, Factor: o.factor, MaxEventRequests: o.maxEventReqs}
	if store == "redis" {
		res.Bus = "rabbitmq"
	}
	if res.MaxEventRequests == 0 {
		res.MaxEventRequests = 256 // the server's default (api.DefaultMaxEventRequests)
	}
	s, err := startBenchServer(ctx, o, store, stderr)
	if err != nil {
		return res, err
	}
	defer s.stop(o)
	pid := s.cmd.Process.Pid
	res.RSSIdleMB = rssMB(pid)
	if o.clientNice != 0 {
		if err := reniceSelf(o.clientNice); err != nil {
			return res, fmt.Errorf("--client-nice: %w", err)
		}
		defer reniceSelf(0)
	}
	c := newBenchClient(o.maxInFlight)
	g := newEventBodies(o)

	fmt.Fprintf(stderr, "%s: warm-up %v, then capacity %v with %d closed-loop clients\n", store, o.warmup, o.capacityDur, o.concurrency)
	closedLoop(ctx, c, s, g, o.concurrency, o.warmup)
	applied0, err := s.metricSum("kairos_engine_events_applied_total")
	if err != nil {
		return res, err
	}
	stopRSS := rssPeak(pid)
	cpu0 := cpuSeconds(pid)
	capAnswers := closedLoop(ctx, c, s, g, o.concurrency, o.capacityDur)
	res.ServerCPUCapacity = (cpuSeconds(pid) - cpu0) / o.capacityDur.Seconds()
	res.RSSCapacityMB = stopRSS()
	applied1, err := s.metricSum("kairos_engine_events_applied_total")
	if err != nil {
		return res, err
	}
	var accepted int
	var lat []time.Duration
	for _, a := range capAnswers {
		if a.status == http.StatusOK {
			accepted += a.accepted
			lat = append(lat, a.lat)
		}
	}
	if accepted == 0 {
		return res, fmt.Errorf("no event accepted in the capacity phase (%d answers; first: %+v)", len(capAnswers), capAnswers[0])
	}
	slices.Sort(lat)
	res.CapacityAccepted = float64(accepted) / o.capacityDur.Seconds()
	res.CapacityApplied = (applied1 - applied0) / o.capacityDur.Seconds()
	res.CapacityEPS = min(res.CapacityAccepted, res.CapacityApplied)
	res.CapacityP99ms = quantileMs(lat, 0.99)
	if _, _, _, err := s.drain(); err != nil {
		return res, err
	}

	res.OfferedEPS = o.factor * res.CapacityEPS
	if o.rate > 0 {
		res.OfferedEPS, res.Factor = o.rate, o.rate/res.CapacityEPS
	}
	reqRate := res.OfferedEPS / float64(o.batch)
	fmt.Fprintf(stderr, "%s: capacity %.0f events/s; offering %.0f events/s (%.0f req/s) for %v\n", store, res.CapacityEPS, res.OfferedEPS, reqRate, o.overloadDur)
	applied1, err = s.metricSum("kairos_engine_events_applied_total")
	if err != nil {
		return res, err
	}
	stopRSS = rssPeak(pid)
	cpu0, self0, t0 := cpuSeconds(pid), cpuSeconds(0), time.Now()
	answers, dropped, maxIn := openLoop(ctx, c, s, g, reqRate, o.overloadDur, o.maxInFlight)
	wall := time.Since(t0).Seconds()
	res.ServerCPUOverload, res.ClientCPUOverload = (cpuSeconds(pid)-cpu0)/wall, (cpuSeconds(0)-self0)/wall
	res.RSSOverloadMB = stopRSS()
	applied2, _ := s.metricSum("kairos_engine_events_applied_total")
	res.AppliedEPS = (applied2 - applied1) / o.overloadDur.Seconds()
	res.Dropped, res.MaxInFlight, res.Requests = dropped, maxIn, len(answers)
	res.SentEPS, res.ClientNice = float64(len(answers)*o.batch)/o.overloadDur.Seconds(), o.clientNice
	summarize(&res, answers, o.overloadDur)

	// Drain: every accepted event must be applied.
	var took time.Duration
	res.AcceptedEvents, res.AppliedEvents, took, err = s.drain()
	if err != nil {
		return res, err
	}
	res.DrainS = took.Seconds()
	if res.AppliedEvents < res.AcceptedEvents {
		fmt.Fprintf(stderr, "%s: only %d of %d accepted events applied after %v\n", store, res.AppliedEvents, res.AcceptedEvents, took)
	}
	return res, nil
}

// summarize fills the overload figures of res from the answers.
func summarize(res *overloadResult, answers []answer, d time.Duration) {
	var all, ok, shed []time.Duration
	accepted := 0
	res.RetryAfterAll = true
	res.FirstShedMs = -1
	for _, a := range answers {
		switch {
		case a.err != nil:
			res.Errors++
			continue
		case a.status == http.StatusOK:
			res.OK++
			if a.at <= d { // the rate counts what was answered within the window
				accepted += a.accepted
			}
			ok = append(ok, a.lat)
		case a.status == http.StatusServiceUnavailable:
			if a.shed {
				res.Shed++
				shed = append(shed, a.lat)
			} else {
				res.Unknown++
			}
			res.RetryAfterAll = res.RetryAfterAll && a.retryAfter
			if ms := float64(a.at) / 1e6; res.FirstShedMs < 0 || ms < res.FirstShedMs {
				res.FirstShedMs = ms
			}
		default:
			res.Errors++
		}
		all = append(all, a.lat)
	}
	for _, l := range [][]time.Duration{all, ok, shed} {
		slices.Sort(l)
	}
	res.AcceptedEPS = float64(accepted) / d.Seconds()
	res.AcceptedRatio = res.AcceptedEPS / res.CapacityEPS
	res.P50ms, res.P99ms = quantileMs(all, 0.5), quantileMs(all, 0.99)
	if len(all) > 0 {
		res.Maxms = float64(all[len(all)-1]) / 1e6
	}
	res.OKP99ms, res.ShedP99ms = quantileMs(ok, 0.99), quantileMs(shed, 0.99)
}

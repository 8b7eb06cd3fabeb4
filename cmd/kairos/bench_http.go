package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/kairoshq/kairos/api/client"
)

func init() {
	register(command{
		name:    "bench http",
		summary: "open-loop HTTP load generator: recommendation latency at a fixed request rate (JSON result)",
		run:     runBenchHTTP,
	})
}

// httpBenchResult is the JSON line of `kairos bench http`.
type httpBenchResult struct {
	Bench      string  `json:"bench"`
	Path       string  `json:"path"`
	Rate       float64 `json:"target_rps"`
	Achieved   float64 `json:"achieved_rps"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Dropped    int     `json:"dropped"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	Maxms      float64 `json:"max_ms"`
	DurationS  float64 `json:"duration_s"`
	Visitors   int     `json:"visitors"`
	Concurrent int     `json:"max_in_flight"`
	Filter     string  `json:"filter,omitempty"`
	Boost      string  `json:"boost,omitempty"`
	FilterName string  `json:"filter_name,omitempty"`
	// Timeline is the run in slices of --timeline's width.
	Timeline []timelineBucket `json:"timeline,omitempty"`
}

func runBenchHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench http", stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "Kairos base URL")
	key := fs.String("key", envOr("KAIROS_SECRET_KEY", ""), "secret key (default $KAIROS_SECRET_KEY)")
	rate := fs.Float64("rate", 600, "requests per second (open loop: sent on schedule whatever the latency)")
	dur := fs.Duration("duration", 20*time.Second, "measurement duration")
	warm := fs.Duration("warmup", 3*time.Second, "warm-up before measuring (same rate, not recorded)")
	visitors := fs.Int("visitors", 1000, "visitor ids v0..v(N-1) drawn uniformly")
	prefix := fs.String("visitor-prefix", "v", "visitor id prefix")
	n := fs.Int("n", 10, "items per request")
	path := fs.String("path", "/v1/recommendations", "endpoint (visitor and n are added as query parameters)")
	inflight := fs.Int("max-in-flight", 512, "requests in flight at most; a send due beyond it is counted as dropped")
	timelineWidth := fs.Duration("timeline", 0, "also report p99 and max per slice of this width of the run, by scheduled start (e.g. 100ms; 0: off)")
	clientKind := fs.String("client", "raw", "raw: GETs on keep-alive connections read with net/http's parser (the least CPU beside the server); go: the Go client (api/client, recommendations) or net/http's client (other paths)")
	var x client.Expressions
	fs.StringVar(&x.Filter, "filter", "", "filter= expression of every request (e.g. 'id endsWith \"00\"': 1 % of kairos bench seed's items)")
	fs.StringVar(&x.Boost, "boost", "", "boost= expression of every request")
	fs.StringVar(&x.FilterName, "filter-name", "", "filter_name= of every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *dur <= 0 || *visitors < 1 {
		return fmt.Errorf("--rate, --duration and --visitors must be positive")
	}
	if *clientKind != "raw" && *clientKind != "go" {
		return fmt.Errorf("--client %q: want raw or go", *clientKind)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: *inflight, MaxConnsPerHost: *inflight,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	visitor := func() string { return fmt.Sprintf("%s%d", *prefix, rng.IntN(*visitors)) }
	// --client raw (the default) sends every request as a plain GET on
	// keep-alive connections (rawHTTP); --client go sends the
	// recommendations through the Go client (api/client), as an
	// application's back end would call them, without its retries (a
	// failure counts as an error), and any other path through net/http's
	// client.
	fixed := url.Values{"n": {fmt.Sprint(*n)}}
	for k, v := range map[string]string{"filter": x.Filter, "boost": x.Boost, "filter_name": x.FilterName} {
		if v != "" {
			fixed.Set(k, v)
		}
	}
	query := fixed.Encode() // the same for every request: encoded once
	target := func() string { return *path + "?visitor=" + url.QueryEscape(visitor()) + "&" + query }
	var makeCall func(time.Time) func() error
	if *clientKind == "raw" {
		hdr := http.Header{}
		if *key != "" {
			hdr.Set("Authorization", "Bearer "+*key)
		}
		rc, err := newRawHTTP(*base, hdr, 10*time.Second)
		if err != nil {
			return err
		}
		defer rc.close()
		makeCall = func(time.Time) func() error {
			req := rc.request(target())
			return func() error { return rc.do(ctx, req) }
		}
	} else if c, err := client.New(*base, *key, client.Options{HTTPClient: hc, Retries: -1}); err == nil && *path == "/v1/recommendations" {
		makeCall = func(time.Time) func() error {
			q := client.RecQuery{Visitor: visitor(), N: *n, Expressions: x}
			return func() error { _, err := c.Recommendations(ctx, q); return err }
		}
	} else {
		makeCall = func(time.Time) func() error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *base+target(), nil)
			if *key != "" {
				req.Header.Set("Authorization", "Bearer "+*key)
			}
			return func() error { return getOK(hc, req) }
		}
	}
	fmt.Fprintf(stderr, "warming up %s at %.0f req/s\n", *warm, *rate)
	runOpenLoop(ctx, makeCall, *rate, *warm, *inflight)
	fmt.Fprintf(stderr, "measuring %s at %.0f req/s\n", *dur, *rate)
	run := runOpenLoop(ctx, makeCall, *rate, *dur, *inflight)
	res := httpBenchResult{Bench: "http", Path: *path, Rate: *rate, Requests: len(run.Lat) + run.Errs, Errors: run.Errs, Dropped: run.Dropped,
		DurationS: run.Took.Seconds(), Visitors: *visitors, Concurrent: run.MaxIn, Filter: x.Filter, Boost: x.Boost, FilterName: x.FilterName,
		Timeline: timeline(run, *timelineWidth)}
	res.Achieved = float64(len(run.Lat)) / run.Took.Seconds()
	if lat := slices.Sorted(slices.Values(run.Lat)); len(lat) > 0 {
		res.P50ms, res.P90ms, res.P99ms, res.Maxms = quantileMs(lat, 0.50), quantileMs(lat, 0.90), quantileMs(lat, 0.99), float64(lat[len(lat)-1])/1e6
	}
	return writeJSON(stdout, res)
}

// getOK sends req and reads the answer; an answer other than 2xx is an
// error.
func getOK(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// openLoopRun is what runOpenLoop measured: the latency of each successful
// call with the offset of its scheduled start from the loop's start.
type openLoopRun struct {
	Lat, At              []time.Duration
	Errs, Dropped, MaxIn int
	Took                 time.Duration
}

// runOpenLoop makes and starts calls on a fixed schedule for d and
// returns the latencies of the successful ones, measured from the
// scheduled start (so a slow server cannot hide queueing: no coordinated
// omission). makeCall gets the call's scheduled start and runs on the
// scheduling goroutine, the call it returns on its own.
func runOpenLoop(ctx context.Context, makeCall func(due time.Time) func() error, rate float64, d time.Duration, maxInFlight int) openLoopRun {
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res openLoopRun
	)
	sem := make(chan struct{}, maxInFlight)
	for i := 0; ; i++ {
		at := time.Duration(i) * interval
		if at >= d || ctx.Err() != nil {
			break
		}
		due := start.Add(at)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			res.Dropped++
			mu.Unlock()
			continue
		}
		res.MaxIn = max(res.MaxIn, len(sem))
		call := makeCall(due)
		wg.Go(func() {
			defer func() { <-sem }()
			ok := call() == nil
			l := time.Since(due)
			mu.Lock()
			if ok {
				res.Lat, res.At = append(res.Lat, l), append(res.At, at)
			} else {
				res.Errs++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Took = time.Since(start)
	return res
}

// timelineBucket is one slice of a run by scheduled start (--timeline):
// stalls of the server or the machine show as buckets whose p99 and max
// stand out from their neighbours'.
type timelineBucket struct {
	AtS      float64 `json:"at_s"`
	Requests int     `json:"requests"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
}

// timeline groups the latencies of r into buckets of width w by their
// scheduled start (empty buckets left out).
func timeline(r openLoopRun, w time.Duration) []timelineBucket {
	if w <= 0 || len(r.At) == 0 {
		return nil
	}
	by := make([][]time.Duration, int(slices.Max(r.At)/w)+1)
	for i, at := range r.At {
		by[at/w] = append(by[at/w], r.Lat[i])
	}
	var out []timelineBucket
	for k, lat := range by {
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		out = append(out, timelineBucket{AtS: (time.Duration(k) * w).Seconds(), Requests: len(lat),
			P99ms: quantileMs(lat, 0.99), Maxms: float64(lat[len(lat)-1]) / 1e6})
	}
	return out
}

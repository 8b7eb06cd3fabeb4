package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/promo/promotest"
	"github.com/kairoshq/kairos/signals"
	"github.com/kairoshq/kairos/signals/membus"
)

// discardWriter is a reusable ResponseWriter, so that benchmarks measure
// the server, not httptest.ResponseRecorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// cannedRecommender answers every request with the same response.
type cannedRecommender struct{ resp engine.RecResponse }

func (c *cannedRecommender) Recommend(ctx context.Context, r engine.RecRequest) (engine.RecResponse, error) {
	return c.resp, nil
}

func (c *cannedRecommender) SimilarTo(ctx context.Context, r engine.SimilarRequest) ([]engine.Rec, error) {
	return c.resp.Items, nil
}

type nopPublisher struct{}

func (nopPublisher) Publish(ctx context.Context, events []signals.Event) error { return nil }

func benchServer(b *testing.B, pub signals.Publisher, rec Recommender) *Server {
	b.Helper()
	cfg := testConfig()
	cfg.SecretRate = RateLimit{Rate: math.Inf(1)}
	cfg.PublishableRate = RateLimit{Rate: math.Inf(1)}
	s, err := New(cfg, Deps{Publisher: pub, Recommender: rec, Catalog: &fakeCatalog{}, Checker: &fakeChecker{}})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// serveLoop serves r to h in every iteration of b, failing on a status
// other than 200.
func serveLoop(b *testing.B, h http.Handler, r *http.Request) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkRecommendationsHandler measures the HTTP layer of
// GET /v1/recommendations (auth, parsing, JSON of 10 items, metrics)
// around a recommender that costs nothing.
func BenchmarkRecommendationsHandler(b *testing.B) {
	rec := &cannedRecommender{resp: engine.RecResponse{Visitor: "v-17", Strategy: engine.StrategyALS}}
	for i := 0; i < 10; i++ {
		rec.resp.Items = append(rec.resp.Items, engine.Rec{Item: "sku-" + string(rune('a'+i)), Score: float32(10 - i), Title: "An item", Category: "shoes"})
	}
	s := benchServer(b, nopPublisher{}, rec)
	h := s.Handler()
	r := httptest.NewRequest("GET", "/v1/recommendations?visitor=v-17&n=10&exclude_seen=true", nil)
	r.Header.Set("Authorization", "Bearer "+testSK)
	serveLoop(b, h, r)
}

// BenchmarkEventsHandler measures POST /v1/events with a batch of 20
// events: decoding and validation, auth from the body key, the answer,
// and publishing to a no-op publisher or to the in-process bus with a
// consumer that does nothing.
func BenchmarkEventsHandler(b *testing.B) {
	body := []byte(`{"key":"` + testPK + `","events":` + batchJSON(20) + `}`)
	run := func(b *testing.B, pub signals.Publisher) {
		s := benchServer(b, pub, &cannedRecommender{})
		s.cfg.Now = func() time.Time { return testNow }
		h := s.Handler()
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest("POST", "/v1/events", nil)
		r.Header.Set("Origin", allowed)
		r.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		r.ContentLength = int64(len(body))
		rd := bytes.NewReader(body)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			clear(w.h)
			rd.Reset(body)
			r.Body = io.NopCloser(rd)
			h.ServeHTTP(w, r)
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
		}
		b.ReportMetric(float64(b.N*20)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("publisher=nop", func(b *testing.B) { run(b, nopPublisher{}) })
	b.Run("publisher=membus", func(b *testing.B) {
		bus := membus.New(membus.Options{Now: func() time.Time { return testNow }})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = bus.Consume(ctx, func(context.Context, []signals.Event) error { return nil })
		}()
		defer func() { cancel(); <-done; bus.Close() }()
		run(b, bus)
	})
}

// BenchmarkPixelHandler measures GET /v1/pixel.gif with a derived id.
func BenchmarkPixelHandler(b *testing.B) {
	s := benchServer(b, nopPublisher{}, &cannedRecommender{})
	h := s.Handler()
	r := httptest.NewRequest("GET", "/v1/pixel.gif?key="+testPK+"&visitor=v-17&item=sku-42&page=https%3A%2F%2Fshop.example%2Fp%2F42", nil)
	r.Header.Set("Referer", allowed+"/p/42")
	serveLoop(b, h, r)
}

// BenchmarkPromotionStreamsOpen measures what an open promotion stream
// costs: it opens 1,000 streams (1,000 visitors) on a server listening on
// loopback, over raw TCP clients that hold only their connection, and
// reports per stream the Go heap and stacks in use (the server's share
// and the client's net.Conn), the server's file descriptors and
// goroutines. Run it with -benchtime 1x.
func BenchmarkPromotionStreamsOpen(b *testing.B) {
	const n = 1000
	eng, err := promo.New(context.Background(), promo.Config{Seed: 1}, promo.Deps{Store: promotest.NewMem(), Profiles: fakeVisitors{}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.PublishableRate = RateLimit{Rate: math.Inf(1)}
	cfg.MaxStreams = n
	s, err := New(cfg, Deps{Publisher: nopPublisher{}, Recommender: &cannedRecommender{}, Catalog: &fakeCatalog{}, Checker: &fakeChecker{},
		Offers: eng, Definitions: eng, Promotions: eng})
	if err != nil {
		b.Fatal(err)
	}
	addr, stop := serveLoopback(b, s)
	defer stop()
	usage := func() (mem uint64, fds, goroutines int) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ents, _ := os.ReadDir("/proc/self/fd")
		return ms.HeapInuse + ms.StackInuse, len(ents), runtime.NumGoroutine()
	}
	var memPer, fdPer, goPer float64
	for b.Loop() {
		mem0, fd0, g0 := usage()
		conns := make([]net.Conn, 0, n)
		for i := range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /v1/promotions/stream?visitor=v%d&key=%s HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n\r\n", i, testPK, allowed)
			// Read the headers and the "retry:" line: the stream is open.
			buf := make([]byte, 1024)
			got := 0
			for !bytes.Contains(buf[:got], []byte("retry: 3000\n\n")) {
				k, err := c.Read(buf[got:])
				if err != nil || got+k == len(buf) {
					b.Fatalf("stream %d: %v after %q", i, err, buf[:got+k])
				}
				got += k
			}
			conns = append(conns, c)
		}
		mem1, fd1, g1 := usage()
		memPer = float64(mem1-mem0) / n
		fdPer = float64(fd1-fd0)/n - 1 // the client's own descriptor
		goPer = float64(g1-g0) / n
		for _, c := range conns {
			c.Close()
		}
		for metricValue(b, s.metrics.streamsOpen) != 0 {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(memPer, "heap+stack-B/stream")
	b.ReportMetric(fdPer, "server-fds/stream")
	b.ReportMetric(goPer, "goroutines/stream")
}

// BenchmarkEventsShed measures the answer to POST /v1/events beyond
// Config.MaxEventRequests (admission control): what the server spends on
// each request it refuses under overload.
func BenchmarkEventsShed(b *testing.B) {
	s := benchServer(b, nopPublisher{}, &cannedRecommender{})
	s.events.n.Store(s.events.max) // every place taken
	h := s.Handler()
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest("POST", "/v1/events", nil)
	r.Header.Set("Authorization", "Bearer "+testPK)
	r.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
		if w.code != http.StatusServiceUnavailable {
			b.Fatalf("status %d", w.code)
		}
	}
}

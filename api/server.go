package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/engine/filter"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// Server is the Kairos HTTP API. Create it with New; serve it with Serve
// (or mount Handler in a test or another server); stop it with Shutdown
// or by cancelling Serve's context.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	e       *echo.Echo
	http    *http.Server
	keys    keyring
	origins *originSet
	limits  *limiter
	evLim   signals.Limits
	ident   identityVerifier // identity verification (identity.go)
	metrics *metrics
	routes  []routeSpec

	mu   sync.Mutex
	addr net.Addr // bound address while serving

	streams streamHub        // promotion streams (promotions.go)
	events  gate             // admission control of the event routes (events.go)
	exprs   *filter.Compiler // filter= and boost= expressions, compiled once per text (filters.go)
}

// routeSpec is one row of the route table.
type routeSpec struct {
	method, path string
	access       access
	bodyKey      bool // the key may come in the body (POST /v1/events)
	pixel        bool // errors are answered as the GIF
	event        bool // publishes events: bounded by Config.MaxEventRequests
	handler      func(*Server, echo.Context) error
}

// Route describes a route of the API (for documentation and tests).
type Route struct {
	Method, Path string
	// Access is "public" (no key), "secret" (secret key only) or
	// "publishable" (publishable or secret key; CORS for AllowedOrigins).
	Access string
}

// routeTable is the API. Keep it in sync with doc.go.
func routeTable(metricsPublic bool) []routeSpec {
	metricsAccess := accessSecret
	if metricsPublic {
		metricsAccess = accessPublic
	}
	return []routeSpec{
		{method: http.MethodGet, path: "/healthz", access: accessPublic, handler: (*Server).healthz},
		{method: http.MethodGet, path: "/readyz", access: accessPublic, handler: (*Server).readyz},
		{method: http.MethodGet, path: "/metrics", access: metricsAccess, handler: (*Server).metricsHandler},
		{method: http.MethodGet, path: "/openapi.json", access: accessPublic, handler: (*Server).openAPIHandler},
		{method: http.MethodGet, path: "/tracker.js", access: accessPublic, handler: (*Server).trackerJS},
		{method: http.MethodGet, path: "/tracker.d.ts", access: accessPublic, handler: (*Server).trackerTypes},
		{method: http.MethodPost, path: "/v1/events", access: accessPublishable, bodyKey: true, event: true, handler: (*Server).postEvents},
		{method: http.MethodGet, path: "/v1/pixel.gif", access: accessPublishable, pixel: true, event: true, handler: (*Server).pixel},
		{method: http.MethodGet, path: "/v1/recommendations", access: accessSecret, handler: (*Server).recommendations},
		{method: http.MethodGet, path: "/v1/items/:id/similar", access: accessSecret, handler: (*Server).similar},
		{method: http.MethodGet, path: "/v1/items", access: accessSecret, handler: (*Server).listItems},
		{method: http.MethodPost, path: "/v1/items", access: accessSecret, handler: (*Server).createItem},
		{method: http.MethodGet, path: "/v1/items/:id", access: accessSecret, handler: (*Server).getItem},
		{method: http.MethodPut, path: "/v1/items/:id", access: accessSecret, handler: (*Server).putItem},
		{method: http.MethodDelete, path: "/v1/items/:id", access: accessSecret, handler: (*Server).deleteItem},
		{method: http.MethodDelete, path: "/v1/visitors/:id", access: accessSecret, handler: (*Server).eraseVisitor},
		{method: http.MethodPost, path: "/v1/identify", access: accessSecret, event: true, handler: (*Server).identify},
		{method: http.MethodGet, path: "/v1/stats/items/:id", access: accessSecret, handler: (*Server).itemStats},
		{method: http.MethodGet, path: "/v1/stats/offers/:id", access: accessSecret, handler: (*Server).offerStats},
		{method: http.MethodGet, path: "/v1/offers", access: accessPublishable, handler: (*Server).offers},
		{method: http.MethodPost, path: "/v1/offers", access: accessSecret, handler: (*Server).createOffer},
		{method: http.MethodGet, path: "/v1/offers/:id", access: accessSecret, handler: (*Server).getOffer},
		{method: http.MethodPut, path: "/v1/offers/:id", access: accessSecret, handler: (*Server).putOffer},
		{method: http.MethodDelete, path: "/v1/offers/:id", access: accessSecret, handler: (*Server).deleteOffer},
		{method: http.MethodGet, path: "/v1/campaigns", access: accessSecret, handler: (*Server).listCampaigns},
		{method: http.MethodPost, path: "/v1/campaigns", access: accessSecret, handler: (*Server).createCampaign},
		{method: http.MethodGet, path: "/v1/campaigns/:id", access: accessSecret, handler: (*Server).getCampaign},
		{method: http.MethodPut, path: "/v1/campaigns/:id", access: accessSecret, handler: (*Server).putCampaign},
		{method: http.MethodDelete, path: "/v1/campaigns/:id", access: accessSecret, handler: (*Server).deleteCampaign},
		{method: http.MethodGet, path: "/v1/rules", access: accessSecret, handler: (*Server).listRules},
		{method: http.MethodPost, path: "/v1/rules", access: accessSecret, handler: (*Server).createRule},
		{method: http.MethodGet, path: "/v1/rules/:id", access: accessSecret, handler: (*Server).getRule},
		{method: http.MethodPut, path: "/v1/rules/:id", access: accessSecret, handler: (*Server).putRule},
		{method: http.MethodDelete, path: "/v1/rules/:id", access: accessSecret, handler: (*Server).deleteRule},
		{method: http.MethodGet, path: "/v1/promotions/stream", access: accessPublishable, handler: (*Server).promotionStream},
		{method: http.MethodGet, path: "/v1/experiments", access: accessSecret, handler: (*Server).listExperiments},
		{method: http.MethodPost, path: "/v1/experiments", access: accessSecret, handler: (*Server).createExperiment},
		{method: http.MethodGet, path: "/v1/experiments/:id", access: accessSecret, handler: (*Server).getExperiment},
		{method: http.MethodPut, path: "/v1/experiments/:id", access: accessSecret, handler: (*Server).putExperiment},
		{method: http.MethodDelete, path: "/v1/experiments/:id", access: accessSecret, handler: (*Server).deleteExperiment},
		{method: http.MethodGet, path: "/v1/experiments/:id/results", access: accessSecret, handler: (*Server).experimentResults},
		{method: http.MethodGet, path: "/v1/filters", access: accessSecret, handler: (*Server).listFilters},
		{method: http.MethodGet, path: "/v1/filters/:id", access: accessSecret, handler: (*Server).getFilter},
		{method: http.MethodPut, path: "/v1/filters/:id", access: accessSecret, handler: (*Server).putFilter},
		{method: http.MethodDelete, path: "/v1/filters/:id", access: accessSecret, handler: (*Server).deleteFilter},
		{method: http.MethodGet, path: "/v1/holdout/results", access: accessSecret, handler: (*Server).holdoutResults},
		{method: http.MethodGet, path: "/v1/pages/attention", access: accessSecret, handler: (*Server).pageAttention},
		{method: http.MethodGet, path: "/v1/dashboard/summary", access: accessSecret, handler: (*Server).dashboardSummary},
		{method: http.MethodGet, path: "/dashboard", access: accessPublic, handler: (*Server).dashboardFiles},
		{method: http.MethodGet, path: "/dashboard/*", access: accessPublic, handler: (*Server).dashboardFiles},
		{method: http.MethodGet, path: "/", access: accessPublic, handler: (*Server).site},
		{method: http.MethodGet, path: "/shop/*", access: accessPublic, handler: (*Server).site},
	}
}

// New checks cfg (after Defaults) and deps and builds the server; it does
// not listen yet. The API's metrics are registered on cfg.Registry (an
// error if they already are).
func New(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.Defaults()
	errs := []error{cfg.Validate()}
	for _, d := range []struct {
		name string
		nil  bool
	}{
		{"Publisher", deps.Publisher == nil}, {"Recommender", deps.Recommender == nil},
		{"Catalog", deps.Catalog == nil}, {"Checker", deps.Checker == nil},
	} {
		if d.nil {
			errs = append(errs, fmt.Errorf("api: deps: %s is nil", d.name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := defaults.Logger(cfg.Logger)
	s := &Server{
		cfg:     cfg,
		deps:    deps,
		log:     log.With(slog.String("component", "api")),
		keys:    keyring{secret: cfg.SecretKeys, publishable: cfg.PublishableKeys},
		origins: newOriginSet(cfg.AllowedOrigins),
		limits:  newLimiter(cfg.SecretRate, cfg.PublishableRate, cfg.MaxRateClients),
		routes:  routeTable(cfg.MetricsPublic),
		ident:   newIdentityVerifier(cfg),
		events:  gate{max: int64(cfg.MaxEventRequests)},
		exprs:   filter.NewCompiler(1024),
	}
	s.evLim = cfg.EventLimits
	s.evLim.MaxBatch = cfg.MaxBatch
	s.evLim.MaxBatchBytes = int(cfg.MaxBodyBytes)
	m, err := newMetrics(cfg.Registry, func() float64 { return float64(s.events.inFlight()) })
	if err != nil {
		return nil, err
	}
	s.metrics = m

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.handleError
	e.JSONSerializer = jsonSerializer{}
	e.IPExtractor = ipExtractor(cfg)
	e.Use(s.observe)
	preflightMethods := map[string][]string{}
	for i := range s.routes {
		rt := &s.routes[i]
		h := rt.handler
		hf := func(c echo.Context) error { return h(s, c) }
		e.Add(rt.method, rt.path, hf, s.guard(rt))
		methods := []string{rt.method}
		if rt.method == http.MethodGet {
			// HEAD wherever GET is served (echo adds none): the same
			// handler, status and headers; net/http drops the body.
			e.Add(http.MethodHead, rt.path, hf, s.guard(rt))
			methods = append(methods, http.MethodHead)
		}
		if rt.access == accessPublishable {
			preflightMethods[rt.path] = append(preflightMethods[rt.path], methods...)
		}
	}
	for path, methods := range preflightMethods {
		rt := &routeSpec{method: http.MethodOptions, path: path, access: accessPublic}
		e.Add(http.MethodOptions, path, s.preflight(strings.Join(append(methods, http.MethodOptions), ", ")), s.guard(rt))
	}
	s.e = e
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// ipExtractor returns how the client IP is found: the peer address, or
// X-Forwarded-For when the peer is a trusted proxy (Config.TrustProxy,
// Config.TrustedProxies; validated by Config.Validate).
func ipExtractor(cfg Config) echo.IPExtractor {
	if !cfg.TrustProxy && len(cfg.TrustedProxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{
		echo.TrustLoopback(cfg.TrustProxy), echo.TrustLinkLocal(cfg.TrustProxy), echo.TrustPrivateNet(cfg.TrustProxy),
	}
	for _, tp := range cfg.TrustedProxies {
		p, err := ParseTrustedProxy(tp)
		if err != nil {
			continue // New validated the config
		}
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Routes lists the API's routes with their access requirements, in the
// order of the route table. Every GET route also answers HEAD (same
// status and headers, no body); HEAD and the CORS preflight routes are
// not listed.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	for i, rt := range s.routes {
		out[i] = Route{Method: rt.method, Path: rt.path, Access: rt.access.String()}
	}
	return out
}

// Handler returns the server's http.Handler (the echo router with every
// middleware), e.g. for httptest.
func (s *Server) Handler() http.Handler { return s.e }

// Serve listens on Config.Addr and serves until ctx is done, then shuts
// down gracefully (at most Config.ShutdownTimeout) and returns Shutdown's
// error. It returns nil after a Shutdown call, or the listener's error.
func (s *Server) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener (which it closes).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	s.log.LogAttrs(ctx, slog.LevelInfo, "listening", slog.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		err := s.Shutdown(sctx)
		<-errc
		return err
	}
}

// Addr returns the address the server listens on, nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections and waits for in-flight requests
// to finish until ctx is done; then it closes the remaining connections
// and returns ctx's error (wrapped).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopStreams()
	err := s.http.Shutdown(ctx)
	if err != nil {
		cerr := s.http.Close()
		s.log.LogAttrs(ctx, slog.LevelWarn, "forced shutdown", slog.Any("error", err))
		return errors.Join(fmt.Errorf("api: shutdown: %w", err), cerr)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "stopped")
	return nil
}

// reqState is the per-request state shared by the middlewares and
// handlers (one allocation per request).
type reqState struct {
	id          string
	route       *routeSpec
	principal   principal
	authPending bool // POST /v1/events: the key is in the body
	// conn is the request's context before the request timeout: it ends
	// with the connection (promotion streams outlive the timeout).
	conn context.Context
}

const stateKey = "kairos.state"

func state(c echo.Context) *reqState {
	st, _ := c.Get(stateKey).(*reqState)
	return st
}

func requestID(c echo.Context) string {
	if st := state(c); st != nil {
		return st.id
	}
	return ""
}

func routeName(c echo.Context) string {
	if st := state(c); st != nil && st.route != nil {
		return st.route.path
	}
	return "unmatched"
}

func isPixel(c echo.Context) bool {
	st := state(c)
	return st != nil && st.route != nil && st.route.pixel
}

// observe is the outermost middleware: request id, request deadline,
// panic recovery, error rendering (so that the status is known) and
// metrics.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		r := c.Request()
		st := &reqState{id: incomingRequestID(r.Header.Get("X-Request-Id")), conn: r.Context()}
		c.Set(stateKey, st)
		c.Response().Header().Set("X-Request-Id", st.id)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		c.SetRequest(r.WithContext(ctx))

		if err := s.call(next, c); err != nil {
			c.Error(err)
		}
		s.metrics.observeRequest(routeName(c), r.Method, c.Response().Status, time.Since(start))
		return nil
	}
}

// call runs h, turning a panic into an internal error with its stack.
func (s *Server) call(h echo.HandlerFunc, c echo.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			buf := make([]byte, 8<<10)
			buf = buf[:runtime.Stack(buf, false)]
			err = fmt.Errorf("panic: %v\n%s", p, buf)
		}
	}()
	return h(c)
}

// guard is the per-route middleware: it records the route, answers CORS
// on publishable routes, authenticates and rate-limits the caller, and
// admits event requests within Config.MaxEventRequests (before the body
// is read).
func (s *Server) guard(rt *routeSpec) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			st := state(c)
			if st == nil { // handler used outside observe (cannot happen)
				st = &reqState{}
				c.Set(stateKey, st)
			}
			st.route = rt
			if rt.access == accessPublishable {
				s.corsHeaders(c)
			}
			// The handlers read the query leniently (a bad escape or too
			// many parameters would read as a missing parameter): say so.
			if _, err := url.ParseQuery(c.Request().URL.RawQuery); err != nil {
				return invalidf("query: %v", err)
			}
			if enc := c.Request().Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
				return invalidf("Content-Encoding %s is not supported: send the body uncompressed", strconv.Quote(shorten(enc, 40)))
			}
			if err := s.authenticate(c, st); err != nil {
				return err
			}
			if rt.event {
				if !s.events.enter() {
					s.metrics.shed.WithLabelValues(rt.path).Inc()
					return errOverloaded
				}
				defer s.events.leave()
			}
			return next(c)
		}
	}
}

var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// incomingRequestID keeps a client's X-Request-Id when it is a short
// token, and otherwise makes one: a random per-process prefix and a
// counter.
func incomingRequestID(h string) string {
	if h != "" && len(h) <= 64 {
		ok := true
		for i := 0; i < len(h) && ok; i++ {
			c := h[i]
			ok = c == '-' || c == '_' || c == '.' || c == ':' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')
		}
		if ok {
			return h
		}
	}
	return idPrefix + "-" + strconv.FormatUint(idCounter.Add(1), 36)
}

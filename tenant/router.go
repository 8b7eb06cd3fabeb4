package tenant

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Config configures a Router.
type Config struct {
	// AdminKey authorizes the admin API (/v1/tenants…) and the
	// deployment's /metrics. Required.
	AdminKey string
	// Registry holds the tenants. Required.
	Registry *Registry
	// Loader builds tenants' servers and purges their data. Required.
	Loader Loader
	// MaxLoaded is the most tenants loaded at once (<= 0: no bound).
	MaxLoaded int
	// MetricsTop is the number of tenants with their own metrics label
	// (default 100; the others share "other").
	MetricsTop int
	// MaxInFlight bounds the requests of one tenant served at once
	// (promotion streams excepted): beyond it, 429 at once, so that a
	// flooding tenant without a rate quota cannot take every worker
	// (<= 0: no bound).
	MaxInFlight int
	// RefreshEvery is how often the registry is re-read for changes made
	// by other replicas (default 2 s).
	RefreshEvery time.Duration
	// Ready reports whether the deployment's store is reachable (/readyz);
	// nil: always ready.
	Ready func(ctx context.Context) error
	// Public serves requests that carry no key and that the router does not
	// answer itself (the tracker, the dashboard's files, the OpenAPI
	// document); nil: 401.
	Public http.Handler
	// Registerer receives the router's metrics, Gatherer serves them on
	// GET /metrics with the admin key; nil: none.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
	// Counters, when set, is the deployment's store where the replicas
	// share the events-per-day counts (each adds its own and reads the
	// total every QuotaSyncEvery); nil: each process counts its own.
	Counters storage.Maps
	// QuotaSyncEvery is how often the counts are shared (default 1 s).
	QuotaSyncEvery time.Duration
	// KeyGrace is how long a tenant's old keys stay valid after a
	// rotation that does not say (POST /v1/tenants/{id}/keys without
	// grace_seconds); 0: they stop at once.
	KeyGrace time.Duration
	// Now is the clock of the quotas and key graces (nil: time.Now).
	Now func() time.Time
}

// keyRef is what a key resolves to.
type keyRef struct {
	id     string
	key    string
	secret bool
	until  time.Time // a rotated-out key's end of grace; zero: none
}

// snapshot is an immutable view of the registry.
type snapshot struct {
	byID  map[string]Tenant
	byKey map[[32]byte]keyRef
}

func newSnapshot(ts []Tenant) *snapshot {
	s := &snapshot{byID: make(map[string]Tenant, len(ts)), byKey: make(map[[32]byte]keyRef, 2*len(ts))}
	for _, t := range ts {
		s.byID[t.ID] = t
		if t.Status == Deleting {
			continue
		}
		s.byKey[sha256.Sum256([]byte(t.Keys.Publishable))] = keyRef{id: t.ID, key: t.Keys.Publishable}
		s.byKey[sha256.Sum256([]byte(t.Keys.Secret))] = keyRef{id: t.ID, key: t.Keys.Secret, secret: true}
		if p := t.Previous; p != nil {
			s.byKey[sha256.Sum256([]byte(p.Publishable))] = keyRef{id: t.ID, key: p.Publishable, until: p.Until}
			s.byKey[sha256.Sum256([]byte(p.Secret))] = keyRef{id: t.ID, key: p.Secret, secret: true, until: p.Until}
		}
	}
	return s
}

// Router is the HTTP front of a multi-tenant deployment: the admin API,
// health, and every other request handed to the server of the tenant its
// key belongs to.
type Router struct {
	cfg  Config
	log  *slog.Logger
	pool *Pool
	m    *metrics
	snap atomic.Pointer[snapshot]
	// mu serializes registry changes made through this router with the
	// snapshot reloads (so that a reload never undoes a newer change).
	mu     sync.Mutex
	quotas quotaSet
	admin  []byte
}

// NewRouter checks cfg and builds the router; Load reads the registry.
func NewRouter(cfg Config) (*Router, error) {
	var problems []string
	if len(cfg.AdminKey) < 16 {
		problems = append(problems, "AdminKey: want at least 16 characters")
	}
	if cfg.Registry == nil {
		problems = append(problems, "Registry is nil")
	}
	if cfg.Loader == nil {
		problems = append(problems, "Loader is nil")
	}
	if len(problems) > 0 {
		return nil, errors.New("tenant: " + strings.Join(problems, "; "))
	}
	if cfg.MetricsTop == 0 {
		cfg.MetricsTop = 100
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = 2 * time.Second
	}
	if cfg.QuotaSyncEvery <= 0 {
		cfg.QuotaSyncEvery = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("component", "tenants"))
	m := newMetrics(cfg.Registerer, cfg.MetricsTop)
	r := &Router{cfg: cfg, log: log, m: m, admin: []byte(cfg.AdminKey), pool: NewPool(cfg.Loader, cfg.MaxLoaded, log, m)}
	r.quotas.now, r.quotas.counters = cfg.Now, cfg.Counters
	r.snap.Store(newSnapshot(nil))
	return r, nil
}

// Pool returns the router's pool of loaded tenants.
func (r *Router) Pool() *Pool { return r.pool }

// Load reads the registry into the router, unloads tenants no longer
// active, and finishes deletions a crash interrupted.
func (r *Router) Load(ctx context.Context) error {
	r.mu.Lock()
	ts, err := r.cfg.Registry.All(ctx)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	old := r.snap.Load()
	r.snap.Store(newSnapshot(ts))
	r.mu.Unlock()
	counts := map[Status]int{}
	for _, t := range ts {
		counts[t.Status]++
		if t.Status == Active {
			r.pool.Unblock(t.ID) // deleted once, then created again
		} else {
			if ot, ok := old.byID[t.ID]; ok && ot.Status == Active {
				r.unload(ctx, t.ID, t.Status == Deleting)
			}
		}
	}
	for id := range old.byID {
		if _, ok := r.snap.Load().byID[id]; !ok {
			r.unload(ctx, id, true) // deleted by another replica
			r.quotas.drop(id)
		}
	}
	for _, s := range []Status{Active, Suspended, Deleting} {
		r.m.tenants.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
	return nil
}

// unload unloads the tenant id after a change of the registry. A tenant
// being deleted that was loaded here is purged again once unloaded: its
// server saved its state on the way out, perhaps after the deleting
// replica's purge, and this second purge removes what it wrote.
func (r *Router) unload(ctx context.Context, id string, deleted bool) {
	loaded := r.pool.IsLoaded(id)
	if deleted {
		r.pool.Block(id)
	}
	if err := r.pool.Unload(ctx, id); err != nil {
		r.log.LogAttrs(ctx, slog.LevelWarn, "tenant not unloaded", slog.String("tenant", id), slog.Any("err", err))
		return
	}
	if deleted && loaded {
		if err := r.cfg.Loader.Purge(ctx, id); err != nil {
			r.log.LogAttrs(ctx, slog.LevelWarn, "deleted tenant not purged", slog.String("tenant", id), slog.Any("err", err))
		}
	}
}

// Run re-reads the registry every RefreshEvery (changes by other
// replicas), finishes interrupted deletions once, and unloads every
// tenant when ctx is done.
func (r *Router) Run(ctx context.Context) error {
	for _, t := range r.snap.Load().byID {
		if t.Status == Deleting {
			if err := r.purge(ctx, t.ID); err != nil {
				r.log.LogAttrs(ctx, slog.LevelWarn, "interrupted tenant deletion not finished", slog.String("tenant", t.ID), slog.Any("err", err))
			}
		}
	}
	var seen int64 = -1
	tick := time.NewTicker(r.cfg.RefreshEvery)
	defer tick.Stop()
	sync := time.NewTicker(r.cfg.QuotaSyncEvery)
	defer sync.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			err := r.pool.Close(sctx)
			if serr := r.quotas.sync(sctx); serr != nil {
				r.log.LogAttrs(sctx, slog.LevelWarn, "events-per-day counts not shared at shutdown", slog.Any("err", serr))
			}
			return err
		case <-sync.C:
			if err := r.quotas.sync(ctx); err != nil {
				r.log.LogAttrs(ctx, slog.LevelWarn, "events-per-day counts not shared", slog.Any("err", err))
			}
		case <-tick.C:
			v, err := r.cfg.Registry.Version(ctx)
			if err != nil || v == seen {
				continue
			}
			if err := r.Load(ctx); err != nil {
				r.log.LogAttrs(ctx, slog.LevelWarn, "tenants not reloaded", slog.Any("err", err))
				continue
			}
			seen = v
		}
	}
}

// resolve returns the tenant key belongs to, comparing in constant time
// once the key's hash found a candidate.
func (r *Router) resolve(key string) (Tenant, keyRef, bool) {
	s := r.snap.Load()
	ref, ok := s.byKey[sha256.Sum256([]byte(key))]
	if !ok || subtle.ConstantTimeCompare([]byte(key), []byte(ref.key)) != 1 {
		return Tenant{}, keyRef{}, false
	}
	if !ref.until.IsZero() && !r.cfg.Now().Before(ref.until) {
		return Tenant{}, keyRef{}, false // rotated out, grace over
	}
	t, ok := s.byID[ref.id]
	return t, ref, ok
}

// isAdmin reports whether key is the admin key (constant time).
func (r *Router) isAdmin(key string) bool {
	return subtle.ConstantTimeCompare([]byte(key), r.admin) == 1
}

// ServeHTTP implements http.Handler.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := req.URL.Path
	switch {
	case path == "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case path == "/readyz":
		r.readyz(w, req)
		return
	case path == "/v1/tenants" || strings.HasPrefix(path, "/v1/tenants/"):
		r.adminAPI(w, req)
		return
	}
	key, fromHeader, bad := requestKey(req)
	if bad {
		writeError(w, http.StatusUnauthorized, "unauthorized", "malformed Authorization header: want Bearer <key>")
		return
	}
	if key == "" && req.Method == http.MethodPost && path == "/v1/events" {
		key = bodyKey(req)
	}
	if key == "" {
		switch {
		case req.Method == http.MethodOptions:
			preflight(w, req)
		case r.cfg.Public != nil:
			r.cfg.Public.ServeHTTP(w, req)
		default:
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing key: send the header Authorization: Bearer <key>")
		}
		return
	}
	if path == "/metrics" && fromHeader && r.isAdmin(key) {
		if r.cfg.Gatherer == nil {
			writeError(w, http.StatusNotFound, "not_found", "no metrics")
			return
		}
		promhttp.HandlerFor(r.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, req)
		return
	}
	t, _, ok := r.resolve(key)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "unknown key")
		return
	}
	if t.Status == Suspended {
		r.m.request(t.ID, http.StatusForbidden)
		writeError(w, http.StatusForbidden, "forbidden", "this tenant is suspended: ask the deployment's administrator")
		return
	}
	r.serveTenant(w, req, t)
}

// serveTenant applies t's quotas and hands req to t's server.
func (r *Router) serveTenant(w http.ResponseWriter, req *http.Request, t Tenant) {
	q := r.quotas.get(t.ID, t.Quotas)
	if wait, ok := q.allow(); !ok {
		r.m.refused(t.ID, "requests_per_second")
		r.m.request(t.ID, http.StatusTooManyRequests)
		w.Header().Set("Retry-After", retryAfter(wait))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "tenant rate limit of %g requests/s exceeded: retry after %s s", t.Quotas.RequestsPerSecond, retryAfter(wait))
		return
	}
	if r.cfg.MaxInFlight > 0 && req.URL.Path != "/v1/promotions/stream" {
		if n := q.inFlight.Add(1); n > int64(r.cfg.MaxInFlight) {
			q.inFlight.Add(-1)
			r.m.refused(t.ID, "in_flight")
			r.m.request(t.ID, http.StatusTooManyRequests)
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "rate_limited", "tenant has %d requests in flight, the most served at once: retry after 1 s", r.cfg.MaxInFlight)
			return
		}
		defer q.inFlight.Add(-1)
	}
	event := isEventRoute(req)
	var accepted int64 // events the request accepted (charged when done)
	if rate := t.Quotas.EventsPerSecond; event && rate > 0 {
		reserved, wait, ok := q.eventsAllowed(rate)
		if !ok {
			r.m.refused(t.ID, "events_per_second")
			r.m.request(t.ID, http.StatusTooManyRequests)
			w.Header().Set("Retry-After", retryAfter(wait))
			writeError(w, http.StatusTooManyRequests, "rate_limited", "tenant rate limit of %g events/s exceeded: retry after %s s", rate, retryAfter(wait))
			return
		}
		defer func() { q.settleEvents(accepted, reserved, rate) }()
	}
	if event && t.Quotas.EventsPerDay > 0 {
		if err := r.quotas.readShared(req.Context(), t.ID, q); err != nil {
			r.log.LogAttrs(req.Context(), slog.LevelWarn, "events-per-day count not read: this replica's count applies", slog.String("tenant", t.ID), slog.Any("err", err))
		}
		if n := q.eventsToday(); n >= t.Quotas.EventsPerDay {
			r.m.refused(t.ID, "events_per_day")
			r.m.request(t.ID, http.StatusTooManyRequests)
			w.Header().Set("Retry-After", retryAfter(q.untilTomorrow()))
			writeError(w, http.StatusTooManyRequests, "rate_limited", "tenant quota of %d events per day reached (%d today, UTC): events are accepted again at 00:00 UTC", t.Quotas.EventsPerDay, n)
			return
		}
	}
	inst, release, err := r.pool.Acquire(req.Context(), t)
	if errors.Is(err, errBlocked) { // deleted since its key resolved
		writeError(w, http.StatusUnauthorized, "unauthorized", "unknown key")
		return
	}
	if err != nil {
		r.m.request(t.ID, http.StatusServiceUnavailable)
		r.log.LogAttrs(req.Context(), slog.LevelError, "tenant unavailable", slog.String("tenant", t.ID), slog.Any("err", err))
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this tenant's server could not be loaded: retry shortly")
		return
	}
	defer release()
	if t.Quotas.Items > 0 && createsItem(req, inst) {
		n, err := inst.Items(req.Context())
		if err == nil && n >= t.Quotas.Items {
			r.m.refused(t.ID, "items")
			r.m.request(t.ID, http.StatusTooManyRequests)
			writeError(w, http.StatusTooManyRequests, "rate_limited", "tenant quota of %d catalog items reached: delete items or ask for a larger quota", t.Quotas.Items)
			return
		}
	}
	var fresh []string
	if t.Quotas.Visitors > 0 && event {
		var count int64
		var err error
		if fresh, count, err = newVisitors(req.Context(), inst.Maps(), visitorIDs(req)); err != nil {
			r.log.LogAttrs(req.Context(), slog.LevelWarn, "visitors quota not checked", slog.String("tenant", t.ID), slog.Any("err", err))
		} else if len(fresh) > 0 && count+int64(len(fresh)) > t.Quotas.Visitors {
			r.m.refused(t.ID, "visitors")
			r.m.request(t.ID, http.StatusTooManyRequests)
			writeError(w, http.StatusTooManyRequests, "rate_limited", "tenant quota of %d visitors reached (%d known): events of %d new visitors refused; known visitors' events are accepted", t.Quotas.Visitors, count, len(fresh))
			return
		}
	}
	rec := &recorder{ResponseWriter: w, status: http.StatusOK, capture: event && req.URL.Path == "/v1/events"}
	inst.Handler().ServeHTTP(rec, req)
	r.m.request(t.ID, rec.status)
	if event && rec.status < 300 {
		accepted = acceptedEvents(req, rec)
		q.addEvents(accepted)
		if err := addVisitors(req.Context(), inst.Maps(), fresh); err != nil {
			r.log.LogAttrs(req.Context(), slog.LevelWarn, "visitors not counted", slog.String("tenant", t.ID), slog.Any("err", err))
		}
	}
}

// requestKey returns the key of the Authorization header or the key
// query parameter; bad when the header is not "Bearer <key>".
func requestKey(req *http.Request) (key string, fromHeader, bad bool) {
	if h := req.Header.Get("Authorization"); h != "" {
		const prefix = "bearer "
		if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
			return "", false, true
		}
		k := strings.TrimSpace(h[len(prefix):])
		return k, true, k == ""
	}
	return req.URL.Query().Get("key"), false, false
}

// maxPeek bounds the body read to find a key in it.
const maxPeek = 8 << 20

// bodyKey returns the "key" member of an events body (sendBeacon cannot
// set headers), leaving the body readable again.
func bodyKey(req *http.Request) string {
	if req.Body == nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxPeek+1))
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), req.Body))
	if err != nil || len(b) > maxPeek {
		return ""
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return ""
	}
	var v struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.Key
}

func isEventRoute(req *http.Request) bool {
	p := req.URL.Path
	return req.Method == http.MethodPost && (p == "/v1/events" || p == "/v1/identify") ||
		(req.Method == http.MethodGet || req.Method == http.MethodHead) && p == "/v1/pixel.gif"
}

// createsItem reports whether req may add an entry to the tenant's
// catalog: POST /v1/items, or PUT /v1/items/{id} of an id it does not
// hold (a PUT of a held one replaces it).
func createsItem(req *http.Request, inst Instance) bool {
	if req.Method == http.MethodPost && req.URL.Path == "/v1/items" {
		return true
	}
	raw, ok := strings.CutPrefix(req.URL.EscapedPath(), "/v1/items/")
	if req.Method != http.MethodPut || !ok || raw == "" || strings.Contains(raw, "/") {
		return false
	}
	id, err := url.PathUnescape(raw)
	if err != nil {
		return false // the API answers 400
	}
	held, err := inst.HasItem(req.Context(), id)
	return err != nil || !held
}

// acceptedEvents is the number of events an answered event request
// accepted: the "accepted" member of a batch's answer, else 1.
func acceptedEvents(req *http.Request, rec *recorder) int64 {
	if !rec.capture {
		return 1
	}
	var v struct {
		Accepted int64 `json:"accepted"`
	}
	if json.Unmarshal(rec.body.Bytes(), &v) != nil {
		return 0
	}
	return v.Accepted
}

// recorder records the status and, when capture, the (small) body.
type recorder struct {
	http.ResponseWriter
	status  int
	wrote   bool
	capture bool
	body    bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	if r.capture && r.body.Len() < 64<<10 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets server-sent events through.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// readyz answers /readyz: ready when the deployment's store answers.
func (r *Router) readyz(w http.ResponseWriter, req *http.Request) {
	if r.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if err := r.cfg.Ready(ctx); err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "store: %v", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "tenants_loaded": r.pool.Loaded()})
}

// preflight answers a keyless CORS preflight: the tenant (and so its
// allowed origins) is known only from the actual request's key, whose
// answer carries the tenant's CORS headers; the preflight lets the
// browser send it.
func preflight(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := req.Header.Get("Origin")
	if origin == "" {
		writeError(w, http.StatusForbidden, "forbidden", "CORS preflight without an Origin header")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// errorStatus maps an error kind to its HTTP status and code.
func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, errs.Invalid):
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, errs.NotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, errs.Conflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, errs.Unavailable):
		return http.StatusServiceUnavailable, "unavailable"
	default:
		return http.StatusInternalServerError, "internal"
	}
}

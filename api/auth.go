package api

import (
	"crypto/subtle"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// access is what a route requires of the caller.
type access uint8

const (
	// accessPublic: no key (health, readiness, the future tracker.js).
	accessPublic access = iota
	// accessSecret: the secret key only.
	accessSecret
	// accessPublishable: the publishable or the secret key (the route is
	// flagged "publishable allowed": events, the pixel, and the future
	// visitor-facing offer and promotion routes). Such routes answer CORS
	// for AllowedOrigins.
	accessPublishable
)

func (a access) String() string {
	switch a {
	case accessPublic:
		return "public"
	case accessSecret:
		return "secret"
	default:
		return "publishable"
	}
}

// keyKind tells the two kinds of keys apart.
type keyKind uint8

const (
	kindSecret keyKind = iota + 1
	kindPublishable
)

// keySource tells where a request carried its key.
type keySource uint8

const (
	fromHeader keySource = iota + 1 // Authorization: Bearer
	fromQuery                       // ?key=
	fromBody                        // {"key": ..., "events": [...]}
)

func (s keySource) String() string {
	switch s {
	case fromHeader:
		return "the Authorization header"
	case fromQuery:
		return "the key query parameter"
	default:
		return "the key member of the body"
	}
}

// principal is the authenticated caller: which configured key it used.
// Rotation keeps old and new keys apart (index), also in rate limiting.
type principal struct {
	kind  keyKind
	index int
}

// keyring holds the configured keys.
type keyring struct {
	secret, publishable []string
}

// lookup finds key among the configured keys in time independent of
// which key matches (every key is compared, in constant time).
func (k *keyring) lookup(key string) (principal, bool) {
	var found principal
	ok := 0
	b := []byte(key)
	for i, s := range k.secret {
		if subtle.ConstantTimeCompare(b, []byte(s)) == 1 {
			found, ok = principal{kindSecret, i}, 1
		}
	}
	for i, p := range k.publishable {
		if subtle.ConstantTimeCompare(b, []byte(p)) == 1 {
			found, ok = principal{kindPublishable, i}, 1
		}
	}
	return found, ok == 1
}

// bearer extracts the key of an "Authorization: Bearer <key>" header.
// ok is false when the header is present but not of that form.
func bearer(h string) (key string, ok bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	key = strings.TrimSpace(h[len(prefix):])
	return key, key != ""
}

var (
	errMissingKey = &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized,
		Message: "missing key: send the header Authorization: Bearer <key>"}
	errMalformedAuth = &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized,
		Message: "malformed Authorization header: want Bearer <key>"}
	errUnknownKey = &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized,
		Message: "unknown key"}
	errSecretOnly = &Error{Status: http.StatusForbidden, Code: CodeForbidden,
		Message: "this route needs the secret key; the publishable key may only send events"}
)

// authenticate checks the key of a request to route rt and, when it is
// accepted, records the principal and applies the rate limit. On
// POST /v1/events with no key in the header or the query, it leaves the
// decision to the handler (authBody), which reads the key from the body.
func (s *Server) authenticate(c echo.Context, st *reqState) error {
	rt := st.route
	if rt.access == accessPublic {
		return nil
	}
	r := c.Request()
	if h := r.Header.Get("Authorization"); h != "" {
		key, ok := bearer(h)
		if !ok {
			return errMalformedAuth
		}
		return s.admit(c, st, key, fromHeader)
	}
	if rt.access == accessPublishable {
		if key := c.QueryParam("key"); key != "" {
			return s.admit(c, st, key, fromQuery)
		}
		if rt.bodyKey {
			st.authPending = true
			return nil
		}
	}
	if key := c.QueryParam("key"); key != "" {
		return s.keyInQuery(key)
	}
	return errMissingKey
}

// leakedSecret is the answer to a secret key sent elsewhere than in the
// Authorization header.
func leakedSecret(src keySource) *Error {
	return newError(http.StatusUnauthorized, CodeUnauthorized,
		"a secret key is accepted only in the Authorization header, not in %s (it would leak into logs and pages: rotate it)", src)
}

// keyInQuery answers a request to a route that takes its key from the
// header only, which sent one in the query: a secret key there has
// leaked into URLs (logs, history).
func (s *Server) keyInQuery(key string) error {
	if p, ok := s.keys.lookup(key); ok && p.kind == kindSecret {
		return leakedSecret(fromQuery)
	}
	return newError(http.StatusUnauthorized, CodeUnauthorized,
		"key: this route takes the key only in the header Authorization: Bearer <key> (key= is for the events and the pixel)")
}

// authBody authenticates a request whose key came in the body.
func (s *Server) authBody(c echo.Context, st *reqState, key string) error {
	if !st.authPending {
		if p, ok := s.keys.lookup(key); key != "" && ok && p.kind == kindSecret {
			// Authenticated by the header, but the page also carries the
			// secret key: refused as when it comes alone.
			return leakedSecret(fromBody)
		}
		return nil
	}
	if key == "" {
		return errMissingKey
	}
	if err := s.admit(c, st, key, fromBody); err != nil {
		return err
	}
	st.authPending = false
	return nil
}

// admit checks key against the route's access and the request's origin,
// then takes a token from the caller's bucket.
func (s *Server) admit(c echo.Context, st *reqState, key string, src keySource) error {
	p, ok := s.keys.lookup(key)
	if !ok {
		return errUnknownKey
	}
	if p.kind == kindSecret && src != fromHeader {
		return leakedSecret(src)
	}
	if p.kind == kindPublishable {
		if st.route.access != accessPublishable {
			return errSecretOnly
		}
		if err := s.checkOrigin(c.Request()); err != nil {
			return err
		}
	}
	st.principal = p
	return s.limits.take(c, p, time.Now())
}

// checkOrigin enforces AllowedOrigins for a publishable-key request: the
// Origin header, or else the origin of the Referer, must be allowed.
func (s *Server) checkOrigin(r *http.Request) error {
	origin, from := r.Header.Get("Origin"), "Origin"
	if origin == "" {
		if ref := r.Header.Get("Referer"); ref != "" {
			origin, from = refererOrigin(ref), "Referer"
		}
	}
	if origin == "" {
		if s.cfg.RequireOrigin {
			return newError(http.StatusForbidden, CodeForbidden,
				"the publishable key needs an Origin or Referer header from an allowed origin")
		}
		return nil
	}
	if !s.origins.allowed(origin) {
		return newError(http.StatusForbidden, CodeForbidden,
			"origin %s (from the %s header) is not allowed to use the publishable key", strconv.Quote(shorten(origin, 100)), from)
	}
	return nil
}

// refererOrigin returns scheme://host of a Referer, or "invalid" when it
// has none (which no pattern allows).
func refererOrigin(ref string) string {
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "invalid"
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// originSet matches origins against AllowedOrigins.
type originSet struct {
	any     bool
	exact   map[string]bool
	suffix  []string // "https://*.shop.example" as scheme "https://" + suffix ".shop.example"
	schemes []string
}

func newOriginSet(patterns []string) *originSet {
	o := &originSet{exact: map[string]bool{}}
	for _, p := range patterns {
		p = strings.ToLower(p)
		if p == "*" {
			o.any = true
			continue
		}
		scheme, host, _ := strings.Cut(p, "://")
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			o.schemes = append(o.schemes, scheme+"://")
			o.suffix = append(o.suffix, "."+rest)
			continue
		}
		o.exact[p] = true
	}
	return o
}

func (o *originSet) allowed(origin string) bool {
	origin = strings.ToLower(origin)
	if origin == "null" || origin == "invalid" {
		return false
	}
	if o.any || o.exact[origin] {
		return true
	}
	for i, sfx := range o.suffix {
		host, ok := strings.CutPrefix(origin, o.schemes[i])
		if ok && len(host) > len(sfx) && strings.HasSuffix(host, sfx) && !strings.ContainsAny(host, "/?#@") {
			return true
		}
	}
	return false
}

// corsHeaders adds the CORS headers of an actual (non-preflight) request
// to a publishable route from an allowed origin. They are set before
// authentication, so that a browser can read error answers too.
func (s *Server) corsHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Add("Vary", "Origin")
	origin := c.Request().Header.Get("Origin")
	if origin == "" || !s.origins.allowed(origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id, X-Kairos-Error")
}

// preflight answers a CORS preflight (OPTIONS) for a publishable route
// offering methods: 204 with the CORS headers for an allowed origin, 403
// otherwise. No key is needed (browsers send none on preflights).
func (s *Server) preflight(methods string) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		origin := c.Request().Header.Get("Origin")
		if origin == "" {
			return newError(http.StatusForbidden, CodeForbidden, "CORS preflight without an Origin header")
		}
		if !s.origins.allowed(origin) {
			return newError(http.StatusForbidden, CodeForbidden, "origin %s is not allowed", strconv.Quote(shorten(origin, 100)))
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		return c.NoContent(http.StatusNoContent)
	}
}

// limiter keeps one token bucket per secret key and one per (publishable
// key, client IP), at most max buckets.
type limiter struct {
	secret, publishable RateLimit
	max                 int
	ip                  func(c echo.Context) string

	mu      sync.Mutex
	buckets map[bucketKey]*rate.Limiter
}

type bucketKey struct {
	p  principal
	ip string // "" for secret keys
}

func newLimiter(secret, publishable RateLimit, max int) *limiter {
	return &limiter{secret: secret, publishable: publishable, max: max,
		ip:      func(c echo.Context) string { return c.RealIP() },
		buckets: map[bucketKey]*rate.Limiter{}}
}

// take takes one token for p at now, or returns a 429 *Error with
// Retry-After set on the response.
func (l *limiter) take(c echo.Context, p principal, now time.Time) error {
	rl := l.secret
	k := bucketKey{p: p}
	if p.kind == kindPublishable {
		rl = l.publishable
		k.ip = l.ip(c)
	}
	if rl.unlimited() {
		return nil
	}
	l.mu.Lock()
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = rate.NewLimiter(rate.Limit(rl.Rate), rl.Burst)
		l.buckets[k] = b
	}
	res := b.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay > 0 {
		res.CancelAt(now)
	}
	l.mu.Unlock()
	if !res.OK() || delay > 0 {
		c.Response().Header().Set("Retry-After", retryAfterSeconds(delay))
		return newError(http.StatusTooManyRequests, CodeRateLimited,
			"rate limit of %s requests/s (burst %d) exceeded for this key; retry after %s s",
			strconv.FormatFloat(rl.Rate, 'g', -1, 64), rl.Burst, retryAfterSeconds(delay))
	}
	return nil
}

// evict drops every full bucket (a full bucket is the same as a new one),
// then, if still at least 90% of max are left, arbitrary ones (a client
// losing its bucket gets a full one back: the bound on memory wins).
// l.mu is held.
func (l *limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
	target := l.max - l.max/10 - 1
	for k := range l.buckets {
		if len(l.buckets) <= target {
			break
		}
		delete(l.buckets, k)
	}
}

// retryAfterSeconds formats d as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := math.Ceil(d.Seconds())
	if s < 1 || math.IsNaN(s) {
		s = 1
	}
	if s > 86400 {
		s = 86400
	}
	return strconv.Itoa(int(s))
}

// shorten cuts s to at most n bytes (on a rune boundary) for messages.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

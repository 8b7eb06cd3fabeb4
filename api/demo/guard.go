package demo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kairoshq/kairos/engine"
)

// Cookies of the shop's visitors.
const (
	// visitorCookie is the tracker's first-party cookie holding the
	// visitor id (the tracker reads it first, so the id the shop mints is
	// the one the page's events carry). Readable by scripts.
	visitorCookie = "kairos_vid"
	// signatureCookie holds the shop's signature of the visitor id
	// (HttpOnly): only ids the shop minted are asked about.
	signatureCookie = "kairos_demo_vsig"
	// cookieMaxAge is the lifetime of both cookies (the tracker's own
	// lifetime for kairos_vid).
	cookieMaxAge = 365 * 24 * time.Hour
)

// securityHeaders sets the headers of every answer of the shop: a
// Content-Security-Policy that allows the shop's own scripts only
// (site.js and the tracker at /tracker.js: no inline script), the shop's
// own origin for connections (events, promotion stream, the
// recommendation proxy) and images (plus cfg.Origin, where the offers'
// images point), forbids framing (clickjacking) and plugins; nosniff, so
// that nothing is run under another type than the one declared; and a
// referrer policy that keeps paths on the shop. Inline styles are
// allowed: the tracker styles the promotions it renders through
// element.style.cssText, and a department banner is an inline
// background (CSS cannot run script).
func (s *Shop) securityHeaders(next http.Handler) http.Handler {
	csp := "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' " + s.cfg.Origin +
		"; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		next.ServeHTTP(w, r)
	})
}

// visitorSigner signs the visitor ids the shop mints.
type visitorSigner struct{ key []byte }

// newVisitorSigner derives the signing key from secret (a distinct
// purpose: the key is never used for anything else).
func newVisitorSigner(secret []byte) visitorSigner {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("kairos demo shop: visitor cookie v1"))
	return visitorSigner{key: m.Sum(nil)}
}

func (v visitorSigner) sign(id string) string {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify reports whether sig is the shop's signature of id, and id a
// visitor id the shop could have minted (never a reserved "user:" id).
func (v visitorSigner) verify(id, sig string) bool {
	if id == "" || strings.HasPrefix(id, engine.UserKey("")) || len(id) > 64 {
		return false
	}
	return hmac.Equal([]byte(v.sign(id)), []byte(sig))
}

// newVisitorID returns a random RFC 4122 version 4 id, the tracker's own
// format.
func newVisitorID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// visitor returns the request's visitor id when it carries one the shop
// minted: present reports whether a visitor cookie came at all.
func (s *Shop) visitor(r *http.Request) (id string, ok, present bool) {
	ck, err := r.Cookie(visitorCookie)
	if err != nil || ck.Value == "" {
		return "", false, false
	}
	// The tracker writes the cookie with encodeURIComponent; minted ids
	// need no escaping, anything else is not one of them.
	id = ck.Value
	sig, err := r.Cookie(signatureCookie)
	if err != nil || !s.signer.verify(id, sig.Value) {
		return "", false, true
	}
	return id, true, true
}

// ensureVisitor gives a page's visitor an id the shop minted: it keeps a
// signed one, and replaces a missing, foreign or forged one (a cookie
// naming someone else's visitor id, or a reserved "user:" id) with a new
// random id and its signature. The tracker picks the cookie up.
func (s *Shop) ensureVisitor(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := s.visitor(r); ok {
		return
	}
	id := newVisitorID()
	secure := r.TLS != nil
	http.SetCookie(w, &http.Cookie{Name: visitorCookie, Value: id, Path: "/", MaxAge: int(cookieMaxAge.Seconds()),
		SameSite: http.SameSiteLaxMode, Secure: secure})
	http.SetCookie(w, &http.Cookie{Name: signatureCookie, Value: s.signer.sign(id), Path: "/", MaxAge: int(cookieMaxAge.Seconds()),
		SameSite: http.SameSiteLaxMode, Secure: secure, HttpOnly: true})
}

// Rate is a token bucket: PerSecond tokens a second, at most Burst.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Default rates of the shop's calls to the API (Config.ClientRate,
// Config.TotalRate) and the most clients it keeps a bucket for.
var (
	DefaultClientRate = Rate{PerSecond: 10, Burst: 40}
	DefaultTotalRate  = Rate{PerSecond: 200, Burst: 400}
)

const maxRateClients = 10_000

// apiBudget bounds the shop's calls to the Kairos API: one bucket per
// client address and one for the whole shop, so that one client cannot
// starve the others and the shop as a whole asks Kairos at a bounded
// rate (with its own key: its calls never take from the site's secret
// key).
type apiBudget struct {
	client Rate
	total  *rate.Limiter

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newAPIBudget(client, total Rate) *apiBudget {
	return &apiBudget{client: client, total: rate.NewLimiter(rate.Limit(total.PerSecond), total.Burst),
		buckets: map[string]*rate.Limiter{}}
}

// take takes a token from the client's bucket and the shop's, or
// returns how long to wait (nothing is taken then).
func (b *apiBudget) take(client string, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.buckets[client]
	if l == nil {
		if len(b.buckets) >= maxRateClients {
			b.evict(now)
		}
		l = rate.NewLimiter(rate.Limit(b.client.PerSecond), b.client.Burst)
		b.buckets[client] = l
	}
	rc := l.ReserveN(now, 1)
	if d := rc.DelayFrom(now); !rc.OK() || d > 0 {
		rc.CancelAt(now)
		return false, d
	}
	rt := b.total.ReserveN(now, 1)
	if d := rt.DelayFrom(now); !rt.OK() || d > 0 {
		rt.CancelAt(now)
		rc.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict drops the full buckets (the same as new ones), then arbitrary
// ones down to 90 % of the bound. b.mu is held.
func (b *apiBudget) evict(now time.Time) {
	for k, l := range b.buckets {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(b.buckets, k)
		}
	}
	for k := range b.buckets {
		if len(b.buckets) < maxRateClients*9/10 {
			break
		}
		delete(b.buckets, k)
	}
}

// remoteIP is the default Config.ClientIP: the peer address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

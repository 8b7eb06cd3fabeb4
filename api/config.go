package api

import (
	"errors"
	"fmt"
	"github.com/kairoshq/kairos/internal/httpx"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// Defaults of Config; see the fields.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultMaxBodyBytes      = signals.DefaultMaxBatchBytes // 1 MiB
	DefaultMaxBatch          = signals.DefaultMaxBatch      // 500 events
	DefaultMaxItemBytes      = 64 << 10
	DefaultResults           = 10
	DefaultMaxResults        = 100
	DefaultPageSize          = 50
	DefaultMaxPageSize       = 1000
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultRequestTimeout    = 10 * time.Second
	DefaultPublishTimeout    = 5 * time.Second
	DefaultReadyTimeout      = 2 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultRetryAfter        = 2 * time.Second
	DefaultMaxRateClients    = 100_000
	DefaultMaxStreams        = 10_000
	DefaultMaxVisitorStreams = 8
	DefaultMaxEventRequests  = 256
)

// Default rate limits: the secret key is used by the site's back end for
// every page render, so it gets a large bucket; the publishable key is
// public and limited per client IP.
var (
	DefaultSecretRate      = RateLimit{Rate: 5000, Burst: 10000}
	DefaultPublishableRate = RateLimit{Rate: 20, Burst: 100}
)

// RateLimit is a token bucket: Rate tokens per second, at most Burst
// tokens; each request takes one. A zero Rate or Burst means its default.
// Rate = math.Inf(1) (or float64(rate.Inf)) disables the limit.
type RateLimit struct {
	Rate  float64 // requests per second
	Burst int     // bucket size: requests allowed at once after a pause
}

func (r RateLimit) unlimited() bool { return rate.Limit(r.Rate) >= rate.Inf } // rate.Inf is MaxFloat64

// Config configures a Server. Start from Config{} (every zero field means
// its default, see Defaults) and set at least SecretKeys. New calls
// Defaults and Validate.
type Config struct {
	// Addr is the TCP address Serve listens on (default 127.0.0.1:8080:
	// loopback only; set ":8080" to listen on every interface).
	Addr string

	// SecretKeys may call every route. Several keys allow rotation: add the
	// new key, move the clients, remove the old one. At least one is
	// required (LoadOrCreateKeys makes one). Secret keys are accepted only
	// in the Authorization header, never in a URL or a body.
	SecretKeys []string
	// PublishableKeys may only send events (POST /v1/events and the pixel)
	// and use routes flagged publishable; they are public (they are in the
	// page), so their use is limited to AllowedOrigins and rate limited per
	// client IP. They may come as "Authorization: Bearer", as the "key"
	// query parameter, or as the "key" member of a batch body.
	PublishableKeys []string
	// AllowedOrigins lists the browser origins allowed to use a publishable
	// key, and answered with CORS headers: "https://shop.example" (exact,
	// scheme and host and optional port), "https://*.shop.example" (any
	// subdomain, not the domain itself) or "*" (any origin except "null").
	// Empty: no browser origin may use the publishable key.
	AllowedOrigins []string
	// IdentitySecrets are the site's identity verification secrets: the
	// site's back end signs each signed-in user's id with one of them
	// (signals.UserHash: the hex HMAC-SHA256 of the user id) and the page
	// passes the hash to kairos.identify(userId, userHash), so that the
	// publishable key cannot claim an arbitrary user. Several allow
	// rotation. Each is at least 16 bytes of printable ASCII without
	// spaces or commas (`openssl rand -hex 32` makes a good one).
	IdentitySecrets []string
	// IdentityVerification is what POST /v1/events and the pixel require
	// of an event with a user sent with a publishable key (the secret key
	// is trusted): IdentityRequired (the default when IdentitySecrets is
	// set) rejects the event unless its user_hash verifies;
	// IdentityOptional rejects a user_hash that does not verify but
	// accepts an event without one (to migrate a site); IdentityOff (the
	// default without IdentitySecrets) trusts the user id. In every mode
	// user_hash is removed before the event is published.
	IdentityVerification IdentityVerification
	// RequireOrigin refuses publishable-key requests that carry neither an
	// Origin nor a Referer header. By default they are accepted: email
	// clients and servers send none, and the origin check only stops other
	// web sites from using the key in their visitors' browsers (anyone can
	// forge headers outside a browser).
	RequireOrigin bool

	// MaxBodyBytes bounds a POST /v1/events body (default 1 MiB); larger
	// bodies are answered 413.
	MaxBodyBytes int64
	// MaxBatch bounds the events of one POST /v1/events body (default 500).
	MaxBatch int
	// EventLimits bound each event (see signals.Limits; zero fields mean
	// the defaults). Its MaxBatch and MaxBatchBytes must be zero or equal
	// to MaxBatch and MaxBodyBytes, which set them.
	EventLimits signals.Limits
	// MaxItemBytes bounds an item body of POST and PUT /v1/items (default
	// 64 KiB).
	MaxItemBytes int64
	// DefaultResults is n when a recommendation request gives none
	// (default 10); MaxResults is the largest n accepted (default 100).
	DefaultResults, MaxResults int
	// DefaultPageSize and MaxPageSize bound GET /v1/items?limit=
	// (defaults 50 and 1000).
	DefaultPageSize, MaxPageSize int

	// SecretRate limits each secret key (default 5000/s, burst 10000).
	SecretRate RateLimit
	// PublishableRate limits each (publishable key, client IP) pair
	// (default 20/s, burst 100).
	PublishableRate RateLimit
	// MaxRateClients bounds the number of token buckets kept (default
	// 100,000); idle full buckets are dropped first.
	MaxRateClients int
	// TrustProxy takes the client IP from X-Forwarded-For when the direct
	// peer is a private, link-local or loopback address (a reverse proxy).
	// By default the peer address is the client IP.
	TrustProxy bool
	// TrustedProxies lists the reverse proxies whose X-Forwarded-For is
	// believed, as CIDRs ("10.0.0.0/8", "2001:db8::/32") or single
	// addresses ("192.0.2.10"): when the direct peer is in one of them, the
	// client IP is the right-most address of X-Forwarded-For that is not a
	// trusted proxy. Anyone else's X-Forwarded-For is ignored, since any
	// client can send one. The client IP keys the publishable key's rate
	// limit. Empty (and TrustProxy false): the peer address is the client
	// IP.
	TrustedProxies []string

	// MaxStreams bounds the promotion streams (GET /v1/promotions/stream)
	// open at once on this server (default 10,000); MaxVisitorStreams
	// bounds those of one visitor (default 8: a few tabs). Each open
	// stream holds a connection, a file descriptor, two goroutines and
	// about 30 KB (BenchmarkPromotionStreamsOpen): 10,000 streams are
	// about 300 MB. A stream beyond either limit is answered 503 with
	// Retry-After at once.
	MaxStreams, MaxVisitorStreams int

	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// net/http server timeouts (defaults 5 s, 30 s, 30 s, 2 min).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// RequestTimeout bounds the engine calls of one request (default 10 s;
	// exceeded: 504).
	RequestTimeout time.Duration
	// PublishTimeout bounds publishing one batch (default 5 s; exceeded:
	// 503, outcome unknown: the client retries with the same ids).
	PublishTimeout time.Duration
	// MaxEventRequests bounds the event requests (POST /v1/events, the
	// pixel, POST /v1/identify) served at once (default 256; negative: no
	// bound). Beyond it a request is answered 503 with Retry-After at
	// once, before its body is read, and none of its events is accepted
	// (admission control: under overload the server keeps publishing at
	// its best rate instead of queueing requests until they time out).
	MaxEventRequests int
	// ReadyTimeout bounds the Checker call of /readyz (default 2 s).
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown Serve performs when its
	// context ends (default 10 s).
	ShutdownTimeout time.Duration
	// RetryAfter is the Retry-After of 503 answers (default 2 s, sent in
	// whole seconds).
	RetryAfter time.Duration

	// MetricsPublic serves /metrics without a key. By default /metrics
	// needs the secret key (Prometheus: authorization.credentials).
	MetricsPublic bool

	// Logger receives internal errors and server lifecycle messages; nil
	// discards.
	Logger *slog.Logger
	// Registry receives the API's metrics and is served on /metrics; pass
	// the same registry to the engine so that its metrics appear too. nil:
	// Defaults makes a new one.
	Registry *prometheus.Registry
	// Now is the clock used to fill and bound event timestamps; nil means
	// time.Now.
	Now func() time.Time
}

// IdentityVerification is the identity verification mode (see
// Config.IdentityVerification).
type IdentityVerification string

// The identity verification modes; "" means IdentityRequired when
// identity secrets are configured, else IdentityOff.
const (
	IdentityOff      IdentityVerification = "off"
	IdentityOptional IdentityVerification = "optional"
	IdentityRequired IdentityVerification = "required"
)

// ParseIdentityVerification reads a mode: off, optional, required, or ""
// (the default of Config.Defaults).
func ParseIdentityVerification(s string) (IdentityVerification, error) {
	switch m := IdentityVerification(s); m {
	case "", IdentityOff, IdentityOptional, IdentityRequired:
		return m, nil
	}
	return "", fmt.Errorf("identity verification %q: want off, optional or required", s)
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	setRate := func(v *RateLimit, d RateLimit) {
		defaults.Set(&v.Rate, d.Rate)
		defaults.Set(&v.Burst, d.Burst)
	}
	defaults.Set(&c.Addr, DefaultAddr)
	defaults.Set(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	defaults.Set(&c.MaxBatch, DefaultMaxBatch)
	defaults.Set(&c.MaxItemBytes, DefaultMaxItemBytes)
	defaults.Set(&c.DefaultResults, DefaultResults)
	defaults.Set(&c.MaxResults, DefaultMaxResults)
	defaults.Set(&c.DefaultPageSize, DefaultPageSize)
	defaults.Set(&c.MaxPageSize, DefaultMaxPageSize)
	setRate(&c.SecretRate, DefaultSecretRate)
	setRate(&c.PublishableRate, DefaultPublishableRate)
	defaults.Set(&c.MaxRateClients, DefaultMaxRateClients)
	defaults.Set(&c.MaxStreams, DefaultMaxStreams)
	defaults.Set(&c.MaxVisitorStreams, DefaultMaxVisitorStreams)
	defaults.Set(&c.MaxEventRequests, DefaultMaxEventRequests)
	defaults.Set(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	defaults.Set(&c.ReadTimeout, DefaultReadTimeout)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	defaults.Set(&c.IdleTimeout, DefaultIdleTimeout)
	defaults.Set(&c.RequestTimeout, DefaultRequestTimeout)
	defaults.Set(&c.PublishTimeout, DefaultPublishTimeout)
	defaults.Set(&c.ReadyTimeout, DefaultReadyTimeout)
	defaults.Set(&c.ShutdownTimeout, DefaultShutdownTimeout)
	defaults.Set(&c.RetryAfter, DefaultRetryAfter)
	if c.IdentityVerification == "" {
		c.IdentityVerification = IdentityOff
		if len(c.IdentitySecrets) > 0 {
			c.IdentityVerification = IdentityRequired
		}
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	c.Now = defaults.Clock(c.Now)
	return c
}

// minKeyBytes is the shortest key accepted: LoadOrCreateKeys makes keys
// of 3 + 32 bytes.
const minKeyBytes = 16

// Validate reports every problem of c at once (errors.Join), each naming
// the field. Zero fields are problems only where no default exists
// (SecretKeys); call Defaults first to validate what New will use.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("api: config: "+format, args...)) }

	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			add("Addr %q: %v", c.Addr, err)
		}
	}
	if len(c.SecretKeys) == 0 {
		add("SecretKeys: at least one secret key is required (LoadOrCreateKeys makes one)")
	}
	seen := map[string]string{}
	checkKeys := func(field string, keys []string, wrongPrefix string) {
		for i, k := range keys {
			switch {
			case len(k) < minKeyBytes:
				add("%s[%d]: %d bytes long, shorter than the minimum %d", field, i, len(k), minKeyBytes)
			case !keyChars(k):
				add("%s[%d]: only printable ASCII without spaces or commas is allowed", field, i)
			case strings.HasPrefix(k, wrongPrefix):
				add("%s[%d]: starts with %q, the prefix of the other kind of key", field, i, wrongPrefix)
			}
			if prev, dup := seen[k]; dup {
				add("%s[%d]: the same key is already in %s", field, i, prev)
			} else {
				seen[k] = fmt.Sprintf("%s[%d]", field, i)
			}
		}
	}
	checkKeys("SecretKeys", c.SecretKeys, "pk_")
	checkKeys("PublishableKeys", c.PublishableKeys, "sk_")
	for i, k := range c.IdentitySecrets {
		switch {
		case len(k) < minKeyBytes:
			add("IdentitySecrets[%d]: %d bytes long, shorter than the minimum %d", i, len(k), minKeyBytes)
		case !keyChars(k):
			add("IdentitySecrets[%d]: only printable ASCII without spaces or commas is allowed", i)
		}
		if prev, dup := seen[k]; dup {
			add("IdentitySecrets[%d]: the same value is already in %s: use a secret of its own", i, prev)
		}
	}
	if _, err := ParseIdentityVerification(string(c.IdentityVerification)); err != nil {
		add("IdentityVerification: %v", err)
	} else if (c.IdentityVerification == IdentityOptional || c.IdentityVerification == IdentityRequired) && len(c.IdentitySecrets) == 0 {
		add("IdentityVerification %s needs IdentitySecrets", c.IdentityVerification)
	}
	for i, o := range c.AllowedOrigins {
		if err := httpx.CheckOrigin(o); err != nil {
			add("AllowedOrigins[%d] %q: %v", i, o, err)
		}
	}

	if c.MaxBodyBytes < 0 {
		add("MaxBodyBytes is negative (%d)", c.MaxBodyBytes)
	}
	if c.MaxBatch < 0 {
		add("MaxBatch is negative (%d)", c.MaxBatch)
	}
	if err := c.EventLimits.Validate(); err != nil {
		add("EventLimits: %w", err)
	}
	if m := c.EventLimits.MaxBatch; m != 0 && m != c.MaxBatch {
		add("EventLimits.MaxBatch (%d) differs from MaxBatch (%d): set MaxBatch only", m, c.MaxBatch)
	}
	if m := c.EventLimits.MaxBatchBytes; m != 0 && int64(m) != c.MaxBodyBytes {
		add("EventLimits.MaxBatchBytes (%d) differs from MaxBodyBytes (%d): set MaxBodyBytes only", m, c.MaxBodyBytes)
	}
	if c.MaxBodyBytes > math.MaxInt32 {
		add("MaxBodyBytes %d is larger than 2 GiB", c.MaxBodyBytes)
	}
	if c.MaxItemBytes < 0 {
		add("MaxItemBytes is negative (%d)", c.MaxItemBytes)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"DefaultResults", c.DefaultResults}, {"MaxResults", c.MaxResults},
		{"DefaultPageSize", c.DefaultPageSize}, {"MaxPageSize", c.MaxPageSize},
		{"MaxRateClients", c.MaxRateClients},
		{"MaxStreams", c.MaxStreams}, {"MaxVisitorStreams", c.MaxVisitorStreams},
	} {
		if f.v < 0 {
			add("%s is negative (%d)", f.name, f.v)
		}
	}
	if c.MaxResults > 0 && c.DefaultResults > c.MaxResults {
		add("DefaultResults (%d) is larger than MaxResults (%d)", c.DefaultResults, c.MaxResults)
	}
	if c.MaxStreams > 0 && c.MaxVisitorStreams > c.MaxStreams {
		add("MaxVisitorStreams (%d) is larger than MaxStreams (%d)", c.MaxVisitorStreams, c.MaxStreams)
	}
	for i, p := range c.TrustedProxies {
		if _, err := ParseTrustedProxy(p); err != nil {
			add("TrustedProxies[%d]: %v", i, err)
		}
	}
	if c.MaxPageSize > 0 && c.DefaultPageSize > c.MaxPageSize {
		add("DefaultPageSize (%d) is larger than MaxPageSize (%d)", c.DefaultPageSize, c.MaxPageSize)
	}
	for _, r := range []struct {
		name string
		v    RateLimit
	}{{"SecretRate", c.SecretRate}, {"PublishableRate", c.PublishableRate}} {
		if math.IsNaN(r.v.Rate) || r.v.Rate < 0 {
			add("%s.Rate must be a non-negative number or +Inf (got %v)", r.name, r.v.Rate)
		}
		if r.v.Burst < 0 {
			add("%s.Burst is negative (%d)", r.name, r.v.Burst)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"ReadTimeout", c.ReadTimeout},
		{"WriteTimeout", c.WriteTimeout}, {"IdleTimeout", c.IdleTimeout},
		{"RequestTimeout", c.RequestTimeout}, {"PublishTimeout", c.PublishTimeout},
		{"ReadyTimeout", c.ReadyTimeout}, {"ShutdownTimeout", c.ShutdownTimeout},
		{"RetryAfter", c.RetryAfter},
	} {
		if d.v < 0 {
			add("%s is negative (%v)", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}

// keyChars reports whether k is printable ASCII without space or comma
// (commas separate keys in lists, see ParseKeyList).
func keyChars(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// ParseKeyList splits a comma-separated list of keys (a flag or an
// environment variable such as KAIROS_SECRET_KEYS="sk_new,sk_old"),
// trimming spaces and dropping empty entries.
func ParseKeyList(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// ParseTrustedProxy parses a TrustedProxies entry: a CIDR
// ("10.0.0.0/8") or a single IP address ("192.0.2.10", meaning /32 or
// /128). The error names the entry and says what is expected.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (want e.g. 10.0.0.0/8 or 2001:db8::/32)", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: a zone is not allowed in a CIDR", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has bits set beyond its /%d mask (did you mean %s?)", s, p.Bits(), p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an IP address (want e.g. 10.0.0.0/8 or 192.0.2.10)", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

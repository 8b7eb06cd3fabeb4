package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options tune a Client; the zero value of a field is its default.
type Options struct {
	// HTTPClient sends the requests (default: a client with a 30 s
	// timeout; a promotion stream uses it without the timeout).
	HTTPClient *http.Client
	// Retries is how many times a retryable failure is retried (default
	// 4; negative: never).
	Retries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// tries when the server gives no Retry-After (default 100 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxBatch is the most events SendEvents sends in one request
	// (default and maximum 500, the server's limit).
	MaxBatch int
	// UserAgent is sent with every request (default "kairos-go-client").
	UserAgent string
}

// Client calls one Kairos server with one key: the secret key for every
// call, or the publishable key for SendEvents, Offers and Promotions. It
// is safe for concurrent use.
type Client struct {
	base *url.URL
	key  string
	opt  Options
	hc   *http.Client
}

// New returns a client of the server at baseURL (e.g.
// "http://localhost:8080") with key (sk_… or pk_…).
func New(baseURL, key string, opts ...Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	if key == "" {
		return nil, errors.New("client: key: missing (sk_… or pk_…)")
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Retries == 0 {
		o.Retries = 4
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.MaxBatch <= 0 || o.MaxBatch > 500 {
		o.MaxBatch = 500
	}
	if o.UserAgent == "" {
		o.UserAgent = "kairos-go-client"
	}
	return &Client{base: u, key: key, opt: o, hc: o.HTTPClient}, nil
}

// Error is an answer of the API other than 2xx.
type Error struct {
	Status    int    // HTTP status
	Code      string // the API's code: invalid, not_found, conflict, rate_limited, unavailable, …
	Message   string // names the field or limit at fault
	RequestID string // X-Request-Id: quote it when reporting a problem
	// RetryAfter is the server's Retry-After (429, 503), 0 without one.
	RetryAfter time.Duration
	// Body is the answer's body when it has one beyond the error (e.g.
	// the rejected events of a batch answered 400).
	Body []byte
}

func (e *Error) Error() string {
	return fmt.Sprintf("kairos: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsNotFound reports whether err is a 404 of the API.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is a 409 of the API.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsInvalid reports whether err is a 400 of the API.
func IsInvalid(err error) bool { return hasStatus(err, http.StatusBadRequest) }

func hasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// retryable reports whether a try's failure may be retried and the wait
// the server asked for.
func retryable(err error) (bool, time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusBadGateway:
			return true, e.RetryAfter
		}
		return false, 0
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false, 0
	}
	return true, 0 // a network error
}

// backoff is the wait before try n (1-based) without a Retry-After:
// MinBackoff·2^(n-1), at most MaxBackoff, with ±25 % jitter.
func (c *Client) backoff(n int) time.Duration {
	d := float64(c.opt.MinBackoff) * math.Pow(2, float64(n-1))
	d = math.Min(d, float64(c.opt.MaxBackoff))
	return time.Duration(d * (0.75 + 0.5*mrand.Float64()))
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         any // JSON-encoded when not nil
	retry        bool
	want         []int // accepted statuses (default 200)
}

// do sends r (retrying as the package documents) and decodes a JSON
// answer into out (when not nil). It returns the final status.
func (c *Client) do(ctx context.Context, r request, out any) (int, error) {
	var payload []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, fmt.Errorf("client: %s %s: encode: %w", r.method, r.path, err)
		}
		payload = b
	}
	var last error
	for try := 1; ; try++ {
		status, err := c.once(ctx, r, payload, out)
		if err == nil {
			return status, nil
		}
		last = err
		ok, wait := retryable(err)
		if !r.retry || !ok || try > c.opt.Retries {
			return status, last
		}
		if wait <= 0 {
			wait = c.backoff(try)
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
			return status, last // the deadline would pass while waiting
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, errors.Join(last, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, payload []byte) (*http.Request, error) {
	u := *c.base
	u.RawPath = c.base.Path + path // path is escaped (see p)
	u.Path, _ = url.PathUnescape(u.RawPath)
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("User-Agent", c.opt.UserAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func (c *Client) once(ctx context.Context, r request, payload []byte, out any) (int, error) {
	req, err := c.newRequest(ctx, r.method, r.path, r.query, payload)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("client: %s %s: read: %w", r.method, r.path, err)
	}
	want := r.want
	if want == nil {
		want = []int{http.StatusOK}
	}
	for _, w := range want {
		if resp.StatusCode == w {
			if out != nil && len(body) > 0 {
				if err := json.Unmarshal(body, out); err != nil {
					return resp.StatusCode, fmt.Errorf("client: %s %s: decode: %w", r.method, r.path, err)
				}
			}
			return resp.StatusCode, nil
		}
	}
	return resp.StatusCode, apiError(resp, body)
}

// apiError reads an error answer.
func apiError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"), Body: body}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	} else {
		e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(body))
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}

// p joins path segments, percent-encoding each ("sku/3" is "sku%2F3").
func p(segs ...string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// newID returns a random event id ("go-" and 24 hex digits).
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "go-" + hex.EncodeToString(b[:])
}

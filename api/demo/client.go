package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
)

// apiClient is the shop's back end talking to the Kairos API with the
// secret key, as a real shop's server would. Requests go through the
// API's http.Handler in process (every middleware: auth, rate limits,
// metrics), without a network hop.
type apiClient struct {
	handler atomic.Pointer[http.Handler]
	secret  string
	http    *http.Client
}

func newAPIClient(secret string) *apiClient {
	c := &apiClient{secret: secret}
	c.http = &http.Client{Transport: handlerTransport{c}}
	return c
}

// handlerTransport is an http.RoundTripper that serves a request with the
// API's handler.
type handlerTransport struct{ c *apiClient }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	hp := t.c.handler.Load()
	if hp == nil {
		return nil, fmt.Errorf("demo: the API handler is not set (Shop.SetAPI)")
	}
	w := &recorder{header: http.Header{}, status: http.StatusOK}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	(*hp).ServeHTTP(w, r)
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())), ContentLength: int64(w.body.Len()), Request: r,
	}, nil
}

// recorder is a minimal http.ResponseWriter that keeps the answer.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.body.Write(b)
}

// apiError is a non-2xx answer of the API.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("demo: %s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

// do calls the API with the secret key: body (if not nil) is sent as
// JSON, a 2xx answer is decoded into out (if not nil).
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := "http://kairos.internal" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("demo: %s %s: %w", method, path, err)
	}
	return nil
}

package demo

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/kairoshq/kairos/api/client"
)

// apiClient is the shop's back end talking to the Kairos API with the
// secret key, as a real shop's server would, through the Go client
// (package api/client). Requests go through the API's http.Handler in
// process (every middleware: auth, rate limits, metrics), without a
// network hop. It does not retry: a page falls back on what it has.
type apiClient struct {
	handler atomic.Pointer[http.Handler]
	*client.Client
}

// newAPIClient returns the shop's client; secret is not empty (New
// checked it).
func newAPIClient(secret string) (*apiClient, error) {
	c := &apiClient{}
	cl, err := client.New("http://kairos.internal", secret,
		client.Options{HTTPClient: &http.Client{Transport: handlerTransport{c}}, Retries: -1, UserAgent: "kairos-demo-shop"})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	c.Client = cl
	return c, nil
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

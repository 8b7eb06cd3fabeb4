package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// rawHTTP sends GET requests over a pool of HTTP/1.1 keep-alive
// connections, one request per connection at a time, and reads the
// answers with net/http's own parser (http.ReadResponse: status line,
// headers, Content-Length or chunked bodies). It leaves out what an
// http.Client adds per request — a Transport's read and write goroutines
// per connection, the hand-offs between them, cookie and redirect
// handling — so that a load generator on the machine it measures takes
// less of the CPU the server needs: on 2 shared cores `kairos bench http`
// spent ~117 µs of CPU per request through the Go client.
type rawHTTP struct {
	addr    string // host:port dialled
	head    string // the request's fixed lines after the request line
	timeout time.Duration

	mu   sync.Mutex
	idle []*rawConn
}

// rawConn is one keep-alive connection with its read buffer.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

// newRawHTTP returns a client for base (http://host:port only; https is
// not supported) sending the header lines of hdr with every request.
func newRawHTTP(base string, hdr http.Header, timeout time.Duration) (*rawHTTP, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("raw client: url %q: %w", base, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("raw client: url %q: only http://host[:port] is supported (use --client go)", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	head := "Host: " + u.Host + "\r\n"
	for k, vs := range hdr {
		for _, v := range vs {
			head += k + ": " + v + "\r\n"
		}
	}
	return &rawHTTP{addr: addr, head: head + "\r\n", timeout: timeout}, nil
}

// request returns the bytes of a GET of target (path and query).
func (h *rawHTTP) request(target string) []byte {
	return []byte("GET " + target + " HTTP/1.1\r\n" + h.head)
}

// do sends req (from request) and reads its answer; an answer other than
// 2xx is an error. A connection that failed or that the server closes is
// dropped, not reused.
func (h *rawHTTP) do(ctx context.Context, req []byte) error {
	rc, err := h.conn(ctx)
	if err != nil {
		return err
	}
	status, keep, err := rc.roundTrip(req, time.Now().Add(h.timeout))
	if err != nil || !keep {
		rc.c.Close()
	} else {
		h.put(rc)
	}
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

// roundTrip writes req and reads the whole answer before deadline.
func (rc *rawConn) roundTrip(req []byte, deadline time.Time) (status int, keep bool, err error) {
	if err := rc.c.SetDeadline(deadline); err != nil {
		return 0, false, fmt.Errorf("raw client: %w", err)
	}
	if _, err := rc.c.Write(req); err != nil {
		return 0, false, fmt.Errorf("raw client: write: %w", err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0, false, fmt.Errorf("raw client: read: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, fmt.Errorf("raw client: body: %w", err)
	}
	return resp.StatusCode, !resp.Close, nil
}

// conn returns an idle connection, or dials one.
func (h *rawHTTP) conn(ctx context.Context) (*rawConn, error) {
	h.mu.Lock()
	if n := len(h.idle); n > 0 {
		rc := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		return rc, nil
	}
	h.mu.Unlock()
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("raw client: %w", err)
	}
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

// put returns a connection to the idle pool.
func (h *rawHTTP) put(rc *rawConn) {
	h.mu.Lock()
	h.idle = append(h.idle, rc)
	h.mu.Unlock()
}

// close closes the idle connections.
func (h *rawHTTP) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, rc := range h.idle {
		rc.c.Close()
	}
	h.idle = nil
}

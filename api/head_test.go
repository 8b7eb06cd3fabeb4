package api

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
)

// TestHeadRegisteredForEveryGet enumerates the routes registered on the
// router: each GET route must answer HEAD too, so a new GET route without
// HEAD fails here.
func TestHeadRegisteredForEveryGet(t *testing.T) {
	h := newHarness(t, nil)
	registered := map[string]bool{}
	var gets []string
	for _, r := range h.s.e.Routes() {
		registered[r.Method+" "+r.Path] = true
		if r.Method == http.MethodGet {
			gets = append(gets, r.Path)
		}
	}
	if len(gets) < 20 {
		t.Fatalf("only %d GET routes registered: %v", len(gets), gets)
	}
	for _, p := range gets {
		if !registered["HEAD "+p] {
			t.Errorf("GET %s is served but HEAD %s is not", p, p)
		}
	}
	// The CORS preflight of a publishable GET route offers HEAD.
	w := h.do("OPTIONS", "/v1/offers", "", "Origin", allowed, "Access-Control-Request-Method", "HEAD")
	if m := w.Header().Get("Access-Control-Allow-Methods"); w.Code != 204 || !strings.Contains(m, "HEAD") {
		t.Errorf("preflight: %d, Allow-Methods %q", w.Code, m)
	}
}

// headTarget is a request to one GET route: a concrete URL (path
// parameters filled in with objects that exist) and its credentials.
func headTarget(path, access string) (target string, header http.Header) {
	header = http.Header{"Accept-Encoding": {"identity"}} // no transparent gzip: headers compare as sent
	target = strings.NewReplacer(":id", "sku-1", "*", "dashboard.js").Replace(path)
	query := url.Values{}
	switch path {
	case "/v1/offers/:id":
		target = "/v1/offers/o1"
	case "/v1/rules/:id":
		target = "/v1/rules/r1"
	case "/shop/*":
		target = "/shop/p/1"
	case "/v1/recommendations", "/v1/promotions/stream":
		query.Set("visitor", "v1")
	case "/v1/offers":
		query.Set("visitor", "v1")
		query.Set("slot", "exit")
	case "/v1/pixel.gif":
		query.Set("visitor", "v1")
		query.Set("item", "sku-1")
	case "/v1/pages/attention":
		query.Set("page", "https://shop.example/p/1")
	}
	switch access {
	case "secret":
		header.Set("Authorization", "Bearer "+testSK)
	case "publishable":
		query.Set("key", testPK)
		header.Set("Origin", allowed)
	}
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	return target, header
}

// rawHead sends a HEAD request on a fresh connection and returns the
// response and every byte the server sent after its header (none is
// allowed).
func rawHead(t *testing.T, addr, target string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r, _ := http.NewRequest(http.MethodHead, "http://"+addr+target, nil)
	r.Header = header.Clone()
	r.Close = true // the server closes after the answer: EOF ends the extra bytes
	if err := r.Write(c); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, r)
	if err != nil {
		t.Fatalf("HEAD %s: %v", target, err)
	}
	extra, _ := io.ReadAll(br)
	return resp, extra
}

// TestHeadMatchesGet serves every GET route of the route table, then HEAD
// on it: the same status and headers, no body on the wire, and a HEAD on
// the pixel records no event.
func TestHeadMatchesGet(t *testing.T) {
	h := newPromoHarness(t, true, 0)
	if w := h.secret("PUT", "/v1/items/sku-1", `{"title":"Shoe"}`); w.Code != 201 {
		t.Fatalf("PUT item: %d %s", w.Code, w.Body)
	}
	h.rec.similar = map[string][]engine.Rec{"sku-1": {{Item: "sku-2", Score: 1}}}
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	// Headers that differ between any two answers.
	volatile := []string{"Date", "X-Request-Id", "Content-Length"}
	for _, rt := range h.s.Routes() {
		if rt.Method != http.MethodGet {
			continue
		}
		t.Run(rt.Path, func(t *testing.T) {
			target, header := headTarget(rt.Path, rt.Access)
			r, _ := http.NewRequest(http.MethodGet, h.srv.URL+target, nil)
			r.Header = header.Clone()
			get, err := client.Do(r) // a stream answers its header at once
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if rt.Path != "/v1/promotions/stream" {
				body, _ = io.ReadAll(get.Body)
			}
			get.Body.Close()
			events := len(h.pub.events())

			head, extra := rawHead(t, addr, target, header)
			if head.StatusCode != get.StatusCode {
				t.Errorf("HEAD status %d, GET %d (%s)", head.StatusCode, get.StatusCode, body)
			}
			if len(extra) > 0 {
				t.Errorf("HEAD sent a body: %q", extra)
			}
			for name := range mergeKeys(get.Header, head.Header) {
				if slices.Contains(volatile, name) || name == "Connection" {
					continue
				}
				if g, hd := get.Header.Values(name), head.Header.Values(name); !slices.Equal(g, hd) {
					t.Errorf("header %s: GET %q, HEAD %q", name, g, hd)
				}
			}
			if cl := head.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) && rt.Path != "/metrics" {
				t.Errorf("HEAD Content-Length %s, GET body %d bytes", cl, len(body))
			}
			if n := len(h.pub.events()); n != events {
				t.Errorf("HEAD published %d events", n-events)
			}
		})
	}
}

func mergeKeys(a, b http.Header) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// TestHeadStatuses: HEAD answers errors with their status and headers but
// no body, and the stream's HEAD answers a full server's 503.
func TestHeadStatuses(t *testing.T) {
	h := newPromoHarnessWith(t, true, 0, func(c *Config) { c.MaxVisitorStreams = 1 })
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	origin := http.Header{"Origin": {allowed}}
	resp, extra := rawHead(t, addr, "/v1/promotions/stream?visitor=v&key="+testPK, origin)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || len(extra) > 0 {
		t.Fatalf("HEAD stream: %d %v %q", resp.StatusCode, resp.Header, extra)
	}
	h.open(t, "v")
	resp, extra = rawHead(t, addr, "/v1/promotions/stream?visitor=v&key="+testPK, origin)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || len(extra) > 0 {
		t.Errorf("HEAD stream beyond the limit: %d %v %q", resp.StatusCode, resp.Header, extra)
	}
	if n := metricValue(t, h.s.metrics.streamsOpen); n != 1 {
		t.Errorf("open streams %v after HEADs, want 1", n)
	}
	for _, tt := range []struct {
		target string
		header http.Header
		status int
	}{
		{"/v1/items/nope", http.Header{"Authorization": {"Bearer " + testSK}}, 404},
		{"/v1/items", nil, 401},
		{"/v1/recommendations?visitor=v&n=0", http.Header{"Authorization": {"Bearer " + testSK}}, 400},
		{"/v1/pixel.gif?type=click&visitor=v&key=" + testPK, origin, 400}, // item missing
		{"/nowhere", nil, 404},
	} {
		resp, extra := rawHead(t, addr, tt.target, tt.header)
		if resp.StatusCode != tt.status || len(extra) > 0 {
			t.Errorf("HEAD %s: %d, %q; want %d and no body", tt.target, resp.StatusCode, extra, tt.status)
		}
	}
	// Methods other than GET get no HEAD: a POST-only path stays 405.
	if w := h.do("HEAD", "/v1/identify", "", "Authorization", "Bearer "+testSK); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("HEAD on a POST route: %d, want 405", w.Code)
	}
}

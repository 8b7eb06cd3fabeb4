// Package httpx holds the small net/http helpers shared by the handlers
// that are not echo routes (the tracker script and types, the dashboard
// files), and their conditional requests (ETag, If-None-Match).
package httpx

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// GetOrHead reports whether r is a GET or a HEAD request. Otherwise it
// answers 405 Method Not Allowed with Allow: GET, HEAD and reports false.
func GetOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
	return false
}

// MatchesETag reports whether the If-None-Match list inm names one of
// etags, or is * (weak comparison, RFC 9110 section 13.1.2: a W/ prefix
// is ignored).
func MatchesETag(inm string, etags ...string) bool {
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if slices.Contains(etags, strings.TrimPrefix(t, "W/")) {
			return true
		}
	}
	return false
}

// NotModified answers 304 Not Modified and reports true when r's
// If-None-Match names one of etags (MatchesETag).
func NotModified(w http.ResponseWriter, r *http.Request, etags ...string) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" && MatchesETag(inm, etags...) {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	return false
}

// WriteBody answers 200 OK with Content-Length and, unless r is a HEAD
// request, body (the caller has set the other headers).
func WriteBody(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// CheckOrigin validates an entry of a list of allowed browser origins
// (api.Config.AllowedOrigins, a tenant's allowed_origins): "*", or
// scheme://host[:port] with scheme http or https, whose host may start
// with the wildcard label "*.".
func CheckOrigin(p string) error {
	if p == "*" {
		return nil
	}
	u, err := url.Parse(p)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New(`want "*" or scheme://host[:port] with scheme http or https`)
	case u.Host == "":
		return errors.New("missing host")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return errors.New("an origin has no path, query, fragment or user (no trailing slash either)")
	case strings.Contains(strings.TrimPrefix(u.Host, "*."), "*"):
		return errors.New(`"*" is only allowed as the first label of the host ("https://*.shop.example")`)
	}
	return nil
}

// Package httpx holds the small net/http helpers shared by the handlers
// that are not echo routes (the tracker script and types, the dashboard
// files), and their conditional requests (ETag, If-None-Match).
package httpx

import (
	"net/http"
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

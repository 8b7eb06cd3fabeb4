// Package httpx holds the small net/http helpers shared by the handlers
// that are not echo routes (the tracker script and types, the dashboard
// files).
package httpx

import "net/http"

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

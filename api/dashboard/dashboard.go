package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/kairoshq/kairos/internal/httpx"
)

//go:embed static
var static embed.FS

// Prefix is the path the dashboard is served under: GET /dashboard is the
// page, GET /dashboard/<file> its assets.
const Prefix = "/dashboard"

// ContentSecurityPolicy is sent with every file of the dashboard. The
// page runs only its own script (no inline script, no eval, no third
// party), talks only to its own origin, loads styles and images from its
// own origin only, may frame only pages of its own origin and may not be
// framed itself (clickjacking). It is what keeps the secret key, which
// the page holds in sessionStorage, out of reach of injected content.
// The snapshot of a page that the attention heat map draws on inherits it
// (a srcdoc frame): base-uri 'self' lets the snapshot's <base> point at
// the page, and inline styles are allowed because pages use them (CSS
// cannot read sessionStorage, and with nothing but the own origin to
// load from it cannot send anything out either).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'none'"

// contentTypes are the media types of the embedded files, by extension
// (a fixed table: the system's MIME table differs between machines).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

var assets = sync.OnceValue(func() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		out[strings.TrimPrefix(p, "static/")] = asset{body: b, contentType: ct, etag: `"kd-` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("dashboard: embedded files: " + err.Error()) // the embed is part of the binary
	}
	return out
})

// name maps a request path to an embedded file name: Prefix, Prefix+"/"
// and Prefix+"/index.html" are the page.
func name(urlPath string) string {
	rest, ok := strings.CutPrefix(urlPath, Prefix)
	if !ok {
		return ""
	}
	switch rest {
	case "", "/", "/index.html":
		return "index.html"
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	return rest
}

// Exists reports whether urlPath (a request path) names a file of the
// dashboard.
func Exists(urlPath string) bool {
	n := name(urlPath)
	_, ok := assets()[n]
	return n != "" && ok
}

// Files lists the request paths of the dashboard's files, the page
// (Prefix) first.
func Files() []string {
	var out []string
	for n := range assets() {
		if n != "index.html" {
			out = append(out, Prefix+"/"+n)
		}
	}
	slices.Sort(out)
	return append([]string{Prefix}, out...)
}

// Handler returns the http.Handler that serves the dashboard: mount it at
// Prefix and Prefix+"/*" (package api does, public: the files hold no
// data and no key). It answers GET and HEAD (others: 405), unknown paths
// with 404, and every file with its Content-Type, a strong ETag (304 for
// a matching If-None-Match), Cache-Control: no-cache (browsers revalidate,
// so a new binary's page is picked up at once), ContentSecurityPolicy,
// X-Frame-Options: DENY, X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and Cross-Origin-Opener-Policy:
// same-origin.
func Handler() http.Handler { return handler{} }

type handler struct{}

func (handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !httpx.GetOrHead(w, r) {
		return
	}
	h := w.Header()
	a, ok := assets()[name(r.URL.Path)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if httpx.NotModified(w, r, a.etag) {
		return
	}
	httpx.WriteBody(w, r, a.body)
}

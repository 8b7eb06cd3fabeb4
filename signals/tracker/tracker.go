package tracker

//go:generate go run ./internal/minify -in tracker.js -out tracker.min.js

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kairoshq/kairos/internal/httpx"
)

//go:embed tracker.min.js
var script []byte

//go:embed tracker.d.ts
var types []byte

// Types returns tracker.d.ts, the TypeScript declarations of the
// tracker's browser API (the global kairos). The caller must not modify
// the returned slice.
func Types() []byte { return types }

// TypesContentType is the media type /tracker.d.ts is served with.
const TypesContentType = "application/typescript; charset=utf-8"

var typesETag = func() string {
	sum := sha256.Sum256(types)
	return `"kd-` + hex.EncodeToString(sum[:8]) + `"`
}()

// TypesHandler serves tracker.d.ts for GET and HEAD, cacheable like the
// script (CacheMaxAge, a strong ETag, 304 on If-None-Match).
func TypesHandler() http.Handler { return typesHandler{} }

type typesHandler struct{}

func (typesHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !httpx.GetOrHead(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", TypesContentType)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(CacheMaxAge/time.Second)))
	h.Set("ETag", typesETag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Allow-Origin", "*")
	if httpx.NotModified(w, r, typesETag) {
		return
	}
	httpx.WriteBody(w, r, types)
}

// CacheMaxAge is how long browsers and CDNs may reuse /tracker.js without
// revalidating (Cache-Control: public, max-age=300). Revalidation is cheap:
// the ETag answers 304 until the script changes.
const CacheMaxAge = 5 * time.Minute

// ContentType is the media type /tracker.js is served with.
const ContentType = "text/javascript; charset=utf-8"

// Script returns the minified tracker, as embedded in the binary. The
// caller must not modify the returned slice.
func Script() []byte { return script }

// ScriptGzip returns Script compressed with gzip (best compression, no
// name or time in the header, so the bytes are reproducible), computed once.
// The caller must not modify the returned slice.
func ScriptGzip() []byte { return compressed().gz }

// ETag returns the strong entity tag of Script, quoted as in the ETag header
// (`"kt-<first 16 hex digits of its SHA-256>"`). The gzip representation
// is served with the tag `"kt-<hex>-gz"`.
func ETag() string { return compressed().etag }

type assets struct {
	gz           []byte
	etag, etagGz string
}

var compressed = sync.OnceValue(func() assets {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		panic("tracker: gzip writer: " + err.Error()) // only for an invalid level
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = zw.Write(script)
	_ = zw.Close()
	sum := sha256.Sum256(script)
	tag := "kt-" + hex.EncodeToString(sum[:8])
	return assets{gz: b.Bytes(), etag: `"` + tag + `"`, etagGz: `"` + tag + `-gz"`}
})

// Handler returns the http.Handler that serves the tracker (mount it at
// /tracker.js). It answers GET and HEAD (others: 405 with Allow), with
// Content-Type text/javascript, an ETag, Cache-Control public,
// max-age=300, Vary: Accept-Encoding, the gzip body when the request
// accepts gzip, and 304 Not Modified when If-None-Match names the current
// version (either representation's tag, or *). It also sends
// Cross-Origin-Resource-Policy: cross-origin and
// Access-Control-Allow-Origin: *, so sites with COEP or a crossorigin
// script tag (Subresource Integrity) can load it.
func Handler() http.Handler { return handler{} }

type handler struct{}

func (handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !httpx.GetOrHead(w, r) {
		return
	}
	h := w.Header()
	a := compressed()
	body, tag := script, a.etag
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gz {
		body, tag = a.gz, a.etagGz
	}
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(CacheMaxAge/time.Second)))
	h.Add("Vary", "Accept-Encoding")
	h.Set("ETag", tag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Access-Control-Allow-Origin", "*")
	if httpx.NotModified(w, r, a.etag, a.etagGz) {
		return
	}
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	httpx.WriteBody(w, r, body)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip
// (explicitly, or through *, with a non-zero q).
func acceptsGzip(ae string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					f = 0
				}
				q = f
			}
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "gzip", "x-gzip":
			gzipQ = q
		case "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

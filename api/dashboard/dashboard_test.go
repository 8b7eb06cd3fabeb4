package dashboard

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func serve(method, path string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	for _, tt := range []struct {
		path, file, contentType string
	}{
		{"/dashboard", "index.html", "text/html; charset=utf-8"},
		{"/dashboard/", "index.html", "text/html; charset=utf-8"},
		{"/dashboard/index.html", "index.html", "text/html; charset=utf-8"},
		{"/dashboard/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"},
		{"/dashboard/dashboard.css", "dashboard.css", "text/css; charset=utf-8"},
		{"/dashboard/favicon.svg", "favicon.svg", "image/svg+xml"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			want, err := static.ReadFile("static/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			w := serve("GET", tt.path)
			if w.Code != 200 || w.Body.String() != string(want) {
				t.Fatalf("status %d, %d bytes; want 200 and %s (%d bytes)", w.Code, w.Body.Len(), tt.file, len(want))
			}
			h := w.Header()
			for name, v := range map[string]string{
				"Content-Type": tt.contentType, "Cache-Control": "no-cache", "Content-Security-Policy": ContentSecurityPolicy,
				"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
				"Cross-Origin-Opener-Policy": "same-origin",
			} {
				if got := h.Get(name); got != v {
					t.Errorf("%s: %q, want %q", name, got, v)
				}
			}
			etag := h.Get("ETag")
			if !regexp.MustCompile(`^"kd-[0-9a-f]{16}"$`).MatchString(etag) {
				t.Fatalf("ETag %q", etag)
			}
			for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
				if w := serve("GET", tt.path, "If-None-Match", inm); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
					t.Errorf("If-None-Match %s: status %d, %d bytes; want 304", inm, w.Code, w.Body.Len())
				}
			}
			if w := serve("GET", tt.path, "If-None-Match", `"kd-0000000000000000"`); w.Code != 200 {
				t.Errorf("stale ETag: status %d, want 200", w.Code)
			}
			if w := serve("HEAD", tt.path); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
				t.Errorf("HEAD: status %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
			}
		})
	}
	for _, p := range []string{"/dashboard/nope.js", "/dashboard/static/index.html", "/dashboard/a/b", "/dashboardx", "/", "/dashboard//dashboard.js"} {
		if w := serve("GET", p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, w.Code)
		}
		if Exists(p) {
			t.Errorf("Exists(%s)", p)
		}
	}
	if w := serve("POST", "/dashboard"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestFiles(t *testing.T) {
	got := Files()
	want := []string{"/dashboard", "/dashboard/dashboard.css", "/dashboard/dashboard.js", "/dashboard/favicon.svg"}
	if !slices.Equal(got, want) {
		t.Fatalf("Files() = %v, want %v", got, want)
	}
	for _, f := range got {
		if !Exists(f) {
			t.Errorf("Exists(%s) is false", f)
		}
	}
}

func file(t *testing.T, name string) string {
	t.Helper()
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPageRules checks the rules the dashboard's security rests on, in
// its source: no inline script, nothing loaded from elsewhere, no HTML
// built from strings, the key in sessionStorage only and sent in the
// Authorization header only.
func TestPageRules(t *testing.T) {
	html, js, css := file(t, "index.html"), file(t, "dashboard.js"), file(t, "dashboard.css")
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1)
	if len(scripts) != 1 || !strings.Contains(scripts[0], `src="/dashboard/dashboard.js"`) {
		t.Errorf("script tags %q: want only the dashboard's own script", scripts)
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(html) {
		t.Errorf("an inline event handler in index.html")
	}
	for name, src := range map[string]string{"index.html": html, "dashboard.js": js, "dashboard.css": css} {
		for _, u := range regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s'")]*`).FindAllString(src, -1) {
			if u != "http://www.w3.org/2000/svg" {
				t.Errorf("%s refers to %s: the dashboard loads nothing from elsewhere", name, u)
			}
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML =", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage.setItem(KEY", "?key=", "&key="} {
		if strings.Contains(js, bad) {
			t.Errorf("dashboard.js uses %q", bad)
		}
	}
	for _, good := range []string{"sessionStorage.setItem(KEY", "Authorization: 'Bearer ' + key", "credentials: 'omit'", `sandbox="allow-same-origin"`} {
		if !strings.Contains(js+html, good) {
			t.Errorf("dashboard.js or index.html lacks %q", good)
		}
	}
}

// TestScriptElementsExist checks that every element the script looks up
// by id is in the page.
func TestScriptElementsExist(t *testing.T) {
	html, js := file(t, "index.html"), file(t, "dashboard.js")
	ids := regexp.MustCompile(`\$\('([a-z0-9-]+)'\)`).FindAllStringSubmatch(js, -1)
	if len(ids) < 20 {
		t.Fatalf("only %d lookups found: is the pattern stale?", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(html, `id="`+m[1]+`"`) {
			t.Errorf("dashboard.js looks up #%s, which index.html lacks", m[1])
		}
	}
}

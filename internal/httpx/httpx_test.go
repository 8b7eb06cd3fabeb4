package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGetOrHead(t *testing.T) {
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		w := httptest.NewRecorder()
		if !GetOrHead(w, httptest.NewRequest(m, "/", nil)) || w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("%s: refused or answered (%d %q)", m, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	if GetOrHead(w, httptest.NewRequest(http.MethodPost, "/", nil)) {
		t.Fatal("POST accepted")
	}
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" || w.Body.String() != "method not allowed: use GET\n" {
		t.Errorf("POST: %d Allow %q body %q", w.Code, w.Header().Get("Allow"), w.Body)
	}
}

func TestMatchesETag(t *testing.T) {
	for _, tc := range []struct {
		inm  string
		want bool
	}{
		{`"a"`, true},
		{`W/"b"`, true},
		{` "x" , "b" `, true},
		{`*`, true},
		{`"x", *`, true},
		{`"x"`, false},
		{`a`, false},
		{`W/ "a"`, false},
		{``, false},
	} {
		if got := MatchesETag(tc.inm, `"a"`, `"b"`); got != tc.want {
			t.Errorf("MatchesETag(%q) = %v, want %v", tc.inm, got, tc.want)
		}
	}
}

func TestNotModifiedAndWriteBody(t *testing.T) {
	for _, tc := range []struct {
		method, inm string
		code        int
		body        string
	}{
		{http.MethodGet, `"a"`, http.StatusNotModified, ""},
		{http.MethodHead, `"a"`, http.StatusNotModified, ""},
		{http.MethodGet, `"old"`, http.StatusOK, "hello"},
		{http.MethodGet, "", http.StatusOK, "hello"},
		{http.MethodHead, "", http.StatusOK, ""},
	} {
		r := httptest.NewRequest(tc.method, "/", nil)
		if tc.inm != "" {
			r.Header.Set("If-None-Match", tc.inm)
		}
		w := httptest.NewRecorder()
		if !NotModified(w, r, `"a"`) {
			WriteBody(w, r, []byte("hello"))
			if got := w.Header().Get("Content-Length"); got != "5" {
				t.Errorf("%s %q: Content-Length %q, want 5", tc.method, tc.inm, got)
			}
		}
		if w.Code != tc.code || w.Body.String() != tc.body {
			t.Errorf("%s %q: %d %q, want %d %q", tc.method, tc.inm, w.Code, w.Body, tc.code, tc.body)
		}
	}
}

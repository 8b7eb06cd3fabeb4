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

package api

import (
	"bytes"
	"testing"

	"github.com/kairoshq/kairos/signals/tracker"
)

func TestTrackerJSIsPublic(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do("GET", "/tracker.js", "")
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), tracker.Script()) {
		t.Fatalf("status %d, %d bytes; want 200 and the tracker (%d bytes)", w.Code, w.Body.Len(), len(tracker.Script()))
	}
	if ct := w.Header().Get("Content-Type"); ct != tracker.ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	if w := h.do("GET", "/tracker.js", "", "If-None-Match", tracker.ETag()); w.Code != 304 {
		t.Fatalf("conditional GET: status %d, want 304", w.Code)
	}
}

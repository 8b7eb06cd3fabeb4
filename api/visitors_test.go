package api

import (
	"context"
	"testing"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/kairoshq/kairos/engine"
)

type fakeEraser struct{ erased []string }

func (f *fakeEraser) EraseVisitor(_ context.Context, id string) error {
	if id == "ghost" {
		return errs.New(engine.ErrNotFound, "visitor %q has no state to erase", id)
	}
	f.erased = append(f.erased, id)
	return nil
}

func TestEraseVisitor(t *testing.T) {
	h := newHarness(t, nil)
	if w := h.secret("DELETE", "/v1/visitors/v1", ""); w.Code != 404 {
		t.Fatalf("without an eraser: status %d, want 404", w.Code)
	}
	er := &fakeEraser{}
	h.s = h.server(nil, func(d *Deps) { d.Eraser = er })
	if w := h.secret("DELETE", "/v1/visitors/v%2F1", ""); w.Code != 204 || len(er.erased) != 1 || er.erased[0] != "v/1" {
		t.Fatalf("status %d, erased %v; want 204 and [v/1]", w.Code, er.erased)
	}
	w := h.secret("DELETE", "/v1/visitors/ghost", "")
	wantError(t, w, 404, CodeNotFound, "no state")
	if w := h.do("DELETE", "/v1/visitors/v1", "", "Authorization", "Bearer "+testPK); w.Code != 403 {
		t.Fatalf("publishable key: status %d, want 403", w.Code)
	}
}

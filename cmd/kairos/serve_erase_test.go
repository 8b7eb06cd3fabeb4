package main

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
)

// eraseLog is an api.VisitorEraser that records its calls.
type eraseLog struct {
	calls *[]string
	name  string
	err   error
}

func (l eraseLog) EraseVisitor(_ context.Context, id string) error {
	*l.calls = append(*l.calls, l.name+" "+id)
	return l.err
}

// TestAlsoErase: the components forget the visitor, the last added
// first, then the engine erases it; a component's error, named,
// stops the erasure before the engine's; the engine's error is returned
// as is.
func TestAlsoErase(t *testing.T) {
	errStore := errors.New("store down")
	tests := []struct {
		name              string
		promoErr, coreErr error
		wantCalls         []string
		wantErr           error
		wantMsg           string
	}{
		{"all erased", nil, nil, []string{"promo v1", "experiments v1", "engine v1"}, nil, ""},
		{"component fails", errStore, nil, []string{"promo v1"}, errStore, "promo: store down"},
		{"engine not found", nil, engine.ErrNotFound, []string{"promo v1", "experiments v1", "engine v1"}, engine.ErrNotFound, engine.ErrNotFound.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			forget := func(name string, err error) func(context.Context, string) error {
				return eraseLog{&calls, name, err}.EraseVisitor
			}
			// As kairos serve wires them: experiments over the engine, promo over both.
			var chain api.VisitorEraser = eraseLog{&calls, "engine", tt.coreErr}
			chain = alsoErase{name: "experiments", forget: forget("experiments", nil), next: chain}
			chain = alsoErase{name: "promo", forget: forget("promo", tt.promoErr), next: chain}
			err := chain.EraseVisitor(context.Background(), "v1")
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("calls %q, want %q", calls, tt.wantCalls)
			}
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil && err.Error() != tt.wantMsg {
				t.Errorf("err %q, want %q", err, tt.wantMsg)
			}
		})
	}
}

// TestAlsoEraseCoversLinkedDevices: erasing a user forgets the state of
// each of its linked devices in the components (promotion logs and caps
// are per device).
func TestAlsoEraseCoversLinkedDevices(t *testing.T) {
	var calls []string
	devices := func(_ context.Context, id string) ([]string, error) { return []string{id, "phone", "laptop"}, nil }
	var chain api.VisitorEraser = eraseLog{&calls, "engine", nil}
	chain = alsoErase{name: "promo", forget: eraseLog{&calls, "promo", nil}.EraseVisitor, ids: devices, next: chain}
	if err := chain.EraseVisitor(context.Background(), "ann"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"promo ann", "promo phone", "promo laptop", "engine ann"}; !slices.Equal(calls, want) {
		t.Fatalf("calls %q, want %q", calls, want)
	}
}

package errs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kairoshq/kairos/internal/errs"
)

func TestPublicMessageAndKind(t *testing.T) {
	cause := fmt.Errorf("embedded: item: %w", errs.NotFound)
	err := fmt.Errorf("engine: get item: %w", errs.Wrap(errs.NotFound, cause, "item %q not found", "sku-42"))
	if msg, ok := errs.Message(err); !ok || msg != `item "sku-42" not found` {
		t.Fatalf("Message = %q, %v", msg, ok)
	}
	if !errors.Is(err, errs.NotFound) || errs.KindOf(err) != errs.NotFound {
		t.Fatalf("kind of %v: %v", err, errs.KindOf(err))
	}
	if got := err.Error(); got != `engine: get item: item "sku-42" not found: embedded: item: not found` {
		t.Fatalf("Error() = %q", got)
	}
	if _, ok := errs.Message(cause); ok {
		t.Fatal("a plain wrap has no public message")
	}
	for _, c := range []struct {
		err  error
		want error
	}{
		{errs.New(errs.Conflict, "x"), errs.Conflict},
		{fmt.Errorf("a: %w", errs.Unavailable), errs.Unavailable},
		{errors.New("boom"), errs.Internal},
		{nil, nil},
	} {
		if got := errs.KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

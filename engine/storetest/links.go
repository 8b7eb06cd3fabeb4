package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/kairoshq/kairos/engine"
)

// RunLinks checks an engine.LinkStore: link, resolve, multi-device,
// re-link to another user, unlink, unlink one device; and, with reopen, that links persist.
func RunLinks(t *testing.T, open func(t *testing.T) engine.LinkStore, reopen func(t *testing.T) engine.LinkStore) {
	ctx := context.Background()
	s := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sorted := func(ids []string, err error) []string {
		t.Helper()
		must(err)
		slices.Sort(ids)
		return ids
	}
	if got, err := s.Resolve(ctx, []string{"phone", "laptop"}); err != nil || got[0] != "" || got[1] != "" {
		t.Fatalf("nothing linked yet: %v %v", got, err)
	}
	must(s.Link(ctx, "phone", "ann"))
	must(s.Link(ctx, "laptop", "ann"))
	must(s.Link(ctx, "phone", "ann")) // idempotent
	must(s.Link(ctx, "tablet", "bob"))
	if got, err := s.Resolve(ctx, []string{"phone", "x", "tablet"}); err != nil || !slices.Equal(got, []string{"ann", "", "bob"}) {
		t.Fatalf("resolve: %v %v", got, err)
	}
	if got := sorted(s.Linked(ctx, "ann")); !slices.Equal(got, []string{"laptop", "phone"}) {
		t.Fatalf("ann's devices %v", got)
	}
	must(s.Link(ctx, "laptop", "bob")) // re-linked: moves
	if got := sorted(s.Linked(ctx, "ann")); !slices.Equal(got, []string{"phone"}) {
		t.Fatalf("after moving the laptop, ann has %v", got)
	}
	if reopen != nil {
		s = reopen(t)
		if got := sorted(s.Linked(ctx, "bob")); !slices.Equal(got, []string{"laptop", "tablet"}) {
			t.Fatalf("after reopening, bob has %v", got)
		}
	}
	if got := sorted(s.Unlink(ctx, "bob")); !slices.Equal(got, []string{"laptop", "tablet"}) {
		t.Fatalf("unlink returned %v", got)
	}
	if got, _ := s.Resolve(ctx, []string{"laptop", "phone"}); !slices.Equal(got, []string{"", "ann"}) {
		t.Fatalf("after unlinking bob: %v", got)
	}
	if got := sorted(s.Unlink(ctx, "nobody")); len(got) != 0 {
		t.Fatalf("unlink of an unknown user returned %v", got)
	}
	// One device of a user is unlinked; the others stay.
	must(s.Link(ctx, "watch", "ann"))
	must(s.UnlinkDevice(ctx, "phone"))
	must(s.UnlinkDevice(ctx, "phone")) // idempotent
	must(s.UnlinkDevice(ctx, "never-linked"))
	if got, _ := s.Resolve(ctx, []string{"phone", "watch"}); !slices.Equal(got, []string{"", "ann"}) {
		t.Fatalf("after unlinking the phone: %v", got)
	}
	if got := sorted(s.Linked(ctx, "ann")); !slices.Equal(got, []string{"watch"}) {
		t.Fatalf("after unlinking the phone, ann has %v", got)
	}
	if reopen != nil {
		s = reopen(t)
		if got := sorted(s.Linked(ctx, "ann")); !slices.Equal(got, []string{"watch"}) {
			t.Fatalf("after reopening, ann has %v", got)
		}
	}
}

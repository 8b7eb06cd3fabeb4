package holdout_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/holdout"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/eval/abtest"
	"github.com/kairoshq/kairos/signals"
)

// links is an in-memory engine.LinkStore: anonymous id → user.
type links map[string]string

func (l links) Link(_ context.Context, anon, user string) error { l[anon] = user; return nil }
func (l links) Resolve(_ context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = l[id]
	}
	return out, nil
}
func (l links) Linked(_ context.Context, user string) ([]string, error) {
	var out []string
	for a, u := range l {
		if u == user {
			out = append(out, a)
		}
	}
	return out, nil
}
func (l links) Unlink(ctx context.Context, user string) ([]string, error) {
	ids, _ := l.Linked(ctx, user)
	for _, a := range ids {
		delete(l, a)
	}
	return ids, nil
}
func (l links) UnlinkDevice(_ context.Context, anon string) error { delete(l, anon); return nil }

var _ engine.LinkStore = links{}

func mustNew(tb testing.TB, m storage.Maps, l engine.LinkStore, share float64) *holdout.Holdout {
	tb.Helper()
	h, err := holdout.New(m, l, holdout.Config{Share: share})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestAssignment(t *testing.T) {
	ctx := context.Background()
	l := links{"v-linked": "u-7"}
	h := mustNew(t, storagetest.NewMem(nil), l, 0.2)
	held := 0
	const n = 20000
	for i := range n {
		v := "v-" + strconv.Itoa(i)
		arm, err := h.Assign(ctx, v, "")
		if err != nil {
			t.Fatal(err)
		}
		again, _ := h.Assign(ctx, v, "")
		if arm != again {
			t.Fatalf("visitor %s: arm %s then %s (not sticky)", v, arm, again)
		}
		want := holdout.ArmPersonalized
		if experiments.Bucket(holdout.DefaultSalt, experiments.AnonKey(v)) < 0.2 {
			want = holdout.ArmHoldout
		}
		if arm != want {
			t.Fatalf("visitor %s: arm %s, want %s (experiments' bucket of a:%s)", v, arm, want, v)
		}
		if arm == holdout.ArmHoldout {
			held++
		}
	}
	if share := float64(held) / n; math.Abs(share-0.2) > 0.01 {
		t.Errorf("held out %.4f of %d visitors, want 0.2 ± 0.01", share, n)
	}
	// A linked visitor, a request naming the user and the user's engine
	// state key are one subject: the user.
	for _, req := range [][2]string{{"v-linked", ""}, {"v-other", "u-7"}, {engine.UserKey("u-7"), ""}} {
		s, err := h.Subject(ctx, req[0], req[1])
		if err != nil || s != experiments.UserKey("u-7") {
			t.Errorf("Subject(%q, %q) = %q, %v; want u:u-7", req[0], req[1], s, err)
		}
	}
	if _, err := h.Subject(ctx, "", ""); err == nil {
		t.Error("Subject without visitor: no error")
	}
	off := mustNew(t, storagetest.NewMem(nil), l, 0)
	for i := range 1000 {
		if a, _ := off.Assign(ctx, "v-"+strconv.Itoa(i), ""); a != holdout.ArmPersonalized {
			t.Fatal("share 0 held a visitor out")
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, share := range []float64{-0.1, 0.6, math.NaN()} {
		if _, err := holdout.New(storagetest.NewMem(nil), links{}, holdout.Config{Share: share}); err == nil {
			t.Errorf("share %v accepted", share)
		}
	}
}

// visitorsOf generates n visitors with planted conversion rates (5 % in
// the holdout, 10 % personalized) and revenue 10..50, in batches.
type planted struct {
	units, converters, conversions map[holdout.Arm]int64
	revenue, revenueSq             map[holdout.Arm]float64
}

func TestReactCounts(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, open func(tb testing.TB) storage.Backend) {
		ctx := context.Background()
		b := open(t)
		h := mustNew(t, b, links{}, 0.3)
		rng := rand.New(rand.NewPCG(1, 2))
		want := planted{map[holdout.Arm]int64{}, map[holdout.Arm]int64{}, map[holdout.Arm]int64{},
			map[holdout.Arm]float64{}, map[holdout.Arm]float64{}}
		const n = 400
		rev := map[string]float64{}
		for round := range 3 { // every visitor comes back three times: one unit each
			var changes []engine.VisitorChange
			for i := range n {
				v := fmt.Sprintf("v-%d", i)
				arm := h.ArmOf(experiments.AnonKey(v))
				if round == 0 {
					want.units[arm]++
				}
				fresh := []signals.Event{{Type: signals.TypeView, Visitor: v, Item: "i1"}}
				p := 0.05
				if arm == holdout.ArmPersonalized {
					p = 0.10
				}
				if rng.Float64() < p {
					r := float64(10 + rng.IntN(41))
					fresh = append(fresh, signals.Event{Type: signals.TypeConversion, Visitor: v, Value: r})
					if rev[v] == 0 {
						want.converters[arm]++
					}
					want.conversions[arm]++
					want.revenue[arm] += r
					want.revenueSq[arm] += (rev[v]+r)*(rev[v]+r) - rev[v]*rev[v]
					rev[v] += r
				}
				changes = append(changes, engine.VisitorChange{Visitor: engine.Visitor{ID: v}, Fresh: fresh})
			}
			h.React(ctx, changes)
		}
		// A fresh Holdout (another replica, or after a restart) reads the
		// same counts, and does not count known units again.
		h2 := mustNew(t, b, links{}, 0.3)
		h2.React(ctx, []engine.VisitorChange{{Visitor: engine.Visitor{ID: "v-0"}, Fresh: []signals.Event{{Type: signals.TypeView, Visitor: "v-0", Item: "i1"}}}})
		arms, err := h2.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range arms {
			t.Logf("%s: %+v", a.Arm, a)
			if a.Units != want.units[a.Arm] || a.Converters != want.converters[a.Arm] || a.Conversions != want.conversions[a.Arm] ||
				math.Abs(a.Revenue-want.revenue[a.Arm]) > 1e-6 || math.Abs(a.RevenueSq-want.revenueSq[a.Arm]) > 1e-3 {
				t.Errorf("%s counts %+v, want units %d converters %d conversions %d revenue %v revenue² %v", a.Arm, a,
					want.units[a.Arm], want.converters[a.Arm], want.conversions[a.Arm], want.revenue[a.Arm], want.revenueSq[a.Arm])
			}
		}
		r, err := h2.Results(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Conversion.Variants[0].Name != "holdout" || r.Conversion.Metric != abtest.Conversion || r.Revenue.Metric != abtest.Revenue ||
			r.Conversion.Variants[1].Users != want.units[holdout.ArmPersonalized] || r.Verdict == "" {
			t.Errorf("results: %+v", r)
		}
		if r.Conversion.Variants[1].Comparison == nil || !(r.Conversion.Variants[1].Comparison.Diff > 0) {
			t.Errorf("personalized vs holdout: %+v, want a positive difference (planted 10 %% vs 5 %%)", r.Conversion.Variants[1].Comparison)
		}
		t.Logf("verdict: %s", r.Verdict)
	})
}

func TestOffCountsNothing(t *testing.T) {
	m := storagetest.NewMem(nil)
	h := mustNew(t, m, links{}, 0)
	h.React(context.Background(), []engine.VisitorChange{{Visitor: engine.Visitor{ID: "v"},
		Fresh: []signals.Event{{Type: signals.TypeConversion, Visitor: "v", Value: 5}}}})
	arms, err := h.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if arms[0].Units+arms[1].Units != 0 {
		t.Errorf("counted with the holdout off: %+v", arms)
	}
}

// BenchmarkReact counts batches of 256 new visitors (one view each, 5 %
// converting) on the in-memory backend: the holdout's cost per consumed
// batch (one read, a unit write each, the shards' increments).
func BenchmarkReact(b *testing.B) {
	h := mustNew(b, storagetest.NewMem(nil), links{}, 0.05)
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		changes := make([]engine.VisitorChange, 256)
		for i := range changes {
			v := "bv-" + strconv.Itoa(n)
			n++
			fresh := []signals.Event{{Type: signals.TypeView, Visitor: v, Item: "i"}}
			if n%20 == 0 {
				fresh = append(fresh, signals.Event{Type: signals.TypeConversion, Visitor: v, Value: 30})
			}
			changes[i] = engine.VisitorChange{Visitor: engine.Visitor{ID: v}, Fresh: fresh}
		}
		h.React(ctx, changes)
	}
}

// TestSigningInKeepsTheArm: a held-out visitor that signs in as a user
// whose own hash is personalized stays held out — on its requests and on
// any other device of the user — and its later conversions count in its
// first unit: one person, one unit, one arm.
func TestSigningInKeepsTheArm(t *testing.T) {
	ctx := context.Background()
	const share = 0.5
	var dev, user string
	for i := 0; dev == "" || user == ""; i++ {
		if dev == "" && experiments.Bucket(holdout.DefaultSalt, experiments.AnonKey(fmt.Sprint("dev-", i))) < share {
			dev = fmt.Sprint("dev-", i)
		}
		if user == "" && experiments.Bucket(holdout.DefaultSalt, experiments.UserKey(fmt.Sprint("user-", i))) >= share {
			user = fmt.Sprint("user-", i)
		}
	}
	l := links{}
	h := mustNew(t, storagetest.NewMem(nil), l, share)
	view := signals.Event{Type: signals.TypeView, Visitor: dev, Item: "i1"}
	h.React(ctx, []engine.VisitorChange{{Visitor: engine.Visitor{ID: dev}, Fresh: []signals.Event{view}}})
	if err := l.Link(ctx, dev, user); err != nil {
		t.Fatal(err)
	}
	for _, req := range [][2]string{{dev, ""}, {"laptop", user}, {engine.UserKey(user), ""}} {
		if arm, err := h.Assign(ctx, req[0], req[1]); err != nil || arm != holdout.ArmHoldout {
			t.Fatalf("Assign(%q, %q) = %s, %v after signing in; want the holdout it was in", req[0], req[1], arm, err)
		}
	}
	buy := signals.Event{Type: signals.TypeConversion, Visitor: dev, Value: 30}
	h.React(ctx, []engine.VisitorChange{{Visitor: engine.Visitor{ID: engine.UserKey(user)}, Fresh: []signals.Event{buy}}})
	arms, err := h.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range arms {
		want := [5]float64{}
		if a.Arm == holdout.ArmHoldout {
			want = [5]float64{1, 1, 1, 30, 900}
		}
		if got := [5]float64{float64(a.Units), float64(a.Converters), float64(a.Conversions), a.Revenue, a.RevenueSq}; got != want {
			t.Errorf("%s: units, converters, conversions, revenue, revenue² %v, want %v", a.Arm, got, want)
		}
	}
}

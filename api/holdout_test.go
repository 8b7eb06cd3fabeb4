package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/holdout"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/signals"
)

// noLinks is an engine.LinkStore without links.
type noLinks struct{ engine.LinkStore }

func (noLinks) Resolve(_ context.Context, ids []string) ([]string, error) {
	return make([]string, len(ids)), nil
}

// visitorsByArm returns a visitor of each arm of h.
func visitorsByArm(t *testing.T, h *holdout.Holdout) (held, personalized string) {
	for i := 0; held == "" || personalized == ""; i++ {
		v := fmt.Sprintf("v-%d", i)
		if h.ArmOf(experiments.AnonKey(v)) == holdout.ArmHoldout {
			held = v
		} else {
			personalized = v
		}
	}
	return held, personalized
}

func TestHoldout(t *testing.T) {
	h := newHarness(t, nil)
	ho, err := holdout.New(storagetest.NewMem(nil), noLinks{}, holdout.Config{Share: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	h.s = h.server(nil, func(d *Deps) { d.Holdout = ho })
	held, pers := visitorsByArm(t, ho)

	t.Run("recommendations", func(t *testing.T) {
		w := h.secret(http.MethodGet, "/v1/recommendations?visitor="+held+"&n=3&explain=true", "")
		got := decode[HeldOutRecs](t, w)
		if w.Code != 200 || !got.Holdout || h.rec.last.Strategy != engine.StrategyTrending || h.rec.last.Explain {
			t.Errorf("held-out visitor: %d %+v, engine asked %+v; want holdout and the trending strategy", w.Code, got, h.rec.last)
		}
		w = h.secret(http.MethodGet, "/v1/recommendations?visitor="+pers+"&n=3", "")
		var m map[string]any
		if err := jsonUnmarshal(w.Body.String(), &m); err != nil || w.Code != 200 {
			t.Fatal(w.Code, err)
		}
		if _, ok := m["holdout"]; ok || h.rec.last.Strategy != "" {
			t.Errorf("personalized visitor: %v, engine asked %+v; want no holdout, the engine's choice", m, h.rec.last)
		}
	})
	t.Run("similar", func(t *testing.T) {
		h.rec.similar = map[string][]engine.Rec{"i1": {{Item: "n1"}, {Item: "n2"}}}
		w := h.secret(http.MethodGet, "/v1/items/i1/similar?n=3&visitor="+held, "")
		got := decode[SimilarResponse](t, w)
		if !got.Holdout || len(got.Items) != 3 || got.Items[0].Item != "i0" || got.Items[1].Item != "i2" || h.rec.last.Strategy != engine.StrategyTrending {
			t.Errorf("held out: %+v; want the trending items without i1", got)
		}
		got = decode[SimilarResponse](t, h.secret(http.MethodGet, "/v1/items/i1/similar?n=3&visitor="+pers, ""))
		if got.Holdout || len(got.Items) != 2 || got.Items[0].Item != "n1" {
			t.Errorf("personalized: %+v; want the neighbours", got)
		}
		got = decode[SimilarResponse](t, h.secret(http.MethodGet, "/v1/items/i1/similar?n=3", ""))
		if got.Holdout || len(got.Items) != 2 {
			t.Errorf("no visitor: %+v; want the neighbours", got)
		}
	})
	t.Run("results", func(t *testing.T) {
		ho.React(context.Background(), []engine.VisitorChange{
			{Visitor: engine.Visitor{ID: held}, Fresh: []signals.Event{{Type: "view", Visitor: held, Item: "i1"}}},
			{Visitor: engine.Visitor{ID: pers}, Fresh: []signals.Event{{Type: "conversion", Visitor: pers, Value: 12.5}}},
		})
		w := h.secret(http.MethodGet, "/v1/holdout/results", "")
		got := decode[holdout.Results](t, w)
		if w.Code != 200 || !got.On || got.Share != 0.5 || len(got.Arms) != 2 || got.Arms[0].Units != 1 || got.Arms[1].Revenue != 12.5 || got.Verdict == "" {
			t.Errorf("results: %d %+v", w.Code, got)
		}
	})
	t.Run("off", func(t *testing.T) {
		off := newHarness(t, nil)
		wantError(t, off.secret(http.MethodGet, "/v1/holdout/results", ""), http.StatusNotFound, CodeNotFound, "--holdout-share")
	})
}

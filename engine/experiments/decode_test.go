package experiments_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/internal/testutil"
)

func TestDecodeDefaults(t *testing.T) {
	x, err := experiments.Decode([]byte(`{"id":"t1","target":{"surface":"recommendations"},
	  "variants":[{"name":"A"},{"name":"B","params":{"strategy":"trending","blend_below":1,"exclude_seen":false}}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	no := false
	want := experiments.Experiment{ID: "t1", Salt: "t1", Target: experiments.Target{Surface: experiments.SurfaceRecommendations},
		Mode: experiments.ModeFixed, Metric: experiments.MetricConversion,
		Variants:          []experiments.Variant{{Name: "A", Weight: 1}, {Name: "B", Weight: 1, Params: &experiments.RecParams{Strategy: "trending", BlendBelow: 1, ExcludeSeen: &no}}},
		AttributionWindow: experiments.Duration(24 * time.Hour), BanditEvery: experiments.Duration(15 * time.Minute),
		Floor: 0.01, Alpha: 0.05, Tuning: 5000}
	if !reflect.DeepEqual(x, want) {
		t.Errorf("got  %+v\nwant %+v", x, want)
	}
	// The stored JSON decodes to the same experiment.
	if y := testutil.Redecode(t, x, experiments.Decode); !reflect.DeepEqual(x, y) {
		t.Errorf("round trip:\n%+v\n%+v", x, y)
	}
}

func TestDecodeErrors(t *testing.T) {
	const offersTarget = `"target":{"surface":"offers","slot":"hero"}`
	two := `"variants":[{"name":"A"},{"name":"B"}]`
	tests := []struct {
		name, body, pathID, want string
	}{
		{"not an object", `[1]`, "", "must be an object, got an array"},
		{"malformed", `{"id":`, "", "malformed JSON"},
		{"missing id", `{` + offersTarget + `,` + two + `}`, "", "id: missing"},
		{"bad id", `{"id":"a:b",` + offersTarget + `,` + two + `}`, "", `id: "a:b": want 1 to 64 letters`},
		{"id mismatch", `{"id":"a",` + offersTarget + `,` + two + `}`, "b", `id: "a" does not match the id "b" of the path`},
		{"unknown member", `{"id":"a","colour":1,` + offersTarget + `,` + two + `}`, "", "colour: unknown member"},
		{"no target", `{"id":"a",` + two + `}`, "", "target: missing"},
		{"bad surface", `{"id":"a","target":{"surface":"email"},` + two + `}`, "", `target.surface: "email" is not offers`},
		{"no slot", `{"id":"a","target":{"surface":"offers"},` + two + `}`, "", "target.slot: missing"},
		{"rule on offers", `{"id":"a","target":{"surface":"offers","slot":"s","rule":"r"},` + two + `}`, "", "target.rule: unknown member"},
		{"no rule", `{"id":"a","target":{"surface":"promotions"},` + two + `}`, "", "target.rule: missing"},
		{"one variant", `{"id":"a",` + offersTarget + `,"variants":[{"name":"A"}]}`, "", "variants: 1 variants, want 2 to 10"},
		{"variants not array", `{"id":"a",` + offersTarget + `,"variants":{}}`, "", "variants: must be an array"},
		{"duplicate name", `{"id":"a",` + offersTarget + `,"variants":[{"name":"A"},{"name":"A"}]}`, "", `variants[1].name: "A" is used by another variant`},
		{"negative weight", `{"id":"a",` + offersTarget + `,"variants":[{"name":"A"},{"name":"B","weight":-1}]}`, "", "variants[1].weight: -1 is not in [0, 1e6]"},
		{"zero weights", `{"id":"a",` + offersTarget + `,"variants":[{"name":"A","weight":0},{"name":"B","weight":0}]}`, "", "every weight is 0"},
		{"weight string", `{"id":"a",` + offersTarget + `,"variants":[{"name":"A","weight":"1"},{"name":"B"}]}`, "", "variants[0].weight: must be a number, got a string"},
		{"offer on recs", `{"id":"a","target":{"surface":"recommendations"},"variants":[{"name":"A"},{"name":"B","offer":"o"}]}`, "", "variants[1].offer: only offers and promotions"},
		{"campaign on promotions", `{"id":"a","target":{"surface":"promotions","rule":"r"},"variants":[{"name":"A"},{"name":"B","campaign":"c"}]}`, "", "variants[1].campaign: only offers experiments"},
		{"params on offers", `{"id":"a",` + offersTarget + `,"variants":[{"name":"A"},{"name":"B","params":{}}]}`, "", "variants[1].params: only recommendations"},
		{"two contents", `{"id":"a",` + offersTarget + `,"variants":[{"name":"A"},{"name":"B","offer":"o","holdout":true}]}`, "", "variants[1]: at most one of"},
		{"bad strategy", `{"id":"a","target":{"surface":"recommendations"},"variants":[{"name":"A"},{"name":"B","params":{"strategy":"random"}}]}`, "", `variants[1].params.strategy: "random" is not trending`},
		{"bad blend", `{"id":"a","target":{"surface":"recommendations"},"variants":[{"name":"A"},{"name":"B","params":{"blend_below":0.5}}]}`, "", "variants[1].params.blend_below: 0.5 is not an integer in [1, 1000]"},
		{"unknown param", `{"id":"a","target":{"surface":"recommendations"},"variants":[{"name":"A"},{"name":"B","params":{"n":3}}]}`, "", "variants[1].params.n: unknown member"},
		{"bad mode", `{"id":"a","mode":"greedy",` + offersTarget + `,` + two + `}`, "", `mode: "greedy" is not fixed or bandit`},
		{"bad metric", `{"id":"a","metric":"ltv",` + offersTarget + `,` + two + `}`, "", `metric: "ltv" is not ctr, add_to_cart, conversion or revenue`},
		{"bad window", `{"id":"a","attribution_window":"10s",` + offersTarget + `,` + two + `}`, "", `attribution_window: "10s" is not in [1m, 90d]`},
		{"window number", `{"id":"a","attribution_window":60,` + offersTarget + `,` + two + `}`, "", "attribution_window: must be a duration string"},
		{"bad floor", `{"id":"a","floor":0.5,` + offersTarget + `,` + two + `}`, "", "floor: 0.5 is not in [0, 1/2)"},
		{"bad alpha", `{"id":"a","alpha":0,` + offersTarget + `,` + two + `}`, "", "alpha: 0 is not in (0, 0.5]"},
		{"bad start", `{"id":"a","start":"tomorrow",` + offersTarget + `,` + two + `}`, "", `start: "tomorrow" is not an RFC 3339 time`},
		{"stop before start", `{"id":"a","start":"2026-11-02T00:00:00Z","stop":"2026-11-01T00:00:00Z",` + offersTarget + `,` + two + `}`, "", "stop: 2026-11-01T00:00:00Z is not after start"},
		{"guardrail metric", `{"id":"a","guardrails":[{"metric":"x"}],` + offersTarget + `,` + two + `}`, "", `guardrails[0].metric: "x" is not ctr`},
		{"guardrail drop", `{"id":"a","guardrails":[{"metric":"revenue","max_drop":2}],` + offersTarget + `,` + two + `}`, "", "guardrails[0].max_drop: 2 is not in [0, 1]"},
		{"guardrail no metric", `{"id":"a","guardrails":[{}],` + offersTarget + `,` + two + `}`, "", "guardrails[0].metric: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := experiments.Decode([]byte(tt.body), tt.pathID)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !isInvalid(err) {
				t.Errorf("%v does not wrap engine.ErrInvalid", err)
			}
			var ve *experiments.ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("%v is not a *ValidationError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// FuzzDecode: Decode never panics; what it accepts is valid, re-encodes
// and decodes to the same experiment.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		heroJSON,
		`{"id":"b","mode":"bandit","metric":"revenue","target":{"surface":"promotions","rule":"r1"},"variants":[{"name":"A"},{"name":"H","holdout":true},{"name":"O","offer":"o:1","weight":3}],"guardrails":[{"metric":"ctr","max_drop":0.1}],"bandit_every":"1m","floor":0.05}`,
		`{"id":"r","target":{"surface":"recommendations"},"variants":[{"name":"A"},{"name":"B","params":{"strategy":"trending","blend_below":3}}],"start":"2026-01-01T00:00:00Z","stop":"2026-02-01T00:00:00+01:00","alpha":0.01,"tuning":100}`,
		`{"id":"x","target":{"surface":"offers","slot":"s"},"variants":[{"name":"A","weight":0},{"name":"B","campaign":"c"}],"attribution_window":"7d"}`,
		`{}`, `[]`, `{"variants":null}`, `{"id":"\u0000"}`,
	} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(heroJSON), "hero")
	f.Fuzz(func(t *testing.T, b []byte, pathID string) {
		x, err := experiments.Decode(b, pathID)
		if err != nil {
			if !isInvalid(err) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !experiments.ValidID(x.ID) || len(x.Variants) < 2 || x.Salt == "" || !x.Metric.Valid() {
			t.Fatalf("accepted an invalid experiment: %+v", x)
		}
		if y := testutil.Redecode(t, x, experiments.Decode); !reflect.DeepEqual(normalise(x), normalise(y)) {
			t.Fatalf("round trip changed it:\n%+v\n%+v", x, y)
		}
	})
}

// normalise makes times comparable with reflect.DeepEqual.
func normalise(x experiments.Experiment) experiments.Experiment {
	if x.Start != nil {
		s := x.Start.UTC()
		x.Start = &s
	}
	if x.Stop != nil {
		s := x.Stop.UTC()
		x.Stop = &s
	}
	return x
}

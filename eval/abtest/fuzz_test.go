package abtest

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzAnalyze feeds untrusted experiment JSON (as the results endpoint and
// `kairos eval abtest` receive it) to Analyze: it must either reject the
// input with ErrInvalid or produce a report whose JSON has no NaN or Inf,
// and never panic.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		`{"metric":"conversion","variants":[{"name":"A","weight":0.5,"users":1000,"conversions":100},{"name":"B","weight":0.5,"users":1000,"conversions":120}]}`,
		`{"metric":"revenue","variants":[{"name":"A","users":3,"sum":10,"sum_squares":60},{"name":"B","users":2,"sum":0,"sum_squares":0}]}`,
		`{"variants":[{"name":"A","users":0},{"name":"B","users":0},{"name":"C","users":5,"conversions":5}],"history":[{"variants":[{"name":"A"},{"name":"B"},{"name":"C"}]}]}`,
		`{"alpha":0.999,"tuning":1e-9,"floor":0.3,"variants":[{"name":"A","users":9000000000000000000,"conversions":1},{"name":"B","users":1,"conversions":1}]}`,
		`{"metric":"revenue","variants":[{"name":"A","users":2,"sum":1e300,"sum_squares":1e308},{"name":"B","users":2,"sum":-1e-300,"sum_squares":1e-300}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var in Input
		if json.Unmarshal([]byte(s), &in) != nil || len(in.Variants) > ExactArms {
			return // JSON errors are the decoder's; many arms take the slow Monte Carlo path
		}
		r, err := Analyze(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// encoding/json refuses NaN and ±Inf floats and validates what
		// Num.MarshalJSON writes, so success means none leaked.
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}

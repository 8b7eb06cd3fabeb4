package abtest

import (
	"strings"
	"testing"
)

func TestVerdict(t *testing.T) {
	cases := []struct {
		name string
		in   Input
		want []string
	}{
		{"winner", Input{Variants: []Variant{conv("A", 20000, 2000), conv("B", 20000, 2300)}},
			[]string{"B beats A on conversion: +15.0 % [", "chance to win > 99.9 %", "keep running: no", "/ SRM: none"}},
		{"loser", Input{Variants: []Variant{conv("A", 20000, 2300), conv("B", 20000, 2000)}},
			[]string{"B loses to A on conversion: -13.0 % [", "keep running: no"}},
		// Fixed-horizon p ≈ 0.006 but the always-valid p ≈ 0.14: keep running.
		{"peeking-safe", Input{Variants: []Variant{conv("A", 10000, 1000), conv("B", 10000, 1120)}},
			[]string{"no clear difference between B and A on conversion: +12.0 % [+3.3 %, +21.4 %], chance to win 99.7 %; keep running: yes"}},
		{"empty", Input{Variants: []Variant{conv("A", 0, 0), conv("B", 0, 0)}},
			[]string{"B vs A on conversion: not enough data yet"}},
		{"srm", Input{Variants: []Variant{conv("A", 10300, 1000), conv("B", 9700, 1000)}},
			[]string{"SRM: detected (p = 2.2e-05)"}},
		{"two variants", Input{Variants: []Variant{conv("A", 20000, 2000), conv("B", 20000, 2300), conv("C", 20000, 2010)}},
			[]string{"B beats A", " | no clear difference between C and A"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := mustAnalyze(t, c.in).Verdict
			for _, w := range c.want {
				if !strings.Contains(v, w) {
					t.Errorf("verdict %q lacks %q", v, w)
				}
			}
		})
	}
}

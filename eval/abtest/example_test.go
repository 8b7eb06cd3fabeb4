package abtest_test

import (
	"fmt"

	"github.com/kairoshq/kairos/eval/abtest"
)

func ExampleAnalyze() {
	r, err := abtest.Analyze(abtest.Input{
		Metric: abtest.Conversion,
		Variants: []abtest.Variant{
			{Name: "A", Weight: 0.5, Users: 20000, Conversions: 2000},
			{Name: "B", Weight: 0.5, Users: 20000, Conversions: 2240},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	b := r.Variants[1]
	fmt.Printf("lift %.3f [%.3f, %.3f], p = %.2g, always-valid p = %.2g, chance to win %.5f\n",
		b.Lift, b.LiftLow, b.LiftHigh, b.PValue, b.AlwaysValidPValue, b.ChanceToWin)
	fmt.Println(r.Verdict)
	// Output:
	// lift 0.120 [0.058, 0.186], p = 9.7e-05, always-valid p = 0.0045, chance to win 0.99995
	// B beats A on conversion: +12.0 % [+5.8 %, +18.6 %], chance to win > 99.9 %; keep running: no / SRM: none
}

func ExampleAnalyze_invalid() {
	_, err := abtest.Analyze(abtest.Input{Variants: []abtest.Variant{
		{Name: "A", Users: 1000, Conversions: 100},
		{Name: "B", Users: 1000, Conversions: 1200},
	}})
	fmt.Println(err)
	// Output:
	// abtest: variants[1].conversions: 1200 > users 1000
}

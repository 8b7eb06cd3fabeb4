package promo

import (
	"reflect"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/testutil"
	"github.com/kairoshq/kairos/signals"
)

// FuzzRuleDecode: any input either is refused with a ValidationError or
// decodes into a rule that re-encodes to JSON decoding to the same rule,
// and compiles and evaluates without panicking.
func FuzzRuleDecode(f *testing.F) {
	seeds := []string{
		`{"id":"r1","when":{"exit":{}},"then":{"offer":"o1"}}`,
		`{"id":"r1","cooldown":"7d","priority":-3,"when":{"all":[{"count":{"type":"view","within":"10m","category":"shoes","min":3}},{"not":{"count":{"type":"conversion","within":"all"}}},{"dwell":{"element":"offer:7","min_ms":2000}},{"scroll":{"min":75}},{"exit":{}},{"affinity":{"offer":"o1","min":0.3}}]},"then":{"slot":"hero","campaign":"c"}}`,
		`{"id":"r","when":{"any":[{"session":{"min_events":2,"min_duration":"1m"}},{"count":{"type":["click","view"],"max":0,"min":0,"page":"/x","item":"i","offer":"o"}}]},"then":{"slot":"s"},"active":false}`,
		`{"id":"r","when":{"dwell":{"element":"cta","min_ms":1,"within":"batch"}},"then":{"slot":"s"}}`,
		`{"id":"r","when":{"not":{"not":{"exit":{"within":"session","page":"p"}}}},"then":{"offer":"o"}}`,
		`{"id":"r","when":{"all":[]},"then":{}}`,
		`{"id":"r","when":{"count":{"within":"10x"}},"then":{"offer":"o"}}`,
		`null`, `[]`, `{}`, `{"id":1}`, `{"id":"r","when":{"exit":{}},"then":{"offer":"o"},"cooldown":"1e3h"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	hist := []engine.HistoryEvent{
		{ID: "1", Type: signals.TypeView, Item: "i", Page: "/x", Time: time.Unix(100, 0)},
		{ID: "2", Type: signals.TypeDwell, Offer: "o", Value: 3000, Time: time.Unix(50, 0)},
		{ID: "3", Type: signals.TypeExit, Time: time.Unix(200, 0)},
	}
	ch := engine.VisitorChange{
		Visitor: engine.Visitor{ID: "v", History: hist, Session: engine.Session{Start: time.Unix(0, 0), Last: time.Unix(200, 0), Events: 3}},
		Fresh:   []signals.Event{{ID: "3", Type: signals.TypeExit, Element: "cta"}},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRule(b, "")
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("error %v is %T, not a *ValidationError", err, err)
			}
			return
		}
		if again := testutil.Redecode(t, r, DecodeRule); !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the rule:\n%+v\n%+v", r, again)
		}
		n := compileCond(&r.When)
		var c evalCtx
		c.reset(&ch)
		n.eval(&c)
	})
}

package promo_test

import (
	"fmt"
	"time"

	"github.com/kairoshq/kairos/engine/promo"
)

// A rule is validated when decoded; errors name the JSON path.
func ExampleDecodeRule() {
	_, err := promo.DecodeRule([]byte(`{"id":"exit-shoes",
	  "when":{"all":[{"exit":{}},{"scroll":{"min":75}},{"count":{"type":"view","within":"10x"}}]},
	  "then":{"offer":"o1"}}`), "")
	fmt.Println(err)

	r, err := promo.DecodeRule([]byte(`{"id":"exit-shoes","cooldown":"24h",
	  "when":{"all":[{"count":{"type":"view","category":"shoes","within":"10m","min":3}},{"exit":{}}]},
	  "then":{"offer":"o1","slot":"exit"}}`), "")
	fmt.Println(err, r.ID, time.Duration(r.Cooldown), len(r.When.All), r.Then.Offer, r.Active)
	// Output:
	// rules[exit-shoes].when.all[2].count.within: "10x" is not a duration (e.g. "10m", "24h", "7d") nor session, batch or all
	// <nil> exit-shoes 24h0m0s 2 o1 true
}

// Tokens are signed with the installation's secret: an altered or forged
// token does not verify.
func ExampleSigner() {
	s, _ := promo.NewSigner([]byte("the installation's 32-byte secret"))
	tok := s.Sign(promo.Token{Offer: "o1", Slot: "hero", Visitor: "v-17", Time: time.UnixMilli(1764239102123), Exposure: 42})
	t, err := s.Verify(tok)
	fmt.Println(t.Offer, t.Slot, t.Exposure, t.Matches("v-17"), t.Matches("v-18"), err)
	_, err = s.Verify(tok[:len(tok)-1] + "A")
	fmt.Println(err)
	// Output:
	// o1 hero 42 true false <nil>
	// promo: forged or malformed token
}

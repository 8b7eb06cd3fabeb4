package signals_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/kairoshq/kairos/signals"
)

func ExampleDecodeBatch() {
	body := `{"key": "pk_live_1", "events": [
		{"id": "e1", "type": "dwell", "visitor": "v1", "item": "sku-42", "value": 1850},
		{"id": "e2", "type": "dwell", "visitor": "v1", "item": "sku-42", "value": NaN},
		{"id": "e3", "type": "hover", "visitor": "v1"},
		{"id": "e4", "type": "view"}
	]}`
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	res, err := signals.DecodeBatch(strings.NewReader(body), now, signals.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("key:", res.Key)
	for _, e := range res.Accepted {
		fmt.Println("accepted:", e.ID, e.Time.Format(time.RFC3339))
	}
	for _, r := range res.Rejected {
		fmt.Printf("rejected #%d %s: %s: %s\n", r.Index, r.ID, r.Field, r.Reason)
	}
	// Output:
	// key: pk_live_1
	// accepted: e1 2026-11-23T10:00:00Z
	// rejected #1 e2: value: NaN is not a number
	// rejected #2 e3: type: unknown type "hover" (valid types: view, click, like, dwell, scroll, add_to_cart, conversion, impression, identify, exit)
	// rejected #3 e4: visitor: missing
}

func ExampleWeights_Of() {
	w, err := signals.ParseWeights("click=3,dwell=0.5")
	if err != nil {
		fmt.Println(err)
		return
	}
	dwell := signals.Event{Type: signals.TypeDwell, Item: "sku-42", Value: 4000}
	click := signals.Event{Type: signals.TypeClick, Item: "sku-42"}
	fmt.Println(w.Of(&dwell), w.Of(&click))
	fmt.Println(w)
	// Output:
	// 2 3
	// view=1,click=3,like=4,add_to_cart=6,conversion=10,dwell=0.5,dwell_max=5,dwell_min_ms=300,dwell_mouse=1,dwell_touch=1,dwell_viewport=0.5
}

package attention_test

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
	"github.com/kairoshq/kairos/signals"
)

func Example() {
	// The engine's store in a real server (engine/redisstore, engine/embedded).
	store := &attentiontest.Mem{}
	a, err := attention.New(store, attention.Config{})
	if err != nil {
		panic(err)
	}
	// The engine calls React with every committed batch.
	page := "https://shop.example/p/42?utm_source=mail"
	a.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{
		{Type: signals.TypeDwell, Visitor: "v1", Page: page, Element: "item:42", Value: 2600},
		{Type: signals.TypeDwell, Visitor: "v1", Page: page, Element: "offer:spring", Value: 900},
		{Type: signals.TypeDwell, Visitor: "v1", Page: page, Element: "item:17", Value: 250},
		{Type: signals.TypeDwell, Visitor: "v1", Page: page, Element: "reviews", Value: 1250},
	}}})

	heat, err := a.Heat(context.Background(), "https://shop.example/p/42", 10)
	if err != nil {
		panic(err)
	}
	fmt.Println(heat.Page, heat.TotalMs, "ms")
	for _, e := range heat.Elements {
		fmt.Printf("%-13s %5.1f %% — #%d  item=%q offer=%q\n", e.Element, 100*e.Share, e.Rank, e.Item, e.Offer)
	}
	// Output:
	// https://shop.example/p/42 5000 ms
	// item:42        52.0 % — #1  item="42" offer=""
	// reviews        25.0 % — #2  item="" offer=""
	// offer:spring   18.0 % — #3  item="" offer="spring"
	// item:17         5.0 % — #4  item="17" offer=""
}

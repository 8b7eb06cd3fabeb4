package stats_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

func ExampleParseRetention() {
	p, err := stats.ParseRetention("15m:7d,1d:400d")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p) // 1h keeps its default
	_, err = stats.ParseRetention("1h:30m")
	fmt.Println(err)
	// Output:
	// 15m:7d,1h:120d,1d:400d
	// retention of 1h: 30m0s is shorter than one bucket (1h0m0s)
}

func ExampleResolution_Bucket() {
	at := time.Date(2026, 11, 23, 23, 40, 0, 0, time.FixedZone("EST", -5*3600)) // 04:40 UTC on the 24th
	for _, res := range stats.Resolutions() {
		fmt.Println(res, res.Bucket(at).Format(time.RFC3339))
	}
	// Output:
	// 15m 2026-11-24T04:30:00Z
	// 1h 2026-11-24T04:00:00Z
	// 1d 2026-11-24T00:00:00Z
}

// Stats counts the engine's committed events (here handed to React
// directly, as the engine does after each commit) and answers series.
func ExampleStats() {
	dir, _ := os.MkdirTemp("", "kairos-example")
	defer os.RemoveAll(dir)
	store, err := embedded.Open(dir, embedded.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	st, err := stats.New(stats.NewStore(store), stats.Config{Retention: stats.Retention{}}) // keep everything
	if err != nil {
		fmt.Println(err)
		return
	}
	// eng.AddReactor(st) in a server; here one batch by hand.
	at := func(m int) signals.Timestamp {
		return signals.Timestamp{Time: time.Date(2026, 11, 23, 14, m, 0, 0, time.UTC)}
	}
	st.React(context.Background(), []engine.VisitorChange{{Fresh: []signals.Event{
		{ID: "e1", Type: signals.TypeView, Visitor: "v1", Item: "sku-42", Time: at(5)},
		{ID: "e2", Type: signals.TypeClick, Visitor: "v1", Item: "sku-42", Time: at(6)},
		{ID: "e3", Type: signals.TypeConversion, Visitor: "v1", Item: "sku-42", Value: 49.5, Time: at(50)},
	}}})
	from := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	points, err := st.Series(context.Background(), stats.Item("sku-42"), stats.Res15m, from, from.Add(time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range points {
		fmt.Println(p.Start.Format("15:04"), p.Counts, p.Revenue())
	}
	// Output:
	// 14:00 map[click:1 view:1] 0
	// 14:15 map[] 0
	// 14:30 map[] 0
	// 14:45 map[conversion:1] 49.5
}

package embedded_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/signals"
)

// A store persisted to a directory: what a Commit acknowledged is there
// after a restart.
func Example() {
	dir, err := os.MkdirTemp("", "kairos-data-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := embedded.Open(dir, embedded.Config{})
	if err != nil {
		log.Fatal(err)
	}
	err = s.Commit(ctx, engine.Commit{
		Events: []engine.EventRef{{Visitor: "visitor-1", ID: "evt-1"}},
		Visitors: []engine.VisitorUpdate{{
			ID:      "visitor-1",
			Append:  []engine.HistoryEvent{{ID: "evt-1", Type: signals.TypeView, Item: "sku-1", Weight: 1, Time: time.Unix(1750000000, 0)}},
			Factors: []float32{0.5, -0.25},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	s, err = embedded.Open(dir, embedded.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	seen, _ := s.Seen(ctx, []engine.EventRef{{Visitor: "visitor-1", ID: "evt-1"}, {Visitor: "visitor-1", ID: "evt-2"}})
	vs, _ := s.Visitors(ctx, []string{"visitor-1"})
	fmt.Println("seen:", seen)
	fmt.Println("history:", vs[0].History[0].Item, vs[0].History[0].Time.Format(time.RFC3339))
	fmt.Println("factors:", vs[0].Factors)
	// Output:
	// seen: [true false]
	// history: sku-1 2025-06-15T15:06:40Z
	// factors: [0.5 -0.25]
}

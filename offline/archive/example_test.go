package archive_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

func Example() {
	dir, _ := os.MkdirTemp("", "archive-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// The engine's side: append each consumed batch, ack after Append.
	a, err := archive.Open(ctx, archive.Options{Dir: dir, Sync: archive.SyncAlways})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 11, 23, 14, 10, 0, 0, time.UTC)
	batch := []signals.Event{
		{ID: "e1", Type: signals.TypeView, Visitor: "v1", Item: "sku-1", Time: signals.Timestamp{Time: at}},
		{ID: "e2", Type: signals.TypeClick, Visitor: "v2", Item: "sku-1", Time: signals.Timestamp{Time: at.Add(time.Second)}},
		{ID: "e3", Type: signals.TypeLike, Visitor: "v1", Item: "sku-2", Time: signals.Timestamp{Time: at.Add(2 * time.Second)}},
	}
	if err := a.Append(ctx, batch); err != nil { // written and fsynced when it returns
		fmt.Println(err)
		return
	}
	if err := a.Erase(ctx, "v2"); err != nil { // a right-to-erasure request
		fmt.Println(err)
		return
	}
	if err := a.Close(); err != nil {
		fmt.Println(err)
		return
	}

	// Replay or retrain, possibly in another process: a Reader needs no lock.
	r := archive.NewReader(dir, nil)
	err = r.Scan(ctx, at, time.Time{}, func(e signals.Event) error {
		fmt.Println(e.ID, e.Visitor, e.Item)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// e1 v1 sku-1
	// e3 v1 sku-2
}

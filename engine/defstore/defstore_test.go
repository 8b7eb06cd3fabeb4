package defstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/errs"
)

type def struct {
	Title   string `json:"title"`
	Created int    `json:"created"`
	Writes  int    `json:"writes"`
}

func TestPutGetDelete(t *testing.T) {
	ctx := context.Background()
	c := defstore.New(storagetest.NewMem(nil), "offers")
	if err := c.Put(ctx, "a", def{Title: "A"}, storage.Create); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "a", def{Title: "B"}, storage.Create); !errors.Is(err, errs.Conflict) {
		t.Fatalf("second create: %v, want a conflict", err)
	}
	var got def
	if err := c.Get(ctx, "a", &got); err != nil || got.Title != "A" {
		t.Fatalf("Get = %+v, %v; want title A", got, err)
	}
	if err := c.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "a", &got); !errors.Is(err, errs.NotFound) {
		t.Fatalf("Get after delete: %v, want not found", err)
	}
}

// TestUpsertConcurrent: of concurrent upserts of one id exactly one
// creates, each sees the previous write (no lost update of the count) and
// the creation stamp survives every replace.
func TestUpsertConcurrent(t *testing.T) {
	ctx := context.Background()
	c := defstore.New(storagetest.NewMem(nil), "rules")
	const n = 32
	var created atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := c.Upsert(ctx, "r", func(old []byte) (any, error) {
				d := def{Title: "r", Created: i}
				if old != nil {
					var prev def
					if err := json.Unmarshal(old, &prev); err != nil {
						return nil, err
					}
					d.Created, d.Writes = prev.Created, prev.Writes
				}
				d.Writes++
				return d, nil
			})
			if err != nil && !errors.Is(err, errs.Conflict) {
				t.Error(err)
			}
			if ok {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d upserts reported creating, want 1", created.Load())
	}
	var got def
	if err := c.Get(ctx, "r", &got); err != nil {
		t.Fatal(err)
	}
	if got.Writes < 1 || got.Writes > n {
		t.Fatalf("writes = %d, want in [1, %d]", got.Writes, n)
	}
}

func TestVersions(t *testing.T) {
	ctx := context.Background()
	mem := storagetest.NewMem(nil)
	offers, rules := defstore.New(mem, "offers"), defstore.New(mem, "rules")
	v := defstore.NewVersions(offers, rules)
	reloads := 0
	reload := func(context.Context) error { reloads++; return nil }
	steps := []struct {
		write func()
		want  int
	}{
		{func() {}, 1}, // the first poll always reloads
		{func() {}, 1},
		{func() { _ = offers.Put(ctx, "a", def{}, storage.Upsert) }, 2},
		{func() {}, 2},
		{func() { _ = rules.Put(ctx, "x", def{}, storage.Upsert) }, 3},
		{func() { _ = defstore.New(mem, "other").Put(ctx, "x", def{}, storage.Upsert) }, 3},
		{func() { _ = offers.Delete(ctx, "a") }, 4},
	}
	for i, s := range steps {
		s.write()
		if err := v.Reload(ctx, reload); err != nil {
			t.Fatal(err)
		}
		if reloads != s.want {
			t.Fatalf("step %d: %d reloads, want %d", i, reloads, s.want)
		}
	}
	// A failed reload is tried again at the next poll.
	_ = offers.Put(ctx, "b", def{}, storage.Upsert)
	if err := v.Reload(ctx, func(context.Context) error { return errors.New("boom") }); err == nil {
		t.Fatal("a failed reload returned nil")
	}
	if err := v.Reload(ctx, reload); err != nil || reloads != 5 {
		t.Fatalf("after a failed reload: %d reloads, err %v; want 5", reloads, err)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	mem := storagetest.NewMem(nil)
	offers := defstore.New(mem, "offers")
	got := make(chan struct{}, 10)
	done := make(chan error)
	go func() {
		done <- defstore.Watch(ctx, defstore.NewVersions(offers), time.Millisecond, func(context.Context) error {
			got <- struct{}{}
			return nil
		}, nil)
	}()
	<-got // first poll
	_ = offers.Put(ctx, "a", def{}, storage.Upsert)
	<-got
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

package attention_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/attention/attentiontest"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/backendtest"
)

// TestMapStoreContract runs the contract suite on the store written on
// the primitives, on every backend (in-memory, embedded, Redis).
func TestMapStoreContract(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, open func(testing.TB) storage.Backend) {
		attentiontest.Run(t, func(t *testing.T) attention.Store { return attention.NewStore(open(t)) })
	})
}

// BenchmarkStoreAddDwell writes a batch of 64 (page, element) counters
// over 8 pages, on the store written on the primitives, per
// backend.
func BenchmarkStoreAddDwell(b *testing.B) {
	var deltas []attention.Delta
	for p := range 8 {
		for e := range 8 {
			deltas = append(deltas, attention.Delta{Page: "https://shop.example/p/" + strconv.Itoa(p), Element: "item:" + strconv.Itoa(e), Ms: 700})
		}
	}
	w := attention.Write{Deltas: deltas, MaxElements: 1000, ExpireAt: time.Now().Add(time.Hour)}
	run := func(b *testing.B, s attention.Store) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.AddDwell(ctx, w); err != nil {
				b.Fatal(err)
			}
		}
	}
	backendtest.Bench(b, func(b *testing.B, be storage.Backend) { run(b, attention.NewStore(be)) })
}

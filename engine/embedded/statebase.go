package embedded

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/kairoshq/kairos/engine"
)

// Item states are most of a large catalog's store (1M items × k = 64:
// 0.5 GB of factors and curvature), and the engine keeps its own live
// copy of them in its model. So the store does not decode the item states
// of its snapshot into memory: it keeps the snapshot file open and the
// byte range of its item-state records (a stateBase), and reads them from
// the file when asked (ScanItemStates, ItemStates, compaction). Only the
// states saved since the snapshot — replayed from the log or written by
// SaveItemStates — are held in memory (state.states), and they override
// the base's rows. A compaction writes both into the new snapshot, which
// becomes the new base, and drops from memory the states it covers.

// stateBase is the item-state section of a snapshot file: the frames of
// its recStates records, [off, end) of f. It is immutable; readers hold a
// reference (acquire/release) so that a compaction that replaces it
// closes the file only once the last reader is done.
type stateBase struct {
	f        *os.File
	off, end int64

	mu      sync.Mutex
	readers int
	retired bool
}

// acquire takes a reader's reference on b (nil-safe).
func (b *stateBase) acquire() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.readers++
	b.mu.Unlock()
}

// release drops a reader's reference, closing the file of a retired base
// with its last reader.
func (b *stateBase) release() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.readers--
	closeNow := b.retired && b.readers == 0
	b.mu.Unlock()
	if closeNow {
		b.f.Close()
	}
}

// retire marks b replaced (or its store closed): its file is closed now,
// or by its last reader.
func (b *stateBase) retire() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.retired = true
	closeNow := b.readers == 0
	b.mu.Unlock()
	if closeNow {
		b.f.Close()
	}
}

// scanBatch is the most item states one call of a scan's fn gets.
const scanBatch = 1 << 12

// scan calls fn with the base's item states in batches, skipping the rows
// of skip (they have newer states); the batch and its vectors are reused
// between calls. The caller holds a reference.
func (b *stateBase) scan(skip map[int32]engine.ItemState, fn func([]engine.ItemState) error) error {
	if b == nil || b.end <= b.off {
		return nil
	}
	batch := make([]engine.ItemState, 0, scanBatch)
	pool := make([]engine.ItemState, scanBatch) // the vectors' memory, kept across batches
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := fn(batch)
		batch = batch[:0]
		return err
	}
	_, torn, err := scanRecords(io.NewSectionReader(b.f, b.off, b.end-b.off), func(p []byte) error {
		if p[0] != recStates {
			return fmt.Errorf("%w: record type %d in the item states", errCorruptSnapshot, p[0])
		}
		r := reader{b: p[1:]}
		for n := r.count(4); n > 0 && r.err == nil; n-- {
			blob := r.blob()
			if r.err != nil {
				break
			}
			st := &pool[len(batch)]
			if err := st.UnmarshalBinaryInto(blob); err != nil {
				return fmt.Errorf("%w: item states: %w", errCorruptSnapshot, err)
			}
			if _, newer := skip[st.Row]; newer {
				continue
			}
			batch = append(batch, *st)
			if len(batch) == scanBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := r.done(); err != nil {
			return fmt.Errorf("%w: item states: %w", errCorruptSnapshot, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if torn != "" {
		return fmt.Errorf("%w: item states: %s", errCorruptSnapshot, torn)
	}
	return flush()
}

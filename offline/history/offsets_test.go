package history_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals"
)

// logBuffer is a slog handler's output, safe for the archiver's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

const lostWarning = "stream retention removed messages"

// TestFencesAreNoGap: every history read appends a fence to the stream.
// The archiver must commit past other readers' fences and readers must
// count them as read, or the next real message looks like a gap made by
// retention (a false "they are lost" warning, ReadStats.Gap 1).
func TestFencesAreNoGap(t *testing.T) {
	c := newCluster(t)
	b := c.bus(t, "0")
	dir := filepath.Join(t.TempDir(), "history")
	store := openStore(t)
	var logs logBuffer
	evs := genEvents("f", 60, 5, base)
	_, stop := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r0", LeaseTTL: time.Second, Logger: logs.logger()})
	publish(t, b, evs[:20])
	waitFor(t, "20 archived", func() bool { return committed(t, dir) == 20 })

	// A reader's fence, then more events: the archiver reads the fence
	// first.
	if ids, st := historyIDs(t, dir, c.stream); len(ids) != 20 || st.Gap != 0 {
		t.Fatalf("first read: %d events, %+v", len(ids), st)
	}
	publish(t, b, evs[20:40])
	waitFor(t, "40 archived", func() bool { return committed(t, dir) == 40 })
	stop()
	if strings.Contains(logs.String(), lostWarning) {
		t.Fatalf("the archiver reported a loss after a reader's fence:\n%s", logs.String())
	}

	// With no archiver: a reader's fence right at the checkpoint, then
	// events; the next reader starts at that fence.
	if ids, st := historyIDs(t, dir, c.stream); len(ids) != 40 || st.Tail != 0 || st.Gap != 0 {
		t.Fatalf("second read: %d events, %+v", len(ids), st)
	}
	publish(t, b, evs[40:])
	ids, st := historyIDs(t, dir, c.stream)
	if len(ids) != 60 || st.Tail != 20 || st.Gap != 0 || st.Rejected != 0 {
		t.Fatalf("third read: %d events, %+v; want 60, 20 from the tail, no gap", len(ids), st)
	}

	// The next archiver continues from the committed offset: no loss
	// reported either.
	_, stop = startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: c.stream, Store: store, Holder: "r1", LeaseTTL: time.Second, Logger: logs.logger()})
	waitFor(t, "60 archived", func() bool { return committed(t, dir) == 60 })
	stop()
	if strings.Contains(logs.String(), lostWarning) {
		t.Fatalf("the archiver reported a loss after a takeover:\n%s", logs.String())
	}
}

// memStream is a Stream in memory (its messages' offsets may start
// after 0: retention removed the first ones).
type memStream struct {
	msgs []signals.StreamMessage
}

func (s *memStream) Read(ctx context.Context, from uint64, fn func([]signals.StreamMessage) error) error {
	var batch []signals.StreamMessage
	for _, m := range s.msgs {
		if m.Offset >= from {
			batch = append(batch, m)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return fn(batch)
}

func (s *memStream) Follow(ctx context.Context, from uint64, fn func([]signals.StreamMessage) error) error {
	if err := s.Read(ctx, from, fn); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// TestRetentionGapIsReported: messages retention removed before the
// archiver read them are still reported (a fence is not such a gap).
func TestRetentionGapIsReported(t *testing.T) {
	body := []byte(`{"id":"g1","type":"view","visitor":"v","item":"i","ts":"2026-01-02T03:04:05Z"}`)
	s := &memStream{msgs: []signals.StreamMessage{
		{Offset: 5, Published: time.Now(), Fence: true},
		{Offset: 6, Published: time.Now(), Body: body},
	}}
	dir := filepath.Join(t.TempDir(), "history")
	r, err := history.NewReader(history.ReaderConfig{Dir: dir, Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := r.Scan(context.Background(), time.Time{}, time.Time{}, func(signals.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Gap != 5 || n != 1 || st.Rejected != 0 {
		t.Fatalf("read %d events, %+v; want 1 and a gap of 5", n, st)
	}
	var logs logBuffer
	a, stop := startArchiver(t, history.ArchiverConfig{Dir: dir, Stream: s, Store: openStore(t), Holder: "r0", LeaseTTL: time.Second, Logger: logs.logger()})
	waitFor(t, "the archiver reaches the end", func() bool { return a.Stats().Next == 7 })
	stop()
	if !strings.Contains(logs.String(), lostWarning) || !strings.Contains(logs.String(), "first_kept=5") {
		t.Fatalf("no loss reported for offsets 0-4:\n%s", logs.String())
	}
}

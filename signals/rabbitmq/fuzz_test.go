package rabbitmq

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
)

// FuzzPack packs the valid events of a fuzzed message body with fuzzed
// caps (no broker involved) and checks that every message decodes to a
// run of one visitor's events within the caps, and that the messages hold
// every event once with each visitor's events in input order.
func FuzzPack(f *testing.F) {
	ev := func(id, visitor string) string {
		return `{"id":"` + id + `","type":"view","visitor":"` + visitor + `","item":"i","page":"https://a.example/<&>"}`
	}
	f.Add([]byte("["+ev("a", "v1")+","+ev("b", "v2")+","+ev("c", "v1")+","+ev("d", "v1")+"]"), uint8(2), uint16(300))
	f.Add([]byte("["+ev("a", "v1")+","+ev("a", "v1")+"]"), uint8(1), uint16(0))
	f.Add([]byte(ev("a", "v\u00e9")), uint8(0), uint16(10))
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte, maxEvents uint8, maxBytes uint16) {
		res, err := signals.DecodeMessage(body, now, signals.Limits{})
		if err != nil || len(res.Events) == 0 {
			return
		}
		cfg := Config{MaxMessageEvents: 1 + int(maxEvents)%8, Limits: signals.Limits{MaxBatchBytes: 1 + int(maxBytes)}}.Defaults()
		b := &Bus{cfg: cfg}
		keys, msgs, err := b.pack(context.Background(), res.Events, now, "")
		if err != nil {
			var fe *signals.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("pack: %v", err)
			}
			return // an event over MaxEventBytes
		}
		if len(keys) != len(msgs) {
			t.Fatalf("%d keys for %d messages", len(keys), len(msgs))
		}
		got := map[string][]string{}
		for i, m := range msgs {
			dec, err := signals.DecodeMessage(m.Body, now, signals.Limits{})
			if err != nil || len(dec.Rejected) > 0 {
				t.Fatalf("message %d %s does not decode: %v %+v", i, m.Body, err, dec.Rejected)
			}
			n := len(dec.Events)
			if m.Headers[headerCount] != int32(n) || n > cfg.MaxMessageEvents || (n > 1 && len(m.Body) > cfg.Limits.MaxBatchBytes) || dec.Array != (n > 1) {
				t.Fatalf("message %d: %d events, %d bytes, header %v, array %v; caps %d events, %d bytes",
					i, n, len(m.Body), m.Headers[headerCount], dec.Array, cfg.MaxMessageEvents, cfg.Limits.MaxBatchBytes)
			}
			if m.MessageId != dec.Events[0].ID {
				t.Fatalf("message %d: id %q, first event %q", i, m.MessageId, dec.Events[0].ID)
			}
			for _, e := range dec.Events {
				if e.Visitor != keys[i] {
					t.Fatalf("message %d routed by %q holds an event of %q", i, keys[i], e.Visitor)
				}
				got[e.Visitor] = append(got[e.Visitor], e.ID)
			}
		}
		want := map[string][]string{}
		for _, e := range res.Events {
			want[e.Visitor] = append(want[e.Visitor], e.ID)
		}
		if len(got) != len(want) {
			t.Fatalf("visitors %v, want %v", got, want)
		}
		for v, w := range want {
			if !slices.Equal(got[v], w) {
				t.Fatalf("visitor %q: %v, want %v", v, got[v], w)
			}
		}
	})
}

package engine

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals"
)

func TestHistoryEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    HistoryEvent
	}{
		{"zero", HistoryEvent{}},
		{"full", HistoryEvent{
			ID: "evt-1", Type: signals.TypeDwell, Item: "item-42", Offer: "o-7",
			Page: "https://shop.example/p/42?x=é", Weight: 0.25, Value: -1234.5,
			Time: time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.UTC),
		}},
		{"unknown type, pre-epoch time", HistoryEvent{
			ID: "x", Type: "custom_type", Weight: float32(math.Inf(1)), Value: math.MaxFloat64,
			Time: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.e.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var fromBytes, fromString HistoryEvent
			if err := fromBytes.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if err := fromString.UnmarshalBinaryString(string(b)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromBytes, tt.e) || !reflect.DeepEqual(fromString, tt.e) {
				t.Fatalf("round trip:\n got %+v\n and %+v\nwant %+v", fromBytes, fromString, tt.e)
			}
			// Every strict prefix is rejected, never decoded silently.
			for n := range len(b) {
				var e HistoryEvent
				if err := e.UnmarshalBinary(b[:n]); !errors.Is(err, errCorrupt) {
					t.Fatalf("prefix of %d/%d bytes: err %v, want errCorrupt", n, len(b), err)
				}
			}
			if err := new(HistoryEvent).UnmarshalBinary(append(b, 0)); !errors.Is(err, errCorrupt) {
				t.Fatalf("trailing byte: err %v, want errCorrupt", err)
			}
		})
	}
}

func TestHistoryEventLocalTimeDecodesUTC(t *testing.T) {
	loc := time.FixedZone("X", 3*3600)
	e := HistoryEvent{ID: "a", Time: time.Date(2025, 1, 1, 12, 0, 0, 5, loc)}
	b, _ := e.MarshalBinary()
	var got HistoryEvent
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(e.Time) || got.Time.Location() != time.UTC {
		t.Fatalf("time %v (%v), want %v in UTC", got.Time, got.Time.Location(), e.Time)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	for _, s := range []Session{
		{},
		{ID: "s-1", Start: time.Unix(1700000000, 5).UTC(), Last: time.Unix(1700000900, 0).UTC(), Events: 12},
		{ID: "neg", Events: -3},
	} {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got, got2 Session
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if err := got2.UnmarshalBinaryString(string(b)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) || !reflect.DeepEqual(got2, s) {
			t.Fatalf("got %+v / %+v, want %+v", got, got2, s)
		}
	}
}

func TestItemStateRoundTrip(t *testing.T) {
	for _, st := range []ItemState{
		{},
		{Row: 7, Count: 3, Factors: []float32{1, -2.5, float32(math.SmallestNonzeroFloat32)}},
		{Row: math.MaxInt32, Count: math.MinInt32, Factors: []float32{0.5}, Curv: []float32{1, 2, 3, 4}},
	} {
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got, got2 ItemState
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if err := got2.UnmarshalBinaryString(string(b)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, st) || !reflect.DeepEqual(got2, st) {
			t.Fatalf("got %+v / %+v, want %+v", got, got2, st)
		}
		for n := range len(b) {
			if err := new(ItemState).UnmarshalBinary(b[:n]); err == nil {
				t.Fatalf("prefix of %d/%d bytes decoded", n, len(b))
			}
		}
	}
}

func TestFactorsCodec(t *testing.T) {
	f := []float32{1, -0.5, 3.25, float32(math.NaN())}
	b := AppendFactors(nil, f)
	if len(b) != 16 || b[0] != 0 || b[3] != 0x3f || b[2] != 0x80 {
		t.Fatalf("encoding % x is not little-endian float32", b)
	}
	dst := make([]float32, 8)
	got, err := DecodeFactors(dst, string(b))
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &dst[0] {
		t.Fatal("DecodeFactors did not reuse dst")
	}
	if len(got) != 4 || got[0] != 1 || got[1] != -0.5 || got[2] != 3.25 || !math.IsNaN(float64(got[3])) {
		t.Fatalf("got %v", got)
	}
	if got, err := DecodeFactors(nil, []byte{}); got != nil || err != nil {
		t.Fatalf("empty: %v, %v", got, err)
	}
	if _, err := DecodeFactors(nil, b[:5]); !errors.Is(err, errCorrupt) {
		t.Fatalf("5 bytes: err %v", err)
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 2", []byte{2, 0, 0, 0, 0, 0}},
		{"huge string length", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"varint overflow", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := new(HistoryEvent).UnmarshalBinary(tt.b); !errors.Is(err, errCorrupt) {
				t.Fatalf("HistoryEvent: err %v", err)
			}
			if err := new(ItemState).UnmarshalBinary(tt.b); !errors.Is(err, errCorrupt) {
				t.Fatalf("ItemState: err %v", err)
			}
		})
	}
	// A float count larger than the remaining bytes must not allocate it.
	b := []byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if err := new(ItemState).UnmarshalBinary(b); !errors.Is(err, errCorrupt) {
		t.Fatalf("huge float count: err %v", err)
	}
}

func FuzzHistoryEventDecode(f *testing.F) {
	e := HistoryEvent{ID: "e", Type: signals.TypeView, Item: "i", Weight: 1, Time: time.Unix(1, 2).UTC()}
	b, _ := e.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e HistoryEvent
		if err := e.UnmarshalBinary(b); err != nil {
			return
		}
		// Whatever decodes re-encodes to a value that decodes the same.
		b2, _ := e.MarshalBinary()
		var e2 HistoryEvent
		if err := e2.UnmarshalBinary(b2); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !reflect.DeepEqual(e, e2) && !(math.IsNaN(float64(e.Weight)) || math.IsNaN(e.Value)) {
			t.Fatalf("unstable: %+v vs %+v", e, e2)
		}
	})
}

func BenchmarkHistoryEventDecodeString(b *testing.B) {
	e := HistoryEvent{ID: "0190b7e2-6d0c-7a3e-9f1e-2b1c3d4e5f60", Type: signals.TypeClick, Item: "sku-123456",
		Page: "https://shop.example/p/sku-123456", Weight: 2, Time: time.Now().UTC()}
	enc, _ := e.MarshalBinary()
	s := string(enc)
	b.ReportAllocs()
	for b.Loop() {
		var d HistoryEvent
		if err := d.UnmarshalBinaryString(s); err != nil {
			b.Fatal(err)
		}
	}
}

package engine

import (
	"slices"
	"testing"
	"time"
)

// placeForwarded keeps each device's events in time order, in a history
// that is not in time order as a whole (a merged anonymous history was
// appended after later events of another device).
func TestPlaceForwardedKeepsDeviceOrder(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC) }
	history := []HistoryEvent{
		{ID: "b1", Device: "b", Time: at(10)},
		{ID: "b3", Device: "b", Time: at(40)}, // b's later event, came directly
		{ID: "a1", Device: "a", Time: at(5)},  // a's merged anonymous history
		{ID: "a2", Device: "a", Time: at(20)},
	}
	add := []HistoryEvent{
		{ID: "c1", Device: "c", Time: at(50)},
		{ID: "b2", Device: "b", Time: at(30)}, // forwarded: belongs before b3
		{ID: "a3", Device: "a", Time: at(25)}, // forwarded: already in a's order
	}
	got, ok := placeForwarded(history, add, map[string]bool{"b2": true, "a3": true})
	if !ok {
		t.Fatal("nothing moved")
	}
	var ids []string
	for _, h := range got {
		ids = append(ids, h.ID)
	}
	if want := []string{"b1", "b2", "b3", "a1", "a2", "c1", "a3"}; !slices.Equal(ids, want) {
		t.Fatalf("history %v, want %v", ids, want)
	}
	if _, ok := placeForwarded(history, add[2:], map[string]bool{"a3": true}); ok {
		t.Fatal("an event already in its device's order was moved")
	}
	if _, ok := placeForwarded(history, add, nil); ok {
		t.Fatal("moved without forwarded events")
	}
}

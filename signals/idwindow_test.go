package signals

import (
	"fmt"
	"testing"
)

func TestIDWindowForgetsTheOldest(t *testing.T) {
	w := NewIDWindow(3)
	for i := range 3 {
		if w.Seen(fmt.Sprint(i)) {
			t.Fatalf("id %d seen before it was added", i)
		}
	}
	if !w.Seen("0") || !w.Seen("2") {
		t.Fatal("ids in the window not reported")
	}
	w.Seen("3") // evicts "0", the oldest distinct id
	if !w.Seen("1") || w.Seen("0") {
		t.Fatal(`after a fourth id: want "1" still seen and "0" forgotten`)
	}
}

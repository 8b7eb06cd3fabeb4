package signals

import (
	"strings"
	"testing"
)

func TestWeightsOf(t *testing.T) {
	w := DefaultWeights()
	tests := []struct {
		typ    Type
		item   string
		value  float64
		source string
		want   float64
	}{
		{TypeView, "i", 0, "", 1},
		{TypeClick, "i", 0, "", 2},
		{TypeLike, "i", 0, "", 4},
		{TypeAddToCart, "i", 0, "", 6},
		{TypeConversion, "i", 5000, "", 10},
		{TypeDwell, "i", 299, "", 0},
		{TypeDwell, "i", 300, "", 0.3},
		{TypeDwell, "i", 2500, "", 2.5},
		{TypeDwell, "i", 60000, "", 5},
		{TypeDwell, "i", 2500, SourceMouse, 2.5},
		{TypeDwell, "i", 2500, SourceTouch, 2.5},
		{TypeDwell, "i", 2500, SourceViewport, 1.25},
		{TypeDwell, "i", 60000, SourceViewport, 2.5}, // the cap, then the factor
		{TypeDwell, "i", 299, SourceViewport, 0},
		{TypeImpression, "i", 0, "", 0},
		{TypeScroll, "i", 80, "", 0},
		{TypeExit, "i", 0, "", 0},
		{TypeIdentify, "i", 0, "", 0},
		{TypeView, "", 0, "", 0},
		{"unknown", "i", 0, "", 0},
	}
	for _, tt := range tests {
		e := Event{Type: tt.typ, Item: tt.item, Value: tt.value, Source: tt.source}
		if got := w.Of(&e); got != tt.want {
			t.Errorf("Of(%s item=%q value=%v source=%q) = %v, want %v", tt.typ, tt.item, tt.value, tt.source, got, tt.want)
		}
	}
}

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights(" click = 3 , dwell=0.5,, dwell_min_ms=100, dwell_viewport=0.2")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultWeights()
	want.Click, want.DwellPerSecond, want.DwellMinMs, want.DwellViewport = 3, 0.5, 100, 0.2
	if w != want {
		t.Errorf("ParseWeights = %+v, want %+v", w, want)
	}
	if w, err := ParseWeights(""); err != nil || w != DefaultWeights() {
		t.Errorf(`ParseWeights("") = %+v, %v; want defaults`, w, err)
	}
	// String round-trips.
	s := want.String()
	if s != "view=1,click=3,like=4,add_to_cart=6,conversion=10,dwell=0.5,dwell_max=5,dwell_min_ms=100,dwell_mouse=1,dwell_touch=1,dwell_viewport=0.2" {
		t.Errorf("String = %q", s)
	}
	if back, err := ParseWeights(s); err != nil || back != want {
		t.Errorf("ParseWeights(String()) = %+v, %v", back, err)
	}
}

func TestParseWeightsErrors(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"view", []string{`entry "view": expected name=number`}},
		{"hover=1", []string{`entry "hover=1": unknown name "hover" (valid: view, click, like, add_to_cart, conversion, dwell, dwell_max, dwell_min_ms, dwell_mouse, dwell_touch, dwell_viewport)`}},
		{"impression=1", []string{`entry "impression=1": impression is not a learning signal`}},
		{"click=abc", []string{`entry "click=abc": "abc" is not a finite number`}},
		{"click=NaN", []string{`"NaN" is not a finite number`}},
		{"like=-1", []string{`entry "like=-1": must not be negative`}},
		{"view=1,view=2", []string{`entry "view=2": view given twice`}},
		{"x=1,click=y", []string{`unknown name "x"`, `"y" is not a finite number`}}, // all at once
	}
	for _, tt := range tests {
		w := DefaultWeights()
		err := w.Set(tt.in)
		if err == nil {
			t.Errorf("Set(%q) = nil, want error", tt.in)
			continue
		}
		for _, want := range tt.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Set(%q) = %v, want it to contain %q", tt.in, err, want)
			}
		}
		if w != DefaultWeights() {
			t.Errorf("Set(%q) changed the weights on error: %+v", tt.in, w)
		}
	}
}

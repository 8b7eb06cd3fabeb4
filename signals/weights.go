package signals

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Weights gives the learning weight w of an event: the confidence of the
// visitor-item interaction in implicit ALS is c = 1 + α·w, summed over the
// visitor's events on the item. The defaults (Defaults, DefaultWeights) are:
//
//	view         1
//	click        2
//	like         4
//	add_to_cart  6
//	conversion  10
//	dwell        1 per second of cursor dwell, capped at 5, and 0 below 300 ms
//	             (a cursor passing over an item is not attention), times the
//	             factor of the dwell's source (Event.Source):
//	               mouse     1    the pointer rested on the element
//	               touch     1    a finger rested on it
//	               viewport  0.5  it was at least half visible while the page
//	                              was visible and scrolling had stopped: a
//	                              weaker sign of attention (everything on a
//	                              screen is "seen"), so half the weight
//	impression, scroll, exit, identify: 0 (not learning signals; they feed
//	sessions, rules, offers and experiments)
//
// An event without Item always weighs 0. The text form, for flags and
// environment variables, lists name=number pairs separated by commas, with
// the names view, click, like, add_to_cart, conversion, dwell (weight per
// second), dwell_max, dwell_min_ms and the source factors dwell_mouse,
// dwell_touch and dwell_viewport; see ParseWeights. Weights implements
// flag.Value.
type Weights struct {
	View       float64 // weight of a view
	Click      float64 // weight of a click
	Like       float64 // weight of a like
	AddToCart  float64 // weight of an add_to_cart
	Conversion float64 // weight of a conversion (not scaled by revenue)
	// DwellPerSecond is the weight of one second of dwell.
	DwellPerSecond float64
	// DwellMax caps the weight of one dwell event.
	DwellMax float64
	// DwellMinMs is the shortest dwell, in ms, that counts at all.
	DwellMinMs float64
	// DwellMouse, DwellTouch and DwellViewport multiply the weight of a
	// dwell measured with the mouse (or with no source), a finger or the
	// element's visibility (Event.Source); the cap DwellMax applies
	// before the factor.
	DwellMouse, DwellTouch, DwellViewport float64
}

// Defaults returns the default weights listed in the Weights doc comment.
func (Weights) Defaults() Weights {
	return Weights{
		View: 1, Click: 2, Like: 4, AddToCart: 6, Conversion: 10,
		DwellPerSecond: 1, DwellMax: 5, DwellMinMs: 300,
		DwellMouse: 1, DwellTouch: 1, DwellViewport: 0.5,
	}
}

// DefaultWeights returns Weights{}.Defaults().
func DefaultWeights() Weights { return Weights{}.Defaults() }

// Of returns the learning weight of e (0 for non-learning types and for
// events without Item).
func (w Weights) Of(e *Event) float64 {
	if e.Item == "" {
		return 0
	}
	switch e.Type {
	case TypeView:
		return w.View
	case TypeClick:
		return w.Click
	case TypeLike:
		return w.Like
	case TypeAddToCart:
		return w.AddToCart
	case TypeConversion:
		return w.Conversion
	case TypeDwell:
		if !(e.Value >= w.DwellMinMs) { // also false for NaN
			return 0
		}
		return math.Min(e.Value/1000*w.DwellPerSecond, w.DwellMax) * w.source(e.Source)
	}
	return 0
}

// source returns the factor of a dwell source (DwellMouse for an empty
// or unknown one: Validate refuses unknown sources).
func (w Weights) source(src string) float64 {
	switch src {
	case SourceTouch:
		return w.DwellTouch
	case SourceViewport:
		return w.DwellViewport
	}
	return w.DwellMouse
}

// weightKeys lists the text-form names in order, with their fields.
var weightKeys = []struct {
	name string
	get  func(*Weights) *float64
}{
	{"view", func(w *Weights) *float64 { return &w.View }},
	{"click", func(w *Weights) *float64 { return &w.Click }},
	{"like", func(w *Weights) *float64 { return &w.Like }},
	{"add_to_cart", func(w *Weights) *float64 { return &w.AddToCart }},
	{"conversion", func(w *Weights) *float64 { return &w.Conversion }},
	{"dwell", func(w *Weights) *float64 { return &w.DwellPerSecond }},
	{"dwell_max", func(w *Weights) *float64 { return &w.DwellMax }},
	{"dwell_min_ms", func(w *Weights) *float64 { return &w.DwellMinMs }},
	{"dwell_mouse", func(w *Weights) *float64 { return &w.DwellMouse }},
	{"dwell_touch", func(w *Weights) *float64 { return &w.DwellTouch }},
	{"dwell_viewport", func(w *Weights) *float64 { return &w.DwellViewport }},
}

var weightNames = func() string {
	s := make([]string, len(weightKeys))
	for i, k := range weightKeys {
		s[i] = k.name
	}
	return strings.Join(s, ", ")
}()

// String returns the text form of w with every name, e.g.
// "view=1,click=2,like=4,add_to_cart=6,conversion=10,dwell=1,dwell_max=5,dwell_min_ms=300,dwell_mouse=1,dwell_touch=1,dwell_viewport=0.5".
func (w Weights) String() string {
	var b strings.Builder
	for i, k := range weightKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k.name)
		b.WriteByte('=')
		b.WriteString(formatFloat(*k.get(&w)))
	}
	return b.String()
}

// ParseWeights parses the text form (see Weights) over the defaults: names
// not listed keep their default weight, and "" yields the defaults.
func ParseWeights(s string) (Weights, error) {
	w := DefaultWeights()
	if err := w.Set(s); err != nil {
		return Weights{}, err
	}
	return w, nil
}

// Set parses the text form over the current weights (flag.Value). Spaces
// around names and numbers and empty entries are ignored. It reports every
// bad entry at once, naming it, and changes nothing on error.
func (w *Weights) Set(s string) error {
	nw := *w
	var errs []error
	given := map[string]bool{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, num, ok := strings.Cut(entry, "=")
		name, num = strings.TrimSpace(name), strings.TrimSpace(num)
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("weights: entry %q: expected name=number", entry))
			continue
		}
		var p *float64
		for _, k := range weightKeys {
			if k.name == name {
				p = k.get(&nw)
			}
		}
		if p == nil {
			if t := Type(name); t.Known() {
				errs = append(errs, fmt.Errorf("weights: entry %q: %s is not a learning signal, its weight is always 0", entry, name))
			} else {
				errs = append(errs, fmt.Errorf("weights: entry %q: unknown name %q (valid: %s)", entry, name, weightNames))
			}
			continue
		}
		if given[name] {
			errs = append(errs, fmt.Errorf("weights: entry %q: %s given twice", entry, name))
			continue
		}
		given[name] = true
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("weights: entry %q: %q is not a finite number", entry, num))
			continue
		}
		if v < 0 {
			errs = append(errs, fmt.Errorf("weights: entry %q: must not be negative", entry))
			continue
		}
		*p = v
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := nw.Validate(); err != nil {
		return err
	}
	*w = nw
	return nil
}

// Validate reports every weight that is negative, NaN or infinite.
func (w Weights) Validate() error {
	var errs []error
	for _, k := range weightKeys {
		if v := *k.get(&w); v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("weights: %s must be a finite number >= 0, got %s", k.name, formatFloat(v)))
		}
	}
	return errors.Join(errs...)
}

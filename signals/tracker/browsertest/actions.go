package browsertest

import (
	"context"
	"net/http"
	"time"
)

// InputSource is one W3C input source (a mouse, a finger, a wheel or a
// keyboard) with its sequence of actions. Build it with Mouse, Touch, Wheel
// or Keyboard and
// the chained methods; Browser.Perform runs several sources in parallel,
// tick by tick.
type InputSource struct {
	Type       string            `json:"type"`
	ID         string            `json:"id"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Actions    []map[string]any  `json:"actions"`
}

// Mouse returns an empty mouse pointer source.
func Mouse() *InputSource {
	return &InputSource{Type: "pointer", ID: "mouse", Parameters: map[string]string{"pointerType": "mouse"}}
}

// Touch returns an empty touch pointer source: one finger. Down and Up
// touch and lift it, MoveTo and MoveToElement move it; the page gets
// touch and pointer events (pointerType "touch"). Use it with
// Browser.EmulateMobile.
func Touch() *InputSource {
	return &InputSource{Type: "pointer", ID: "finger", Parameters: map[string]string{"pointerType": "touch"}}
}

// Wheel returns an empty wheel source.
func Wheel() *InputSource { return &InputSource{Type: "wheel", ID: "wheel"} }

// Keyboard returns an empty key source.
func Keyboard() *InputSource { return &InputSource{Type: "key", ID: "keyboard"} }

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (s *InputSource) add(a map[string]any) *InputSource {
	s.Actions = append(s.Actions, a)
	return s
}

// Pause waits d (any source).
func (s *InputSource) Pause(d time.Duration) *InputSource {
	return s.add(map[string]any{"type": "pause", "duration": ms(d)})
}

// MoveTo moves the pointer to (x, y) in viewport CSS pixels over d (d = 0
// is a single jump: one pointermove/mousemove).
func (s *InputSource) MoveTo(x, y int, d time.Duration) *InputSource {
	return s.add(map[string]any{"type": "pointerMove", "origin": "viewport", "x": x, "y": y, "duration": ms(d)})
}

// MoveBy moves the pointer by (dx, dy) from where it is.
func (s *InputSource) MoveBy(dx, dy int, d time.Duration) *InputSource {
	return s.add(map[string]any{"type": "pointerMove", "origin": "pointer", "x": dx, "y": dy, "duration": ms(d)})
}

// MoveToElement moves the pointer to the centre of el plus (dx, dy). The
// element must be in the viewport (scroll it into view first).
func (s *InputSource) MoveToElement(el Element, dx, dy int, d time.Duration) *InputSource {
	return s.add(map[string]any{"type": "pointerMove", "origin": el, "x": dx, "y": dy, "duration": ms(d)})
}

// Down presses a pointer button (0 left, 1 middle, 2 right).
func (s *InputSource) Down(button int) *InputSource {
	return s.add(map[string]any{"type": "pointerDown", "button": button})
}

// Up releases a pointer button.
func (s *InputSource) Up(button int) *InputSource {
	return s.add(map[string]any{"type": "pointerUp", "button": button})
}

// Click presses and releases the left button where the pointer is.
func (s *InputSource) Click() *InputSource { return s.Down(0).Up(0) }

// Scroll turns the wheel by (dx, dy) CSS pixels with the pointer at
// (x, y) in the viewport, over d.
func (s *InputSource) Scroll(x, y, dx, dy int, d time.Duration) *InputSource {
	return s.add(map[string]any{"type": "scroll", "origin": "viewport", "x": x, "y": y,
		"deltaX": dx, "deltaY": dy, "duration": ms(d)})
}

// KeyDown presses key (a character, or a WebDriver key code such as
// "\uE007" for Enter).
func (s *InputSource) KeyDown(key string) *InputSource {
	return s.add(map[string]any{"type": "keyDown", "value": key})
}

// KeyUp releases key.
func (s *InputSource) KeyUp(key string) *InputSource {
	return s.add(map[string]any{"type": "keyUp", "value": key})
}

// Perform dispatches the actions of sources (W3C Perform Actions) and
// returns when they are done. Chromium delivers them as trusted input
// events.
func (b *Browser) Perform(ctx context.Context, sources ...*InputSource) error {
	return b.cmdf(ctx, http.MethodPost, "/actions", map[string]any{"actions": sources}, nil)
}

// ReleaseActions releases every pressed key and button and forgets the
// input state.
func (b *Browser) ReleaseActions(ctx context.Context) error {
	return b.cmdf(ctx, http.MethodDelete, "/actions", nil, nil)
}

// MouseMoveCDP moves the mouse to (x, y) in viewport CSS pixels through
// the DevTools Protocol (Input.dispatchMouseEvent). Unlike Perform it
// accepts points outside the viewport: moving to y < 0 makes Chromium fire
// a trusted mouseout with relatedTarget null and clientY < 0, as when a
// real cursor leaves the window through the top.
func (b *Browser) MouseMoveCDP(ctx context.Context, x, y int) error {
	_, err := b.CDP(ctx, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": x, "y": y})
	return err
}

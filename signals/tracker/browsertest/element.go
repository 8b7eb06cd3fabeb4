package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// elementKey is the W3C web element identifier.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// Element is a reference to a DOM element of the current page. It encodes
// as a W3C element reference, so it can be passed to Execute and used as
// the origin of a pointer move.
type Element struct {
	b  *Browser
	ID string
}

// MarshalJSON encodes e as {"element-6066-...": id}.
func (e Element) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{elementKey: e.ID})
}

// UnmarshalJSON decodes a W3C element reference (the Element is not bound
// to a Browser; use Browser.Element to bind it).
func (e *Element) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	id, ok := m[elementKey]
	if !ok {
		return errors.New("browsertest: not an element reference")
	}
	e.ID = id
	return nil
}

// Element binds an element id (e.g. decoded from a script result) to b.
func (b *Browser) Element(id string) Element { return Element{b: b, ID: id} }

// Rect is an element's position and size in CSS pixels, relative to the
// document.
type Rect struct {
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

// FindElement returns the first element matching the CSS selector; the
// error has code "no such element" when there is none.
func (b *Browser) FindElement(ctx context.Context, css string) (Element, error) {
	var e Element
	err := b.cmdf(ctx, http.MethodPost, "/element", map[string]string{"using": "css selector", "value": css}, &e)
	e.b = b
	return e, err
}

// FindElements returns every element matching the CSS selector.
func (b *Browser) FindElements(ctx context.Context, css string) ([]Element, error) {
	var es []Element
	err := b.cmdf(ctx, http.MethodPost, "/elements", map[string]string{"using": "css selector", "value": css}, &es)
	for i := range es {
		es[i].b = b
	}
	return es, err
}

func (e Element) path(p string) string { return "/element/" + url.PathEscape(e.ID) + p }

// Click scrolls e into view and clicks its centre (WebDriver element click).
func (e Element) Click(ctx context.Context) error {
	return e.b.cmdf(ctx, http.MethodPost, e.path("/click"), nil, nil)
}

// Text returns the rendered text of e.
func (e Element) Text(ctx context.Context) (string, error) {
	var s string
	err := e.b.cmdf(ctx, http.MethodGet, e.path("/text"), nil, &s)
	return s, err
}

// Attribute returns the attribute name of e, and false when it is absent.
func (e Element) Attribute(ctx context.Context, name string) (string, bool, error) {
	var s *string
	if err := e.b.cmdf(ctx, http.MethodGet, e.path("/attribute/"+url.PathEscape(name)), nil, &s); err != nil {
		return "", false, err
	}
	if s == nil {
		return "", false, nil
	}
	return *s, true, nil
}

// Rect returns e's position and size.
func (e Element) Rect(ctx context.Context) (Rect, error) {
	var r Rect
	err := e.b.cmdf(ctx, http.MethodGet, e.path("/rect"), nil, &r)
	return r, err
}

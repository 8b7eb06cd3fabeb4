package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// ItemsPage is the answer to GET /v1/items: up to limit items in ascending
// id order; Next, when present, is the after= of the following page (a
// page may be empty at the very end).
type ItemsPage struct {
	Items []engine.Item `json:"items"`
	Next  string        `json:"next,omitempty"`
}

// itemInput is the body of POST and PUT /v1/items: engine.Item where
// "active" defaults to true and "created"/"updated" are ignored (they are
// set by the engine; accepting them lets a client PUT back what it got).
type itemInput struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Category string            `json:"category"`
	Tags     []string          `json:"tags"`
	Attrs    map[string]string `json:"attributes"`
	Active   *bool             `json:"active"`
	Created  json.RawMessage   `json:"created"`
	Updated  json.RawMessage   `json:"updated"`
}

func (in *itemInput) item() engine.Item {
	it := engine.Item{ID: in.ID, Title: in.Title, Category: in.Category, Tags: in.Tags, Attrs: in.Attrs, Active: true}
	if in.Active != nil {
		it.Active = *in.Active
	}
	return it
}

// listItems is GET /v1/items?after=&limit=.
func (s *Server) listItems(c echo.Context) error {
	q := c.QueryParams()
	limit, err := intParam(q, "limit", s.cfg.DefaultPageSize, 1, s.cfg.MaxPageSize)
	if err != nil {
		return err
	}
	items, err := s.deps.Catalog.Items(c.Request().Context(), q.Get("after"), limit)
	if err != nil {
		return err
	}
	page := ItemsPage{Items: items}
	if page.Items == nil {
		page.Items = []engine.Item{}
	}
	if len(items) == limit {
		page.Next = items[len(items)-1].ID
	}
	return c.JSON(http.StatusOK, page)
}

// createItem is POST /v1/items: 201, or 409 when the id exists.
func (s *Server) createItem(c echo.Context) error {
	in, err := s.readItem(c)
	if err != nil {
		return err
	}
	if in.ID == "" {
		return invalidf("id: missing")
	}
	it, err := s.deps.Catalog.CreateItem(c.Request().Context(), in.item())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/items/"+url.PathEscape(it.ID))
	return c.JSON(http.StatusCreated, it)
}

// getItem is GET /v1/items/{id}.
func (s *Server) getItem(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	it, err := s.deps.Catalog.Item(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, it)
}

// putItem is PUT /v1/items/{id}: create (201) or replace (200).
func (s *Server) putItem(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	in, err := s.readItem(c)
	if err != nil {
		return err
	}
	if in.ID == "" {
		in.ID = id
	} else if in.ID != id {
		return invalidf("id: %s in the body differs from %s in the path",
			strconv.Quote(shorten(in.ID, 100)), strconv.Quote(shorten(id, 100)))
	}
	ctx := c.Request().Context()
	status := http.StatusOK
	switch _, err := s.deps.Catalog.Item(ctx, id); {
	case errors.Is(err, engine.ErrNotFound):
		status = http.StatusCreated
	case err != nil:
		return err
	}
	it, err := s.deps.Catalog.PutItem(ctx, in.item())
	if err != nil {
		return err
	}
	return c.JSON(status, it)
}

// deleteItem is DELETE /v1/items/{id}: 204 or 404.
func (s *Server) deleteItem(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.deps.Catalog.DeleteItem(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// readItem decodes an item body (at most Config.MaxItemBytes, unknown
// members refused, one object only).
func (s *Server) readItem(c echo.Context) (*itemInput, error) {
	r := c.Request()
	if r.ContentLength > s.cfg.MaxItemBytes {
		return nil, newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"request body is larger than the limit of %s", formatBytes(s.cfg.MaxItemBytes))
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxItemBytes))
	if err != nil {
		return nil, jsonError(err)
	}
	if ferr := signals.CheckJSONUnicode(body); ferr != nil { // encoding/json would replace it silently
		return nil, invalidf("%v", ferr)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var in itemInput
	if err := dec.Decode(&in); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, jsonError(err)
		}
		return nil, invalidf("malformed JSON: data after the item object")
	}
	return &in, nil
}

// jsonError turns an encoding/json error into a 400 naming the field (or
// a 413 when the body was too large).
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return errorOf(mbe)
	case errors.Is(err, io.EOF):
		return invalidf("empty body: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("malformed JSON: unexpected end of the body")
	case errors.As(err, &se):
		return invalidf("malformed JSON at byte %d: %v", se.Offset-1, se) // offset of the offending byte
	case errors.As(err, &te):
		if te.Field == "" {
			return invalidf("want a JSON object, got %s", te.Value)
		}
		return invalidf("%s: must be %s, got %s", te.Field, jsonType(te.Type), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for DisallowUnknownFields.
		return invalidf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return invalidf("malformed JSON: %v", err)
}

func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	kind := t.Kind().String()
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a " + kind
}

// pathID returns the {id} path parameter, percent-decoded.
func pathID(c echo.Context) (string, error) {
	id := c.Param("id")
	if c.Request().URL.RawPath != "" { // the router matched the escaped path
		u, err := url.PathUnescape(id)
		if err != nil {
			return "", invalidf("id: %v", err)
		}
		id = u
	}
	if id == "" {
		return "", invalidf("id: missing")
	}
	return id, nil
}

// checkIDValue checks an id-like value with the one id rule,
// signals.CheckID: at most max bytes of UTF-8 without control or
// bidirectional control characters.
func checkIDValue(field, v string, max int) error {
	if err := signals.CheckID(field, v, max); err != nil {
		return invalidf("%v", err)
	}
	return nil
}

// checkVisitorValue is checkIDValue for a visitor id, which may not start
// with a reserved prefix (signals.CheckVisitorID).
func checkVisitorValue(field, v string, max int) error {
	if err := signals.CheckVisitorID(field, v, max); err != nil {
		return invalidf("%v", err)
	}
	return nil
}

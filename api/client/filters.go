package client

import (
	"context"
	"net/http"
	"time"
)

// Filter is a named filter (PUT /v1/filters/{name}): a filter and/or
// boost expression, and with Share > 0 a promotion that claims
// round(Share·n) of a list's n slots.
type Filter struct {
	Name    string    `json:"name"`
	Filter  string    `json:"filter,omitempty"`
	Boost   string    `json:"boost,omitempty"`
	Share   float64   `json:"share,omitempty"`
	Created time.Time `json:"created,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
}

// PutFilter creates or replaces the named filter f.Name (secret key); an
// invalid expression is an IsInvalid error naming its position.
func (c *Client) PutFilter(ctx context.Context, f Filter) (out Filter, created bool, err error) {
	body := struct {
		Filter string  `json:"filter,omitempty"`
		Boost  string  `json:"boost,omitempty"`
		Share  float64 `json:"share,omitempty"`
	}{f.Filter, f.Boost, f.Share}
	status, err := c.do(ctx, request{method: http.MethodPut, path: p("v1", "filters", f.Name), body: body, retry: true, want: []int{200, 201}}, &out)
	return out, status == http.StatusCreated, err
}

// GetFilter returns a named filter (IsNotFound when there is none).
func (c *Client) GetFilter(ctx context.Context, name string) (Filter, error) {
	var out Filter
	_, err := c.do(ctx, request{method: http.MethodGet, path: p("v1", "filters", name), retry: true}, &out)
	return out, err
}

// DeleteFilter removes a named filter (IsNotFound when there is none).
func (c *Client) DeleteFilter(ctx context.Context, name string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: p("v1", "filters", name), retry: true, want: []int{204}}, nil)
	return err
}

// Filters lists the named filters in name order.
func (c *Client) Filters(ctx context.Context) ([]Filter, error) {
	var out struct {
		Filters []Filter `json:"filters"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/filters", retry: true}, &out)
	return out.Filters, err
}

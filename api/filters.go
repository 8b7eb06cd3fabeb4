package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine/filter"
	"github.com/kairoshq/kairos/internal/errs"
)

// FilterStore keeps the named filters (engine/filter.Store).
type FilterStore interface {
	// Put validates, compiles and stores n (an invalid expression is an
	// errs.Invalid naming its position) and reports whether it created it.
	Put(ctx context.Context, n filter.Named) (filter.Named, bool, error)
	// Get returns a stored filter, or errs.NotFound.
	Get(ctx context.Context, name string) (filter.Named, error)
	// Delete removes a stored filter, or returns errs.NotFound.
	Delete(ctx context.Context, name string) error
	// List returns every stored filter in name order.
	List(ctx context.Context) ([]filter.Named, error)
	// Lookup returns the compiled filter for a request (cached), or
	// errs.NotFound.
	Lookup(ctx context.Context, name string) (*filter.Compiled, error)
}

// FilterList is the answer to GET /v1/filters.
type FilterList struct {
	Filters []filter.Named `json:"filters"`
}

var errFiltersOff = errs.New(errs.NotFound, "named filters are not configured on this server")

// filterQuery is the filter, boost and named filter of a serving request.
type filterQuery struct {
	filter, boost *filter.Expr
	promote       *filter.Compiled // a named filter with a share
}

// parseFilterQuery reads filter (a boolean expression), boost (a numeric
// one) and filter_name (a stored filter: without a share it is combined
// with filter and boost — both must hold, the boosts multiply; with a
// share it is the promotion of the list, when promote is set — on the
// surfaces without promotions, similar items and offers, it applies to
// the whole list). A compile error is a 400 naming the parameter and the
// position.
func (s *Server) parseFilterQuery(ctx context.Context, q url.Values, promote bool) (filterQuery, error) {
	var f filterQuery
	var err error
	if v := q.Get("filter"); v != "" {
		if f.filter, err = s.exprs.Compile("filter", v, filter.Bool); err != nil {
			return f, err
		}
	}
	if v := q.Get("boost"); v != "" {
		if f.boost, err = s.exprs.Compile("boost", v, filter.Number); err != nil {
			return f, err
		}
	}
	name := q.Get("filter_name")
	if name == "" {
		return f, nil
	}
	if err := filter.CheckName(name); err != nil {
		return f, invalidf("filter_name: %s", errMessage(err))
	}
	if s.deps.Filters == nil {
		return f, errFiltersOff
	}
	c, err := s.deps.Filters.Lookup(ctx, name)
	if err != nil {
		return f, err
	}
	if c.Share > 0 && promote {
		f.promote = c
		return f, nil
	}
	if c.FilterExpr != nil {
		f.filter = andExpr(f.filter, c.FilterExpr)
	}
	if c.BoostExpr != nil {
		f.boost = timesExpr(f.boost, c.BoostExpr)
	}
	return f, nil
}

func andExpr(a, b *filter.Expr) *filter.Expr {
	if a == nil {
		return b
	}
	return filter.And(a, b)
}

func timesExpr(a, b *filter.Expr) *filter.Expr {
	if a == nil {
		return b
	}
	return filter.Times(a, b)
}

// errMessage is err's public message (its text without one).
func errMessage(err error) string {
	if m, ok := errs.Message(err); ok {
		return m
	}
	return err.Error()
}

// listFilters is GET /v1/filters.
func (s *Server) listFilters(c echo.Context) error {
	if s.deps.Filters == nil {
		return errFiltersOff
	}
	l, err := s.deps.Filters.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, FilterList{Filters: l})
}

// filterName reads the {name} of a filter route.
func filterName(c echo.Context) (string, error) {
	name, err := pathID(c)
	if err != nil {
		return "", err
	}
	if err := filter.CheckName(name); err != nil {
		return "", err
	}
	return name, nil
}

// getFilter is GET /v1/filters/{name}.
func (s *Server) getFilter(c echo.Context) error {
	if s.deps.Filters == nil {
		return errFiltersOff
	}
	name, err := filterName(c)
	if err != nil {
		return err
	}
	n, err := s.deps.Filters.Get(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, n)
}

// putFilter is PUT /v1/filters/{name} with {"filter": …, "boost": …,
// "share": …}: 201 when created, 200 when replaced.
func (s *Server) putFilter(c echo.Context) error {
	if s.deps.Filters == nil {
		return errFiltersOff
	}
	name, err := filterName(c)
	if err != nil {
		return err
	}
	body, err := s.readDef(c)
	if err != nil {
		return err
	}
	var in struct {
		Name   string   `json:"name"`
		Filter string   `json:"filter"`
		Boost  string   `json:"boost"`
		Share  *float64 `json:"share"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return invalidf("body: %v", err)
	}
	if in.Name != "" && in.Name != name {
		return invalidf("name: %q differs from the path's %q", in.Name, name)
	}
	n := filter.Named{Name: name, Filter: in.Filter, Boost: in.Boost}
	if in.Share != nil {
		n.Share = *in.Share
	}
	stored, created, err := s.deps.Filters.Put(c.Request().Context(), n)
	if err != nil {
		return err
	}
	return c.JSON(putStatus(created), stored)
}

// deleteFilter is DELETE /v1/filters/{name}: 204 or 404.
func (s *Server) deleteFilter(c echo.Context) error {
	if s.deps.Filters == nil {
		return errFiltersOff
	}
	name, err := filterName(c)
	if err != nil {
		return err
	}
	if err := s.deps.Filters.Delete(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

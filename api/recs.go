package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine"
)

// recommendations is GET /v1/recommendations (rotation= and page= go
// through the rotation and paging layer, rotation.go).
func (s *Server) recommendations(c echo.Context) error {
	req, err := s.parseRecQuery(c.QueryParams())
	if err != nil {
		return err
	}
	fq, err := s.parseFilterQuery(c.Request().Context(), c.QueryParams(), true)
	if err != nil {
		return err
	}
	req.Filter, req.Boost, req.Promote = fq.filter, fq.boost, fq.promote
	pg, err := s.parsePageQuery(c.QueryParams())
	if err != nil {
		return err
	}
	// A HEAD has no body: nothing is shown.
	pg.peek = c.Request().Method == http.MethodHead
	resp, err := s.recommend(c, req, pg) // with the visitor's variant when an experiment targets recommendations
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, resp)
}

// parseRecQuery reads visitor (required), n (default
// Config.DefaultResults, 1..Config.MaxResults), exclude_seen (default
// true), category, explain and exact (default false), and the context
// item, referrer, utm_campaign and device. Unknown parameters are
// ignored; a repeated parameter counts with its first value.
func (s *Server) parseRecQuery(q url.Values) (engine.RecRequest, error) {
	r := engine.RecRequest{ExcludeSeen: true}
	var err error
	if r.Visitor, err = s.idParam(q, "visitor", true); err != nil {
		return r, err
	}
	if r.User, err = s.idParam(q, "user", false); err != nil {
		return r, err
	}
	if r.N, err = intParam(q, "n", s.cfg.DefaultResults, 1, s.cfg.MaxResults); err != nil {
		return r, err
	}
	if r.ExcludeSeen, err = boolParam(q, "exclude_seen", true); err != nil {
		return r, err
	}
	if r.Explain, err = boolParam(q, "explain", false); err != nil {
		return r, err
	}
	if r.Category, err = s.idParam(q, "category", false); err != nil {
		return r, err
	}
	if r.Exact, err = boolParam(q, "exact", false); err != nil {
		return r, err
	}
	// Context of the request (cold start): the current page's item, the
	// referrer, the UTM campaign and the device class.
	if r.Item, err = s.idParam(q, "item", false); err != nil {
		return r, err
	}
	if r.Campaign, err = s.idParam(q, "utm_campaign", false); err != nil {
		return r, err
	}
	if r.Device, err = s.idParam(q, "device", false); err != nil {
		return r, err
	}
	if r.Referrer = q.Get("referrer"); len(r.Referrer) > maxReferrerBytes || !utf8.ValidString(r.Referrer) {
		return r, fmt.Errorf("%w: referrer: must be valid UTF-8, at most %d bytes", engine.ErrInvalid, maxReferrerBytes)
	}
	return r, nil
}

// maxReferrerBytes bounds the referrer parameter (as the event's referrer).
const maxReferrerBytes = 2048

// SimilarResponse is the answer to GET /v1/items/{id}/similar.
type SimilarResponse struct {
	Item  string       `json:"item"`
	Items []engine.Rec `json:"items"`
	// Holdout is true when the visitor= of the request is in the
	// personalization holdout: Items are then the trending items of the
	// item's category, not its neighbours.
	Holdout bool `json:"holdout,omitempty"`
}

// similar is GET /v1/items/{id}/similar[?visitor=…&user=…&n=…].
func (s *Server) similar(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	n, err := intParam(c.QueryParams(), "n", s.cfg.DefaultResults, 1, s.cfg.MaxResults)
	if err != nil {
		return err
	}
	// visitor and user are optional: they place the request in the
	// personalization holdout or not.
	visitor, err := s.idParam(c.QueryParams(), "visitor", false)
	if err != nil {
		return err
	}
	user, err := s.idParam(c.QueryParams(), "user", false)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	fq, err := s.parseFilterQuery(ctx, c.QueryParams(), false)
	if err != nil {
		return err
	}
	out, err := s.heldOut(ctx, visitor, user)
	if err != nil {
		return err
	}
	var recs []engine.Rec
	if out {
		recs, err = s.similarBaseline(ctx, id, visitor, user, n, fq)
	} else {
		recs, err = s.deps.Recommender.SimilarTo(ctx, engine.SimilarRequest{Item: id, N: n, Filter: fq.filter, Boost: fq.boost})
	}
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []engine.Rec{}
	}
	return c.JSON(http.StatusOK, SimilarResponse{Item: id, Items: recs, Holdout: out})
}

// idParam reads an id-like query parameter with the one id rule
// (signals.CheckID: at most the event limit for ids, 200 bytes by default,
// valid UTF-8 without control or bidirectional control characters); a
// visitor id may not start with a reserved prefix either
// (signals.CheckVisitorID).
func (s *Server) idParam(q url.Values, name string, required bool) (string, error) {
	v := q.Get(name)
	if v == "" {
		if required {
			return "", invalidf("%s: missing", name)
		}
		return "", nil
	}
	if name == "visitor" {
		return v, checkVisitorValue(name, v, s.maxIDBytes())
	}
	return v, checkIDValue(name, v, s.maxIDBytes())
}

func (s *Server) maxIDBytes() int { return s.evLim.Defaults().MaxIDBytes }

// intParam reads an integer parameter in [min, max], def when absent.
func intParam(q url.Values, name string, def, min, max int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, invalidf("%s: %s is not an integer", name, strconv.Quote(shorten(v, 40)))
	}
	if n < min || n > max {
		return 0, invalidf("%s: %d is not in [%d, %d]", name, n, min, max)
	}
	return n, nil
}

// boolParam reads a boolean parameter (true, false, 1, 0, t, f, ...), def
// when absent.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalidf("%s: %s is not a boolean (true or false)", name, strconv.Quote(shorten(v, 40)))
	}
	return b, nil
}

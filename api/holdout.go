package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/holdout"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/internal/errs"
)

// Holdout is the holdout of personalization itself (engine/holdout): a
// share of visitors gets the non-personalized baseline on every surface.
type Holdout interface {
	// Assign returns the arm of a request's visitor (or user).
	Assign(ctx context.Context, visitor, user string) (holdout.Arm, error)
	// Results analyses the lift of personalization over the holdout.
	Results(ctx context.Context) (holdout.Results, error)
}

// HeldOutRecs is the answer to GET /v1/recommendations for a visitor in
// the holdout: the baseline (strategy trending, else catalog) and
// "holdout": true.
type HeldOutRecs struct {
	engine.RecResponse
	Holdout bool `json:"holdout"`
}

// HeldOutOffers is the answer to GET /v1/offers?visitor= for a visitor in
// the holdout: the offers ranked without the visitor's factors, and
// "holdout": true.
type HeldOutOffers struct {
	promo.OfferList
	Holdout bool `json:"holdout"`
}

var errHoldoutOff = errs.New(errs.NotFound, "the personalization holdout is not configured on this server (kairos serve --holdout-share)")

// heldOut reports whether the request's visitor is in the holdout (false
// without a holdout).
func (s *Server) heldOut(ctx context.Context, visitor, user string) (bool, error) {
	if s.deps.Holdout == nil || visitor == "" && user == "" {
		return false, nil
	}
	arm, err := s.deps.Holdout.Assign(ctx, visitor, user)
	if err != nil {
		return false, err
	}
	return arm == holdout.ArmHoldout, nil
}

// recommendBaseline answers a held-out visitor's recommendations: the
// trending ranking whatever the history, with no experiment.
func (s *Server) recommendBaseline(ctx context.Context, req engine.RecRequest, pg pageQuery) (any, error) {
	req.Strategy, req.BlendBelow, req.Explain = engine.StrategyTrending, 0, false
	resp, err := s.rankRecs(ctx, req, pg)
	if err != nil {
		return nil, err
	}
	if resp.Items == nil {
		resp.Items = []engine.Rec{}
	}
	return HeldOutRecs{RecResponse: resp, Holdout: true}, nil
}

// similarBaseline answers a held-out visitor's similar items: the
// trending items of the item's category (of all items when it has none
// or is not in the catalog), the item itself left out.
func (s *Server) similarBaseline(ctx context.Context, id, visitor, user string, n int, fq filterQuery) ([]engine.Rec, error) {
	if visitor == "" {
		visitor = user
	}
	req := engine.RecRequest{Visitor: visitor, User: user, N: min(n+1, s.cfg.MaxResults), Strategy: engine.StrategyTrending,
		Filter: fq.filter, Boost: fq.boost}
	if it, err := s.deps.Catalog.Item(ctx, id); err == nil {
		req.Category = it.Category
	}
	resp, err := s.deps.Recommender.Recommend(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]engine.Rec, 0, n)
	for _, r := range resp.Items {
		if r.Item != id && len(out) < n {
			out = append(out, r)
		}
	}
	return out, nil
}

// holdoutResults is GET /v1/holdout/results: the lift of the whole
// personalization layer, conversion and revenue per visitor, personalized
// against the holdout.
func (s *Server) holdoutResults(c echo.Context) error {
	if s.deps.Holdout == nil {
		return errHoldoutOff
	}
	r, err := s.deps.Holdout.Results(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, r)
}

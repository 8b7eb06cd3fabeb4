package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/promo"
)

// Experiments runs A/B experiments (engine/experiments.Engine): the CRUD of
// /v1/experiments, the results, and the variants of /v1/offers and
// /v1/recommendations.
type Experiments interface {
	// PutJSON validates and stores an experiment from its JSON body
	// (pathID: the id of the path, "" for POST: create, atomically
	// ErrConflict when the id exists) and returns it and whether it was
	// created; engine.ErrInvalid names the JSON path,
	// experiments.ErrConflict is answered 409.
	PutJSON(ctx context.Context, pathID string, body []byte) (experiments.Experiment, bool, error)
	// Get returns one experiment or engine.ErrNotFound.
	Get(id string) (experiments.Experiment, error)
	// List returns every experiment in id order.
	List() []experiments.Experiment
	// Delete removes an experiment and its data, or engine.ErrNotFound.
	Delete(ctx context.Context, id string) error
	// Results analyses an experiment.
	Results(ctx context.Context, id string, opts experiments.ResultsOptions) (experiments.Results, error)
	// Decide returns the variant a request is served (false: no running
	// experiment targets it).
	Decide(ctx context.Context, r experiments.Request) (experiments.Decision, bool, error)
	// Expose logs a served decision (the first exposure of its subject).
	Expose(ctx context.Context, d experiments.Decision) error
	// Abandon undoes a decision that could not be served.
	Abandon(ctx context.Context, d experiments.Decision) error
}

// ExperimentView is an experiment as the API shows it: its definition and
// its status now.
type ExperimentView struct {
	experiments.Experiment
	Status experiments.Status `json:"status"`
}

// ExperimentList is the answer to GET /v1/experiments.
type ExperimentList struct {
	Experiments []ExperimentView `json:"experiments"`
}

// ExperimentOffers is the answer to GET /v1/offers?visitor=…&slot=… when
// an experiment targets the slot: the offers of the visitor's variant and
// the variant ({"id", "variant", "propensity"}).
type ExperimentOffers struct {
	promo.OfferList
	Experiment *experiments.Decision `json:"experiment,omitempty"`
}

// ExperimentRecs is the answer to GET /v1/recommendations when an
// experiment targets recommendations.
type ExperimentRecs struct {
	engine.RecResponse
	Experiment *experiments.Decision `json:"experiment,omitempty"`
}

var errExperimentsOff = errs.New(errs.NotFound, "experiments are not configured on this server")

func (s *Server) view(x experiments.Experiment) ExperimentView {
	return ExperimentView{Experiment: x, Status: x.StatusAt(s.cfg.Now())}
}

// listExperiments is GET /v1/experiments.
func (s *Server) listExperiments(c echo.Context) error {
	if s.deps.Experiments == nil {
		return errExperimentsOff
	}
	out := ExperimentList{Experiments: []ExperimentView{}}
	for _, x := range s.deps.Experiments.List() {
		out.Experiments = append(out.Experiments, s.view(x))
	}
	return c.JSON(http.StatusOK, out)
}

// createExperiment is POST /v1/experiments: 201 with Location, 409 when
// the id exists or the target is taken.
func (s *Server) createExperiment(c echo.Context) error {
	if s.deps.Experiments == nil {
		return errExperimentsOff
	}
	body, err := s.readDef(c)
	if err != nil {
		return err
	}
	x, _, err := s.deps.Experiments.PutJSON(c.Request().Context(), "", body)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/experiments/"+url.PathEscape(x.ID))
	return c.JSON(http.StatusCreated, s.view(x))
}

// getExperiment is GET /v1/experiments/{id}.
func (s *Server) getExperiment(c echo.Context) error {
	if s.deps.Experiments == nil {
		return errExperimentsOff
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	x, err := s.deps.Experiments.Get(id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(x))
}

// putExperiment is PUT /v1/experiments/{id}: 201 created, 200 replaced,
// 409 when a started experiment's fixed parts change or the target is
// taken.
func (s *Server) putExperiment(c echo.Context) error {
	if s.deps.Experiments == nil {
		return errExperimentsOff
	}
	id, body, err := s.readIDAndDef(c)
	if err != nil {
		return err
	}
	x, created, err := s.deps.Experiments.PutJSON(c.Request().Context(), id, body)
	if err != nil {
		return err
	}
	return c.JSON(putStatus(created), s.view(x))
}

// deleteExperiment is DELETE /v1/experiments/{id}: 204 or 404.
func (s *Server) deleteExperiment(c echo.Context) error {
	if s.deps.Experiments == nil {
		return errExperimentsOff
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.deps.Experiments.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// experimentResults is GET /v1/experiments/{id}/results[?history=false].
func (s *Server) experimentResults(c echo.Context) error {
	if s.deps.Experiments == nil {
		return errExperimentsOff
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	history, err := boolParam(c.QueryParams(), "history", true)
	if err != nil {
		return err
	}
	r, err := s.deps.Experiments.Results(c.Request().Context(), id, experiments.ResultsOptions{NoHistory: !history})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, r)
}

// rankOffers ranks a visitor's offers; a visitor in the personalization
// holdout gets them ranked without its factors (and no experiment); when a
// running experiment targets
// the slot, the visitor's variant decides: its offer is ranked first (when
// eligible), its campaign's offers only are ranked, a holdout gets none,
// a variant without content gets the normal ranking. The exposure is
// logged once the offers are ranked.
func (s *Server) rankOffers(c echo.Context, r promo.OfferRequest) (any, error) {
	ctx := c.Request().Context()
	if out, err := s.heldOut(ctx, r.Visitor, r.User); err != nil || out {
		if err != nil {
			return nil, err
		}
		r.Baseline = true
		list, err := s.deps.Offers.RankOffers(ctx, r)
		if err != nil {
			return nil, err
		}
		return HeldOutOffers{OfferList: list, Holdout: true}, nil
	}
	if s.deps.Experiments == nil || r.Slot == "" {
		return s.deps.Offers.RankOffers(ctx, r)
	}
	d, ok, err := s.deps.Experiments.Decide(ctx, experiments.Request{Surface: experiments.SurfaceOffers, Slot: r.Slot, Visitor: r.Visitor, User: r.User})
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.deps.Offers.RankOffers(ctx, r)
	}
	var list promo.OfferList
	switch {
	case d.Holdout:
		list = promo.OfferList{Visitor: r.Visitor, Slot: r.Slot, Offers: []promo.RankedOffer{}}
	case d.Campaign != "":
		r.Campaign = d.Campaign
		list, err = s.deps.Offers.RankOffers(ctx, r)
	case d.Offer != "":
		n := r.N
		r.N = s.cfg.MaxResults
		list, err = s.deps.Offers.RankOffers(ctx, r)
		if i := slices.IndexFunc(list.Offers, func(o promo.RankedOffer) bool { return o.ID == d.Offer }); i > 0 {
			o := list.Offers[i]
			copy(list.Offers[1:i+1], list.Offers[:i])
			list.Offers[0] = o
		}
		list.Offers = list.Offers[:min(n, len(list.Offers))]
	default:
		list, err = s.deps.Offers.RankOffers(ctx, r)
	}
	if err != nil {
		_ = s.deps.Experiments.Abandon(ctx, d)
		return nil, err
	}
	if err := s.expose(c, d); err != nil {
		return nil, err
	}
	return ExperimentOffers{OfferList: list, Experiment: &d}, nil
}

// recommend answers a recommendation request; a visitor in the
// personalization holdout gets the baseline (recommendBaseline); when a
// running experiment
// targets recommendations, the visitor's variant's parameters apply and
// the exposure is logged.
func (s *Server) recommend(c echo.Context, req engine.RecRequest, pg pageQuery) (any, error) {
	ctx := c.Request().Context()
	if out, err := s.heldOut(ctx, req.Visitor, req.User); err != nil || out {
		if err != nil {
			return nil, err
		}
		return s.recommendBaseline(ctx, req, pg)
	}
	var d experiments.Decision
	ok := false
	if s.deps.Experiments != nil {
		var err error
		if d, ok, err = s.deps.Experiments.Decide(ctx, experiments.Request{Surface: experiments.SurfaceRecommendations, Visitor: req.Visitor, User: req.User}); err != nil {
			return nil, err
		}
	}
	if ok && d.Params != nil {
		if d.Params.Strategy == string(engine.StrategyTrending) {
			req.Strategy = engine.StrategyTrending
		}
		if d.Params.BlendBelow > 0 {
			req.BlendBelow = d.Params.BlendBelow
		}
		if d.Params.ExcludeSeen != nil {
			req.ExcludeSeen = *d.Params.ExcludeSeen
		}
	}
	resp, err := s.rankRecs(ctx, req, pg)
	if err != nil {
		if ok {
			_ = s.deps.Experiments.Abandon(ctx, d)
		}
		return nil, err
	}
	if resp.Items == nil {
		resp.Items = []engine.Rec{}
	}
	if !ok {
		return resp, nil
	}
	if err := s.expose(c, d); err != nil {
		return nil, err
	}
	return ExperimentRecs{RecResponse: resp, Experiment: &d}, nil
}

// expose logs the exposure of a served decision; a HEAD request serves
// nothing (no body), so its decision is abandoned instead: it is no unit
// of the experiment until a GET shows it the variant.
func (s *Server) expose(c echo.Context, d experiments.Decision) error {
	ctx := c.Request().Context()
	if c.Request().Method == http.MethodHead {
		return s.deps.Experiments.Abandon(ctx, d)
	}
	return s.deps.Experiments.Expose(ctx, d)
}

package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"
	dto "github.com/prometheus/client_model/go"

	"github.com/kairoshq/kairos/api/dashboard"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
)

// TrendingReader lists the top items for the dashboard
// (engine.Engine.Trending).
type TrendingReader interface {
	// Trending returns up to n items by recency-weighted popularity, best
	// first, with their title and category (none when nothing is
	// trending).
	Trending(n int) []engine.Rec
}

// DashboardSummary is the answer to GET /v1/dashboard/summary: what the
// dashboard polls every two seconds.
type DashboardSummary struct {
	// Time is the server's clock when the counters were read: the
	// dashboard divides the counters' growth between two summaries by the
	// growth of Time to get rates.
	Time time.Time `json:"time"`
	// Events are the event counters of this process since it started.
	Events DashboardEvents `json:"events"`
	// TopItems are the n items trending most (Deps.Trending; empty
	// without it).
	TopItems []engine.Rec `json:"top_items"`
	// Offers are the n offers with the most impressions (then by id),
	// with their counters and click-through rate; Count is the number of
	// offers defined.
	Offers      []DashboardOffer `json:"offers"`
	OffersCount int              `json:"offers_count"`
	// Model describes the live model and the last n retrains (null
	// without Deps.Model).
	Model *DashboardModel `json:"model"`
	// Holdout tells whether the personalization holdout is on
	// (Deps.Holdout: GET /v1/holdout/results answers).
	Holdout bool `json:"holdout"`
}

// ModelReader describes the live model and its retrains for the
// dashboard (kairos serve: the engine and the retrain log).
type ModelReader interface {
	// DashboardModel returns the live model and up to n retrains, newest
	// first.
	DashboardModel(ctx context.Context, n int) (DashboardModel, error)
}

// DashboardModel is the live model with its retrains.
type DashboardModel struct {
	// Generation counts the snapshots the engines loaded (0: learnt from
	// events alone); Version is the loaded snapshot's (0: none).
	Generation uint32 `json:"generation"`
	Version    uint64 `json:"version"`
	// Params and Blend are the live hyperparameters and ranking blend.
	Params any `json:"params"`
	Blend  any `json:"blend"`
	// RetrainEvery is the schedule of the server's retrains ("" when
	// none).
	RetrainEvery string `json:"retrain_every"`
	// Refusals counts the kept retrains that were not published.
	Refusals int `json:"refusals"`
	// Retrains are the latest retrains, newest first.
	Retrains []DashboardRetrain `json:"retrains"`
	// Error says why the retrains could not be read (the model's other
	// fields are still set).
	Error string `json:"error,omitempty"`
}

// DashboardRetrain is one retrain: its pick, its figures on the held-out
// tail against the live model and popularity, and the decision.
type DashboardRetrain struct {
	Time time.Time `json:"time"`
	// Decision is the retrain's decision, Label its short form
	// (published, refused_worse, refused_popularity, refused_few_users,
	// dry_run, failed), Reason the figures behind it, Error a failure.
	Decision string `json:"decision"`
	Label    string `json:"label"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
	// Params and Blend are the pick (null for a failed retrain); Trials
	// and SearchS describe the search (0 when not tuned), Tuned says a
	// search ran (its budget may all have gone to fitting the defaults,
	// with no trial) and KeptBase that its pick is the configured
	// parameters as an untuned retrain fits them.
	Params   any     `json:"params"`
	Blend    any     `json:"blend"`
	Trials   int     `json:"trials"`
	SearchS  float64 `json:"search_s"`
	Tuned    bool    `json:"tuned,omitempty"`
	KeptBase bool    `json:"kept_base,omitempty"`
	// BlendConfirm is the check of the fitted blend on the visitors'
	// next events before the tail ({"t", "kept", …}; absent when not
	// checked).
	BlendConfirm any `json:"blend_confirm,omitempty"`
	// Reference is how the live model was measured: "snapshot" (as of
	// its cut-off) or "recipe" (its parameters trained before the tail).
	Reference string `json:"reference,omitempty"`
	// Figures are the tail figures of retrained, live and popularity.
	Figures []DashboardFigures `json:"figures"`
	// TLive and TPopularity are the paired t statistics of the retrained
	// model's NDCG@10 against them.
	TLive       *float64 `json:"t_live"`
	TPopularity *float64 `json:"t_popularity"`
	Users       int      `json:"users"`
	Events      int      `json:"events"`
	WallS       float64  `json:"wall_s"`
}

// DashboardFigures are one model's figures on a retrain's tail.
type DashboardFigures struct {
	Model    string  `json:"model"`
	Users    int     `json:"users"`
	HR10     float64 `json:"hr10"`
	NDCG10   float64 `json:"ndcg10"`
	Recall50 float64 `json:"recall50"`
}

// DashboardEvents are counters of this process: Received, Accepted and
// Rejected count at the collector (POST /v1/events, the pixel and POST
// /v1/identify, whose event takes the same path: the
// kairos_events_*_total metrics), Applied counts the events this
// process's engine committed and learnt (kairos_engine_events_applied_total,
// which includes events published straight to the broker; null when no
// engine registered it on Config.Registry).
type DashboardEvents struct {
	Received int64  `json:"received"`
	Accepted int64  `json:"accepted"`
	Rejected int64  `json:"rejected"`
	Applied  *int64 `json:"applied"`
}

// DashboardOffer is an offer's line on the dashboard.
type DashboardOffer struct {
	ID          string `json:"id"`
	Title       string `json:"title,omitempty"`
	Slot        string `json:"slot"`
	Active      bool   `json:"active"`
	Impressions int64  `json:"impressions"`
	Clicks      int64  `json:"clicks"`
	Conversions int64  `json:"conversions"`
	// CTR is Clicks / Impressions, null before the first impression.
	CTR *float64 `json:"ctr"`
}

// dashboardFiles serves GET /dashboard and /dashboard/* (public): the
// dashboard's static page and assets (package api/dashboard).
func (s *Server) dashboardFiles(c echo.Context) error {
	if !dashboard.Exists(c.Request().URL.Path) {
		return errs.New(errs.NotFound, "no dashboard file here (the dashboard is at %s)", dashboard.Prefix)
	}
	dashboard.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// dashboardSummary is GET /v1/dashboard/summary?n= (secret).
func (s *Server) dashboardSummary(c echo.Context) error {
	n, err := intParam(c.QueryParams(), "n", s.cfg.DefaultResults, 1, s.cfg.MaxResults)
	if err != nil {
		return err
	}
	out := DashboardSummary{Time: s.cfg.Now().UTC(), TopItems: []engine.Rec{}, Offers: []DashboardOffer{}, Holdout: s.deps.Holdout != nil}
	if out.Events, err = s.eventCounters(); err != nil {
		return err
	}
	if s.deps.Trending != nil {
		if top := s.deps.Trending.Trending(n); top != nil {
			out.TopItems = top
		}
	}
	if s.deps.Definitions != nil {
		defs, err := s.deps.Definitions.List(promo.KindOffer)
		if err != nil {
			return err
		}
		for _, d := range defs {
			if o, ok := dashboardOffer(d); ok {
				out.Offers = append(out.Offers, o)
			}
		}
		out.OffersCount = len(out.Offers)
		slices.SortFunc(out.Offers, func(a, b DashboardOffer) int {
			return cmp.Or(cmp.Compare(b.Impressions, a.Impressions), cmp.Compare(a.ID, b.ID))
		})
		out.Offers = out.Offers[:min(n, len(out.Offers))]
	}
	if s.deps.Model != nil {
		m, err := s.deps.Model.DashboardModel(c.Request().Context(), n)
		if err != nil {
			return err
		}
		out.Model = &m
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// dashboardOffer maps a listed offer (promo.OfferDetail) to its line.
func dashboardOffer(d any) (DashboardOffer, bool) {
	var od promo.OfferDetail
	switch v := d.(type) {
	case promo.OfferDetail:
		od = v
	case *promo.OfferDetail:
		od = *v
	default:
		return DashboardOffer{}, false
	}
	o := DashboardOffer{ID: od.ID, Title: od.Title, Slot: od.Slot, Active: od.Active,
		Impressions: od.Stats.Impressions, Clicks: od.Stats.Clicks, Conversions: od.Stats.Conversions}
	if o.Impressions > 0 {
		ctr := float64(o.Clicks) / float64(o.Impressions)
		o.CTR = &ctr
	}
	return o, true
}

// eventCounters reads the event counters from Config.Registry (the API's
// own and the engine's, when registered there).
func (s *Server) eventCounters() (DashboardEvents, error) {
	var ev DashboardEvents
	mfs, err := s.cfg.Registry.Gather()
	if err != nil && len(mfs) == 0 { // a failing collector elsewhere leaves the others
		return ev, fmt.Errorf("api: dashboard: gather metrics: %w", err)
	}
	for _, mf := range mfs {
		sum := func() int64 {
			var t float64
			for _, m := range mf.GetMetric() {
				t += counterValue(m)
			}
			return int64(t)
		}
		switch mf.GetName() {
		case "kairos_events_received_total":
			ev.Received = sum()
		case "kairos_events_accepted_total":
			ev.Accepted = sum()
		case "kairos_events_rejected_total":
			ev.Rejected = sum()
		case "kairos_engine_events_applied_total":
			v := sum()
			ev.Applied = &v
		}
	}
	return ev, nil
}

func counterValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetUntyped().GetValue()
}

package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/engine/filter"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
)

// OfferList is the answer to GET /v1/offers without visitor (secret key):
// every offer with its counters, in id order.
type OfferList struct {
	Offers []any `json:"offers"`
}

// CampaignList is the answer to GET /v1/campaigns.
type CampaignList struct {
	Campaigns []any `json:"campaigns"`
}

// RuleList is the answer to GET /v1/rules.
type RuleList struct {
	Rules []any `json:"rules"`
}

var errPromoOff = errs.New(errs.NotFound, "offers, campaigns and rules are not configured on this server")

// offers is GET /v1/offers: with visitor=, the visitor's ranked offers
// (publishable or secret key); without, the list of offers (secret key).
func (s *Server) offers(c echo.Context) error {
	q := c.QueryParams()
	if q.Get("visitor") == "" {
		if st := state(c); st == nil || st.principal.kind != kindSecret {
			return newError(http.StatusForbidden, CodeForbidden,
				"listing offers needs the secret key; pass visitor= to get a visitor's offers")
		}
		return s.listDefs(c, promo.KindOffer)
	}
	if s.deps.Offers == nil {
		return errPromoOff
	}
	r, err := s.parseOfferQuery(q)
	if err != nil {
		return err
	}
	fq, err := s.parseFilterQuery(c.Request().Context(), q, false)
	if err != nil {
		return err
	}
	r.Filter, r.Boost, r.Context = fq.filter, fq.boost, filter.Context{Now: s.cfg.Now().UTC().Truncate(time.Minute)}
	if st := state(c); r.User != "" && st != nil && st.principal.kind == kindPublishable {
		// A browser naming a user proves it like its events do.
		if fe := s.ident.verify(r.User, q.Get("user_hash")); fe != nil {
			return newError(http.StatusBadRequest, CodeInvalid, "%s: %s", fe.Field, fe.Reason)
		}
	}
	list, err := s.rankOffers(c, r) // in the visitor's variant when an experiment targets the slot
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, list)
}

// parseOfferQuery reads visitor (required), user (optional: the signed-in
// user, whose factors rank and whose experiment variant applies), slot
// (optional slot name) and
// n (default Config.DefaultResults, 1..Config.MaxResults). Unknown
// parameters are ignored; a repeated one counts with its first value.
func (s *Server) parseOfferQuery(q url.Values) (promo.OfferRequest, error) {
	var r promo.OfferRequest
	var err error
	if r.Visitor, err = s.idParam(q, "visitor", true); err != nil {
		return r, err
	}
	if r.User, err = s.idParam(q, "user", false); err != nil {
		return r, err
	}
	if r.Slot, err = s.idParam(q, "slot", false); err != nil {
		return r, err
	}
	if r.N, err = intParam(q, "n", s.cfg.DefaultResults, 1, s.cfg.MaxResults); err != nil {
		return r, err
	}
	return r, nil
}

func (s *Server) listCampaigns(c echo.Context) error { return s.listDefs(c, promo.KindCampaign) }
func (s *Server) listRules(c echo.Context) error     { return s.listDefs(c, promo.KindRule) }

func (s *Server) createOffer(c echo.Context) error    { return s.createDef(c, promo.KindOffer) }
func (s *Server) createCampaign(c echo.Context) error { return s.createDef(c, promo.KindCampaign) }
func (s *Server) createRule(c echo.Context) error     { return s.createDef(c, promo.KindRule) }

func (s *Server) getOffer(c echo.Context) error    { return s.getDef(c, promo.KindOffer) }
func (s *Server) getCampaign(c echo.Context) error { return s.getDef(c, promo.KindCampaign) }
func (s *Server) getRule(c echo.Context) error     { return s.getDef(c, promo.KindRule) }

func (s *Server) putOffer(c echo.Context) error    { return s.putDef(c, promo.KindOffer) }
func (s *Server) putCampaign(c echo.Context) error { return s.putDef(c, promo.KindCampaign) }
func (s *Server) putRule(c echo.Context) error     { return s.putDef(c, promo.KindRule) }

func (s *Server) deleteOffer(c echo.Context) error    { return s.deleteDef(c, promo.KindOffer) }
func (s *Server) deleteCampaign(c echo.Context) error { return s.deleteDef(c, promo.KindCampaign) }
func (s *Server) deleteRule(c echo.Context) error     { return s.deleteDef(c, promo.KindRule) }

// listDefs answers GET /v1/{kind}: {"<kind>": […]} in id order.
func (s *Server) listDefs(c echo.Context, kind promo.Kind) error {
	if s.deps.Definitions == nil {
		return errPromoOff
	}
	defs, err := s.deps.Definitions.List(kind)
	if err != nil {
		return err
	}
	switch kind {
	case promo.KindOffer:
		return c.JSON(http.StatusOK, OfferList{Offers: defs})
	case promo.KindCampaign:
		return c.JSON(http.StatusOK, CampaignList{Campaigns: defs})
	}
	return c.JSON(http.StatusOK, RuleList{Rules: defs})
}

// createDef answers POST /v1/{kind}: 201 with Location, 409 if the id
// exists.
func (s *Server) createDef(c echo.Context, kind promo.Kind) error {
	if s.deps.Definitions == nil {
		return errPromoOff
	}
	body, err := s.readDef(c)
	if err != nil {
		return err
	}
	id := bodyID(body)
	if id != "" {
		switch _, err := s.deps.Definitions.Get(kind, id); {
		case err == nil:
			return newError(http.StatusConflict, CodeConflict,
				"%s %s already exists: use PUT /v1/%s/{id} to replace it", singular(kind), strconv.Quote(shorten(id, 100)), kind)
		case !errors.Is(err, engine.ErrNotFound):
			return err
		}
	}
	def, _, err := s.deps.Definitions.PutJSON(c.Request().Context(), kind, "", body)
	if err != nil {
		return err
	}
	if id != "" {
		c.Response().Header().Set("Location", "/v1/"+string(kind)+"/"+url.PathEscape(id))
	}
	return c.JSON(http.StatusCreated, def)
}

// getDef answers GET /v1/{kind}/{id}.
func (s *Server) getDef(c echo.Context, kind promo.Kind) error {
	if s.deps.Definitions == nil {
		return errPromoOff
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	def, err := s.deps.Definitions.Get(kind, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, def)
}

// putDef answers PUT /v1/{kind}/{id}: 201 created or 200 replaced.
func (s *Server) putDef(c echo.Context, kind promo.Kind) error {
	if s.deps.Definitions == nil {
		return errPromoOff
	}
	id, body, err := s.readIDAndDef(c)
	if err != nil {
		return err
	}
	def, created, err := s.deps.Definitions.PutJSON(c.Request().Context(), kind, id, body)
	if err != nil {
		return err
	}
	return c.JSON(putStatus(created), def)
}

// deleteDef answers DELETE /v1/{kind}/{id}: 204, 404, or 409 when a
// campaign or rule still names it.
func (s *Server) deleteDef(c echo.Context, kind promo.Kind) error {
	if s.deps.Definitions == nil {
		return errPromoOff
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.deps.Definitions.Delete(c.Request().Context(), kind, id); err != nil {
		return err // 404, or 409 (promo.ErrInUse) when something still names it
	}
	return c.NoContent(http.StatusNoContent)
}

// readDef reads a definition body (at most Config.MaxItemBytes); its
// validation is the engine's, with errors naming the JSON path.
func (s *Server) readDef(c echo.Context) ([]byte, error) {
	r := c.Request()
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxItemBytes))
	if err != nil {
		return nil, jsonError(err)
	}
	if len(b) == 0 {
		return nil, invalidf("empty body: want a JSON object")
	}
	return b, nil
}

// readIDAndDef returns the path's id and the definition in the body of a
// PUT.
func (s *Server) readIDAndDef(c echo.Context) (string, []byte, error) {
	id, err := pathID(c)
	if err != nil {
		return "", nil, err
	}
	body, err := s.readDef(c)
	if err != nil {
		return "", nil, err
	}
	return id, body, nil
}

// putStatus is the status of a PUT that stored a definition: 201 when
// it created it, else 200.
func putStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// bodyID returns the id member of a JSON object ("" when absent or not
// decodable: the engine reports that).
func bodyID(b []byte) string {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	id, _ := v.ID.(string)
	return id
}

func singular(k promo.Kind) string { return string(k[:len(k)-1]) }

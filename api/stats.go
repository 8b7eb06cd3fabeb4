package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine/stats"
	"github.com/kairoshq/kairos/signals"
)

// Default windows of the stats routes when from is absent: the last 24
// hours at 15m and 1h, the last 30 days at 1d.
const (
	statsWindow    = 24 * time.Hour
	statsWindowDay = 30 * 24 * time.Hour
)

// StatsResponse is the answer to GET /v1/stats/items/{id} and
// GET /v1/stats/offers/{id}: every bucket of the resolution that overlaps
// the range, oldest first, empty ones included. From is the start of the
// first bucket and To the end of the last.
type StatsResponse struct {
	Item       string       `json:"item,omitempty"`
	Offer      string       `json:"offer,omitempty"`
	Resolution string       `json:"resolution"`
	From       time.Time    `json:"from"`
	To         time.Time    `json:"to"`
	Points     []StatsPoint `json:"points"`
}

// StatsPoint is one bucket: the number of events per type (types without
// events are absent), the revenue (sum of the conversions' values) and the
// dwell time (sum of the dwells' values, in ms).
type StatsPoint struct {
	T       time.Time              `json:"t"`
	Counts  map[signals.Type]int64 `json:"counts"`
	Revenue float64                `json:"revenue"`
	DwellMs float64                `json:"dwell_ms"`
}

// emptyCounts is the (shared, never modified) counts of an empty bucket.
var emptyCounts = map[signals.Type]int64{}

// itemStats is GET /v1/stats/items/{id}.
func (s *Server) itemStats(c echo.Context) error { return s.subjectStats(c, stats.KindItem) }

// offerStats is GET /v1/stats/offers/{id}.
func (s *Server) offerStats(c echo.Context) error { return s.subjectStats(c, stats.KindOffer) }

// subjectStats answers a stats route for a subject of kind.
func (s *Server) subjectStats(c echo.Context, kind stats.Kind) error {
	if s.deps.Stats == nil {
		return errs.New(errs.NotFound, "stats are not configured")
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := checkIDValue("id", id, s.maxIDBytes()); err != nil {
		return err
	}
	q, err := s.parseStatsQuery(c.QueryParams())
	if err != nil {
		return err
	}
	sub := stats.Subject{Kind: kind, ID: id}
	points, err := s.deps.Stats.Series(c.Request().Context(), sub, q.res, q.from, q.to)
	if err != nil {
		return err
	}
	resp := StatsResponse{Resolution: q.res.String(), Points: make([]StatsPoint, len(points))}
	if kind == stats.KindOffer {
		resp.Offer = id
	} else {
		resp.Item = id
	}
	for i := range points {
		p := &points[i]
		sp := StatsPoint{T: p.Start.UTC(), Counts: p.Counts, Revenue: p.Revenue(), DwellMs: p.DwellMs()}
		if sp.Counts == nil {
			sp.Counts = emptyCounts
		}
		resp.Points[i] = sp
	}
	if len(points) > 0 {
		resp.From = resp.Points[0].T
		resp.To = resp.Points[len(points)-1].T.Add(q.res.Duration())
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, resp)
}

type statsQuery struct {
	res      stats.Resolution
	from, to time.Time
}

// parseStatsQuery reads resolution (15m, 1h or 1d; default 1h), to
// (default now) and from (default to minus 24 h, or 30 days at 1d), both
// RFC 3339 or epoch milliseconds, and checks that from is before to and
// that the range holds at most StatsReader.MaxPoints buckets.
func (s *Server) parseStatsQuery(q url.Values) (statsQuery, error) {
	r := statsQuery{res: stats.Res1h}
	if v := q.Get("resolution"); v != "" {
		res, err := stats.ParseResolution(v)
		if err != nil {
			return r, invalidf("resolution: %s is not 15m, 1h or 1d", strconv.Quote(shorten(v, 40)))
		}
		r.res = res
	}
	var err error
	if r.to, err = timeParam(q, "to", s.cfg.Now()); err != nil {
		return r, err
	}
	window := statsWindow
	if r.res == stats.Res1d {
		window = statsWindowDay
	}
	if r.from, err = timeParam(q, "from", r.to.Add(-window)); err != nil {
		return r, err
	}
	if !r.from.Before(r.to) {
		return r, invalidf("from: %s is not before to %s", r.from.UTC().Format(time.RFC3339Nano), r.to.UTC().Format(time.RFC3339Nano))
	}
	// The buckets overlapping [from, to).
	w := int64(r.res.Duration() / time.Second)
	last := r.to.Add(-time.Nanosecond).Unix()
	n := (r.res.StartOf(last)-r.res.StartOf(r.from.Unix()))/w + 1
	if limit := s.deps.Stats.MaxPoints(); n > int64(limit) {
		return r, invalidf("from, to: the range holds %d buckets of %s, more than the maximum %d: narrow it or use a coarser resolution", n, r.res, limit)
	}
	return r, nil
}

// maxEpochMillis is the end of year 9999 in epoch milliseconds.
const maxEpochMillis = 253402300799999

// timeParam reads a time parameter, RFC 3339 or epoch milliseconds; def
// when absent.
func timeParam(q url.Values, name string, def time.Time) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms < 0 || ms > maxEpochMillis {
			return time.Time{}, invalidf("%s: %d is out of range for epoch milliseconds", name, ms)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalidf("%s: %s is neither RFC 3339 nor epoch milliseconds", name, strconv.Quote(shorten(v, 40)))
	}
	return t, nil
}

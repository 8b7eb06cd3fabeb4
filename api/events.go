package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/signals"
)

// EventsResponse is the answer to POST /v1/events: 200 when at least one
// event was accepted (or the batch was empty), 400 when every event was
// rejected (then Error is set too). Every event of the body is either
// accepted (its id in IDs, body order) or listed in Rejected with its
// index, id, field and reason. A 503 answer is a plain error whose
// outcome is unknown (some events may have been stored): retry the whole
// batch with the same ids, which the engine de-duplicates; only the 503
// of admission control (too many event requests at once) guarantees that
// nothing was accepted.
type EventsResponse struct {
	Accepted int                 `json:"accepted"`
	IDs      []string            `json:"ids"`
	Rejected []signals.Rejection `json:"rejected"`
	// Applied is set with wait=: how many of the accepted events the
	// engine had applied when the answer was sent (all of them unless
	// the wait ran out; the others are still applied later).
	Applied *int       `json:"applied,omitempty"`
	Error   *ErrorBody `json:"error,omitempty"`
}

// postEvents is POST /v1/events.
func (s *Server) postEvents(c echo.Context) error {
	st := state(c)
	r := c.Request()
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"request body is larger than the limit of %s", formatBytes(s.cfg.MaxBodyBytes))
	}
	body := &readRecorder{r: http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes)}
	res, err := signals.DecodeBatch(body, s.cfg.Now(), s.evLim)
	if err != nil {
		if body.err != nil {
			var mbe *http.MaxBytesError
			if errors.As(body.err, &mbe) {
				return errorOf(mbe)
			}
			return newError(http.StatusBadRequest, CodeInvalid, "reading the request body: %v", body.err)
		}
		return err // ErrMalformedBatch (400) or ErrBatchTooLarge (413)
	}
	if err := s.authBody(c, st, res.Key); err != nil {
		return err
	}
	wait, err := s.waitParam(c)
	if err != nil {
		return err
	}
	res.Check(s.ident.check(st.principal)) // identity verification; removes user_hash

	n := len(res.Accepted) + len(res.Rejected)
	s.metrics.received.Add(float64(n))
	s.countRejections(res.Accepted, res.Rejected)
	if len(res.Accepted) > 0 {
		if err := s.publishEvents(r.Context(), res.Accepted); err != nil {
			return err
		}
	}
	out := EventsResponse{Accepted: len(res.Accepted), IDs: make([]string, len(res.Accepted)), Rejected: res.Rejected}
	for i := range res.Accepted {
		out.IDs[i] = res.Accepted[i].ID
	}
	if out.Rejected == nil {
		out.Rejected = []signals.Rejection{}
	}
	if wait > 0 {
		n := s.waitApplied(r.Context(), res.Accepted, wait)
		out.Applied = &n
	}
	status := http.StatusOK
	if len(res.Accepted) == 0 && len(res.Rejected) > 0 {
		status = http.StatusBadRequest
		out.Error = &ErrorBody{Code: CodeInvalid, Message: "no event of the batch is valid: see rejected"}
	}
	return c.JSON(status, out)
}

// countRejections counts rejected events by reason; an id rejected while
// an event with that id was accepted is a duplicate within the batch.
func (s *Server) countRejections(accepted []signals.Event, rejected []signals.Rejection) {
	var ids map[string]bool
	for _, rj := range rejected {
		reason := rj.Field
		if reason == "id" && rj.ID != "" {
			if ids == nil {
				ids = make(map[string]bool, len(accepted))
				for i := range accepted {
					ids[accepted[i].ID] = true
				}
			}
			if ids[rj.ID] {
				reason = "duplicate"
			}
		}
		s.metrics.rejected.WithLabelValues(rejectReason(reason)).Inc()
	}
}

// readRecorder remembers the error of its reader, so that a read error
// (too large, client gone) can be told from a malformed body.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF {
		rr.err = err
	}
	return n, err
}

// gate is the admission control of the event routes: at most max
// requests at once (max < 0: no bound).
type gate struct {
	max int64
	n   atomic.Int64
}

// enter takes a place, or reports false when all are taken.
func (g *gate) enter() bool {
	if g.max < 0 {
		return true
	}
	if g.n.Add(1) > g.max {
		g.n.Add(-1)
		return false
	}
	return true
}

// leave gives back the place of a successful enter.
func (g *gate) leave() {
	if g.max >= 0 {
		g.n.Add(-1)
	}
}

// inFlight is the number of places taken.
func (g *gate) inFlight() int64 { return g.n.Load() }

// errOverloaded answers an event request beyond Config.MaxEventRequests.
var errOverloaded = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
	Message: "too many event requests at once: nothing was accepted (the body was not read); retry after Retry-After seconds"}

var errPublishInvalid = errors.New("the publisher refused events the API had validated")

// publishUnknown is the message of a 503 after publishing failed: the
// publisher may have stored some events before it failed (a broker
// confirm lost, a timeout after the hand-over), so the outcome is unknown.
const publishUnknown = "the event stream is unavailable: outcome unknown, some events may have been accepted; retry the whole batch with the same ids (duplicates are dropped by id)"

// publishEvents publishes accepted events within Config.PublishTimeout.
// On failure no event counts as accepted in the metrics, the answer is
// 503 with an unknown outcome (or 499 when the client went away), and the
// client re-sends the batch with the same ids.
func (s *Server) publishEvents(ctx context.Context, events []signals.Event) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	err := s.deps.Publisher.Publish(pctx, events)
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.publish.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err == nil {
		s.metrics.accepted.Add(float64(len(events)))
		return nil
	}
	s.metrics.rejected.WithLabelValues("unavailable").Add(float64(len(events)))
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return errorOf(err) // 499: the client is gone
	case errors.Is(err, signals.ErrInvalid):
		// The bus validates with other limits or another clock: a
		// configuration bug, not the client's fault.
		return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error",
			Err: errors.Join(errPublishInvalid, err)}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: publishUnknown, Err: err}
}

// transparentGIF is a 1×1 transparent GIF (43 bytes).
var transparentGIF = []byte{
	'G', 'I', 'F', '8', '9', 'a', // header
	0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, // 1×1, global color table of 2 colors
	0x00, 0x00, 0x00, 0xff, 0xff, 0xff, // black, white
	0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, // graphic control: index 0 is transparent
	0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, // image descriptor 1×1
	0x02, 0x02, 0x44, 0x01, 0x00, // LZW data
	0x3b, // trailer
}

// pixelTypes are the event types the pixel records.
var pixelTypes = map[signals.Type]bool{signals.TypeView: true, signals.TypeClick: true, signals.TypeImpression: true}

// pixel is GET /v1/pixel.gif.
func (s *Server) pixel(c echo.Context) error {
	now := s.cfg.Now()
	e, err := pixelEvent(c.QueryParams(), now, s.evLim)
	if c.Request().Method == http.MethodHead {
		// HEAD answers as GET would but records nothing: link checkers
		// and prefetchers are not visitors.
		if err != nil {
			return err
		}
		s.writePixel(c, http.StatusOK, "", "")
		return nil
	}
	s.metrics.received.Inc()
	if err == nil {
		if ferr := s.ident.check(state(c).principal)(&e); ferr != nil {
			err = ferr
		}
	}
	if err != nil {
		var fe *signals.FieldError
		field := "event"
		if errors.As(err, &fe) {
			field = fe.Field
		}
		s.metrics.rejected.WithLabelValues(rejectReason(field)).Inc()
		return err
	}
	if err := s.publishEvents(c.Request().Context(), []signals.Event{e}); err != nil {
		return err
	}
	s.writePixel(c, http.StatusOK, "", "")
	return nil
}

// pixelEvent builds and validates the event of a pixel request. The
// parameters are the event's JSON members: id, type (view, click or
// impression; default view), visitor, user, user_hash, item, offer, token,
// session, page, referrer, element, ts (RFC 3339 or epoch ms) and value. Without an
// id, the id is derived from the query (every parameter but key), so that
// a re-delivered pixel URL is the same event.
func pixelEvent(q url.Values, now time.Time, l signals.Limits) (signals.Event, error) {
	e := signals.Event{
		ID:       q.Get("id"),
		Type:     signals.Type(q.Get("type")),
		Visitor:  q.Get("visitor"),
		User:     q.Get("user"),
		UserHash: q.Get("user_hash"),
		Item:     q.Get("item"),
		Offer:    q.Get("offer"),
		Token:    q.Get("token"),
		Session:  q.Get("session"),
		Page:     q.Get("page"),
		Referrer: q.Get("referrer"),
		Element:  q.Get("element"),
	}
	if e.Type == "" {
		e.Type = signals.TypeView
	}
	if !pixelTypes[e.Type] {
		return e, &signals.FieldError{Field: "type", Reason: "the pixel records view, click or impression, not " + strconv.Quote(shorten(string(e.Type), 40))}
	}
	if ts := q.Get("ts"); ts != "" {
		if err := e.Time.UnmarshalJSON([]byte(strconv.Quote(ts))); err != nil {
			return e, err
		}
	}
	if v := q.Get("value"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return e, &signals.FieldError{Field: "value", Reason: strconv.Quote(shorten(v, 40)) + " is not a number"}
		}
		e.Value = f
	}
	if e.ID == "" {
		e.ID = pixelID(q)
	}
	e.Normalize(now)
	if err := e.Validate(now, l); err != nil {
		return e, err
	}
	return e, nil
}

// pixelID derives an event id from a pixel query: "px-" and 32 hex digits
// of the SHA-256 of the query without key, its parameters sorted.
func pixelID(q url.Values) string {
	c := make(url.Values, len(q))
	for k, v := range q {
		if k != "key" {
			c[k] = v
		}
	}
	sum := sha256.Sum256([]byte(c.Encode()))
	return "px-" + hex.EncodeToString(sum[:16])
}

// writePixel answers the GIF with status; for an error, code and msg go
// into the X-Kairos-Error header.
func (s *Server) writePixel(c echo.Context, status int, code Code, msg string) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
	if code != "" {
		h.Set("X-Kairos-Error", headerSafe(string(code)+": "+msg))
	}
	_ = c.Blob(status, "image/gif", transparentGIF)
}

// headerSafe makes s a printable-ASCII header value of at most 512 bytes
// (other characters are escaped as \uXXXX).
func headerSafe(s string) string {
	q := strconv.QuoteToASCII(s)
	q = q[1 : len(q)-1]
	if len(q) > 512 {
		q = q[:509] + "..."
	}
	return q
}

package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/kairoshq/kairos/signals"
	"github.com/labstack/echo/v4"
)

// identifyRequest is the body of POST /v1/identify.
type identifyRequest struct {
	AnonymousID string `json:"anonymous_id"`
	UserID      string `json:"user_id"`
}

// IdentifyResponse is the answer of POST /v1/identify.
type IdentifyResponse struct {
	AnonymousID string `json:"anonymous_id"`
	UserID      string `json:"user_id"`
	// Event is the id of the identify event published for the link.
	Event string `json:"event"`
	// Applied is set with wait=: whether the engine had made the link
	// (and folded the user in) when the answer was sent.
	Applied *bool `json:"applied,omitempty"`
}

// maxIdentifyBytes bounds the body of POST /v1/identify.
const maxIdentifyBytes = 4 << 10

// identify serves POST /v1/identify: it publishes an identify event
// (visitor = anonymous_id, user = user_id) through the stream, so the link
// is made by the engine in order with the visitor's other events. The event
// id is derived from the pair, so retrying is harmless. With wait= the
// answer comes once the engine has applied the event (or the wait ran
// out: "applied": false), so that the user's recommendations asked next
// come from the union.
func (s *Server) identify(c echo.Context) error {
	wait, err := s.waitParam(c)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxIdentifyBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxIdentifyBytes {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: "identify body larger than 4096 bytes"}
	}
	if ferr := signals.CheckJSONUnicode(body); ferr != nil { // encoding/json would replace it silently
		return invalidf("%v", ferr)
	}
	var req identifyRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return invalidf("body: not a JSON object {\"anonymous_id\": …, \"user_id\": …}")
		}
		return invalidf("body: %v", err)
	}
	for _, f := range []struct{ name, v string }{{"anonymous_id", req.AnonymousID}, {"user_id", req.UserID}} {
		if f.v == "" {
			return invalidf("%s: missing", f.name)
		}
	}
	if err := checkVisitorValue("anonymous_id", req.AnonymousID, s.maxIDBytes()); err != nil {
		return err
	}
	if err := checkIDValue("user_id", req.UserID, s.maxIDBytes()); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(req.AnonymousID + "\x00" + req.UserID))
	ev := signals.Event{ID: "identify-" + hex.EncodeToString(sum[:12]), Type: signals.TypeIdentify,
		Visitor: req.AnonymousID, User: req.UserID}
	ev.Normalize(s.cfg.Now())
	s.metrics.received.Inc() // the identify event goes the events' way: counted like them
	if err := ev.Validate(s.cfg.Now(), s.evLim); err != nil {
		s.metrics.rejected.WithLabelValues(rejectReason(fieldOf(err))).Inc()
		return invalidf("%v", err)
	}
	if err := s.publishEvents(c.Request().Context(), []signals.Event{ev}); err != nil {
		return err
	}
	out := IdentifyResponse{AnonymousID: req.AnonymousID, UserID: req.UserID, Event: ev.ID}
	if wait > 0 {
		applied := s.waitApplied(c.Request().Context(), []signals.Event{ev}, wait) == 1
		out.Applied = &applied
	}
	return c.JSON(http.StatusOK, out)
}

// fieldOf returns the field a validation error names ("" when none).
func fieldOf(err error) string {
	var fe *signals.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

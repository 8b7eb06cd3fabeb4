package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/signals"
)

// Applier tells which events the engine has applied (engine.Engine): the
// wait= parameter of POST /v1/events and POST /v1/identify.
type Applier interface {
	// Applied reports, for each event, whether the engine has committed
	// it. It changes nothing.
	Applied(ctx context.Context, evs []signals.Event) ([]bool, error)
}

// MaxWait is the longest wait= of POST /v1/events and POST /v1/identify.
const MaxWait = 10 * time.Second

// Polling of Applier.Applied while a request waits: the first look comes
// after firstPoll, each later one after 1.5 times the last pause, at most
// maxPoll.
const (
	firstPoll = 2 * time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// waitParam reads the wait= parameter: how long the answer may wait for
// the engine to apply the accepted events (0 when absent). Only the
// secret key may wait: a waiting request holds one of the event
// requests' places (Config.MaxEventRequests) that browsers share.
func (s *Server) waitParam(c echo.Context) (time.Duration, error) {
	raw := c.QueryParam("wait")
	if raw == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 0 || d > MaxWait {
		return 0, invalidf("wait: %q is not a duration from 0s to %v (e.g. 2s, 500ms)", raw, MaxWait)
	}
	if st := state(c); st == nil || st.principal.kind != kindSecret {
		return 0, newError(http.StatusForbidden, CodeForbidden, "wait: only the secret key may wait for events to be applied")
	}
	if s.deps.Applier == nil && d > 0 {
		return 0, invalidf("wait: this server cannot tell when events are applied")
	}
	return d, nil
}

// waitApplied waits until the engine has applied every event of evs, or
// d has passed, or ctx is done, and returns how many are applied by then.
// A failing look ends the wait early (logged): the events stay accepted,
// and the answer says how many were seen applied.
func (s *Server) waitApplied(ctx context.Context, evs []signals.Event, d time.Duration) int {
	if d <= 0 || len(evs) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	pending := evs
	done := 0
	pause := firstPoll
	for {
		applied, err := s.deps.Applier.Applied(ctx, pending)
		if err != nil {
			if ctx.Err() == nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "wait for applied events", slog.Any("err", err))
			}
			return done
		}
		left := pending[:0:0]
		for i, ok := range applied {
			if ok {
				done++
			} else {
				left = append(left, pending[i])
			}
		}
		if pending = left; len(pending) == 0 {
			return done
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return done
		case <-t.C:
		}
		pause = min(pause*3/2, maxPoll)
	}
}

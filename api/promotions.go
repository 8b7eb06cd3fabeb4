package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/signals"
)

// Stream settings.
const (
	// heartbeatEvery is the period of the ": ping" comment of a promotion
	// stream, which also re-reads the visitor's log (a promotion whose
	// broadcast was lost is delivered then).
	heartbeatEvery = 15 * time.Second
	// streamRetry is the reconnection delay suggested to EventSource.
	streamRetry = 3 * time.Second
	// replayLimit bounds the promotions read from the log at once.
	replayLimit = 50
	// streamWriteTimeout bounds one write of a stream (a stalled client).
	streamWriteTimeout = 10 * time.Second
	// settleAfter is when a new stream reads the log once more.
	settleAfter = time.Second
)

// streamHub fans the promotions broadcast on signals.TopicPromotions out
// to the open streams of their visitors. It subscribes once, when the
// first stream opens, and stops at Shutdown. The zero value is ready.
//
// A message only wakes the visitor's streams; each stream then reads the
// visitor's log after the last promotion it sent. The log is the source
// of truth, so a stream never skips a promotion (not even one whose
// broadcast was lost: the heartbeat re-reads the log too) and never sends
// one twice (it sends only Seqs above the last it sent, in order).
type streamHub struct {
	once   sync.Once
	mu     sync.Mutex
	subs   map[string]map[*streamSub]struct{}
	open   int           // streams in subs
	done   chan struct{} // closed at Shutdown: streams end
	closed bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// heartbeat overrides heartbeatEvery when set (tests).
	heartbeat time.Duration
}

// streamSub is one open stream.
type streamSub struct {
	visitor string
	wake    chan struct{} // buffered 1: a pending wake-up
}

// init starts the subscription (once); s.deps.Subscriber may be nil (the
// streams then rely on their heartbeat polls).
func (h *streamHub) init(s *Server) {
	h.once.Do(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.subs = map[string]map[*streamSub]struct{}{}
		h.done = make(chan struct{})
		if h.closed {
			close(h.done)
			return
		}
		if s.deps.Subscriber == nil {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		h.wg.Go(func() { h.subscribe(ctx, s) })
	})
}

// subscribe keeps a subscription to TopicPromotions until ctx ends.
func (h *streamHub) subscribe(ctx context.Context, s *Server) {
	for {
		err := s.deps.Subscriber.Subscribe(ctx, signals.TopicPromotions, h.deliver)
		if ctx.Err() != nil || errors.Is(err, signals.ErrClosed) {
			return
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "promotion subscription ended, resubscribing", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// deliver wakes the streams of the promotion's visitor.
func (h *streamHub) deliver(msg []byte) {
	var p struct {
		Visitor string `json:"visitor"`
	}
	if json.Unmarshal(msg, &p) != nil || p.Visitor == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs[p.Visitor] {
		select {
		case sub.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// Which limit refused a stream (the label of
// kairos_promotion_streams_refused_total).
const (
	limitServer  = "server"
	limitVisitor = "visitor"
)

// add registers a stream of visitor unless the visitor already has
// perVisitor open streams or the server max; then it returns the limit
// that refused it (limitVisitor, checked first, or limitServer) and no
// stream.
func (h *streamHub) add(visitor string, max, perVisitor int) (*streamSub, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if limit := h.fullLocked(visitor, max, perVisitor); limit != "" {
		return nil, limit
	}
	sub := &streamSub{visitor: visitor, wake: make(chan struct{}, 1)}
	if h.subs[visitor] == nil {
		h.subs[visitor] = map[*streamSub]struct{}{}
	}
	h.subs[visitor][sub] = struct{}{}
	h.open++
	return sub, ""
}

// full returns the limit that a new stream of visitor would exceed, or
// "" (see add).
func (h *streamHub) full(visitor string, max, perVisitor int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fullLocked(visitor, max, perVisitor)
}

// fullLocked is full with h.mu held.
func (h *streamHub) fullLocked(visitor string, max, perVisitor int) string {
	switch {
	case len(h.subs[visitor]) >= perVisitor:
		return limitVisitor
	case h.open >= max:
		return limitServer
	}
	return ""
}

func (h *streamHub) remove(sub *streamSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[sub.visitor], sub)
	if len(h.subs[sub.visitor]) == 0 {
		delete(h.subs, sub.visitor)
	}
	h.open--
}

// openStream registers a stream of visitor within Config.MaxStreams and
// Config.MaxVisitorStreams, counting it in the metrics; beyond a limit it
// returns a 503 naming the limit (Retry-After: Config.RetryAfter).
func (s *Server) openStream(visitor string) (*streamSub, error) {
	sub, limit := s.streams.add(visitor, s.cfg.MaxStreams, s.cfg.MaxVisitorStreams)
	if limit != "" {
		s.metrics.streamsRefused.WithLabelValues(limit).Inc()
		return nil, s.streamLimitError(limit)
	}
	s.metrics.streamsOpen.Inc()
	return sub, nil
}

// streamLimitError is the 503 of a stream refused by limit.
func (s *Server) streamLimitError(limit string) error {
	if limit == limitVisitor {
		return newError(http.StatusServiceUnavailable, CodeUnavailable,
			"too many promotion streams: the limit of %d open streams per visitor is reached (close another page's stream); retry after %s s",
			s.cfg.MaxVisitorStreams, retryAfterSeconds(s.cfg.RetryAfter))
	}
	return newError(http.StatusServiceUnavailable, CodeUnavailable,
		"too many promotion streams: the server's limit of %d open streams is reached; retry after %s s",
		s.cfg.MaxStreams, retryAfterSeconds(s.cfg.RetryAfter))
}

// closeStream unregisters a stream opened by openStream.
func (s *Server) closeStream(sub *streamSub) {
	s.streams.remove(sub)
	s.metrics.streamsOpen.Dec()
}

// stop ends every stream and the subscription, and waits for it.
func (h *streamHub) stop() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		if h.done != nil {
			close(h.done)
		}
		if h.cancel != nil {
			h.cancel()
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// stopStreams ends the promotion streams (Shutdown calls it first, so
// that open streams do not hold the graceful shutdown up).
func (s *Server) stopStreams() { s.streams.stop() }

// promotionStream is GET /v1/promotions/stream?visitor=&key=: the
// visitor's instant promotions as server-sent events (see doc.go).
func (s *Server) promotionStream(c echo.Context) error {
	if s.deps.Promotions == nil {
		return errs.New(errs.NotFound, "promotions are not configured on this server")
	}
	q := c.QueryParams()
	visitor, err := s.idParam(q, "visitor", true)
	if err != nil {
		return err
	}
	last, err := lastEventID(c)
	if err != nil {
		return err
	}
	if c.Request().Method == http.MethodHead {
		// HEAD: the status and headers a stream would get, no stream.
		if limit := s.streams.full(visitor, s.cfg.MaxStreams, s.cfg.MaxVisitorStreams); limit != "" {
			return s.streamLimitError(limit)
		}
		streamHeaders(c.Response().Header())
		return c.NoContent(http.StatusOK)
	}
	h := &s.streams
	h.init(s)
	sub, err := s.openStream(visitor)
	if err != nil {
		return err
	}
	defer s.closeStream(sub)
	// The stream outlives Config.RequestTimeout: it ends with the
	// connection or at Shutdown.
	ctx := c.Request().Context()
	if st := state(c); st != nil && st.conn != nil {
		ctx = st.conn
	}

	w := c.Response()
	// Each flush sets its own write deadline: Config.WriteTimeout would
	// otherwise end the stream.
	rc := http.NewResponseController(w.Writer)
	streamHeaders(w.Header())
	// Writes go to net/http's buffer (no buffer of our own: an open
	// stream costs memory, see BenchmarkPromotionStreamsOpen); flush
	// sends them.
	flush := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return rc.Flush()
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", streamRetry.Milliseconds())
	// poll sends the logged promotions after last, in order.
	poll := func() error {
		for {
			ps, err := s.deps.Promotions.Promotions(ctx, visitor, last, replayLimit)
			if err != nil {
				return err
			}
			for i := range ps {
				if ps[i].Seq <= last {
					continue
				}
				if err := writePromotion(w, &ps[i]); err != nil {
					return err
				}
				last = ps[i].Seq
			}
			if len(ps) < replayLimit {
				return flush()
			}
		}
	}
	if err := poll(); err != nil {
		return s.endStream(ctx, err)
	}
	every := heartbeatEvery
	if h.heartbeat > 0 {
		every = h.heartbeat
	}
	hb := time.NewTicker(every)
	defer hb.Stop()
	// One more read of the log soon after connecting: the hub's
	// subscription may not have taken effect yet when the first stream
	// opens (a broadcast before it wakes no one).
	settle := time.NewTimer(settleAfter)
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.done:
			return nil
		case <-sub.wake:
		case <-settle.C:
		case <-hb.C:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return s.endStream(ctx, err)
			}
		}
		if err := poll(); err != nil {
			return s.endStream(ctx, err)
		}
	}
}

// streamHeaders sets the headers of a promotion stream.
func streamHeaders(hd http.Header) {
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-cache, no-transform")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
}

// endStream ends a stream after an error: the client has gone (nothing to
// say), or reading the log failed (logged; the client reconnects).
func (s *Server) endStream(ctx context.Context, err error) error {
	if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "promotion stream ended", slog.Any("error", err))
	}
	return nil
}

// writePromotion writes one SSE event: id (the Seq), event "promotion"
// and the promotion's JSON as data (one line: JSON escapes newlines).
func writePromotion(w io.Writer, p *promo.Promotion) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	ev := make([]byte, 0, len(b)+64)
	ev = append(ev, "id: "...)
	ev = strconv.AppendUint(ev, p.Seq, 10)
	ev = append(ev, "\nevent: promotion\ndata: "...)
	ev = append(ev, b...)
	ev = append(ev, "\n\n"...)
	_, err = w.Write(ev)
	return err
}

// lastEventID reads the Last-Event-ID header (sent by EventSource when it
// reconnects) or the last_event_id parameter: the Seq of the last
// promotion received, 0 when absent.
func lastEventID(c echo.Context) (uint64, error) {
	v, name := c.Request().Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, name = c.QueryParam("last_event_id"), "last_event_id"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, invalidf("%s: %s is not a promotion id (a decimal number)", name, strconv.Quote(shorten(v, 40)))
	}
	return n, nil
}

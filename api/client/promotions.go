package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Promotion is an instant promotion pushed to a visitor.
type Promotion struct {
	ID      string `json:"id"` // its seq as text: the stream's event id
	Seq     uint64 `json:"seq"`
	Visitor string `json:"visitor"`
	Offer   struct {
		ID    string `json:"id"`
		Title string `json:"title,omitempty"`
		Body  string `json:"body,omitempty"`
		Image string `json:"image,omitempty"`
		Link  string `json:"link,omitempty"`
		Item  string `json:"item,omitempty"`
	} `json:"offer"`
	Slot    string    `json:"slot"`
	Token   string    `json:"token"`
	Rule    string    `json:"rule,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// ErrStop, returned by a Promotions callback, ends the stream without an
// error.
var ErrStop = errors.New("client: stop the promotion stream")

// Promotions follows the visitor's promotion stream (GET
// /v1/promotions/stream, server-sent events) and calls fn with each
// promotion, in order, until ctx ends (it then returns nil), fn returns
// an error (returned, ErrStop excepted) or a connection cannot be made
// after the retries. lastID resumes after a promotion already seen (""
// replays every unexpired one). A broken stream is reopened with the
// last id delivered (Last-Event-ID), after the server's retry: delay, so
// no promotion is lost or delivered twice.
func (c *Client) Promotions(ctx context.Context, visitor, lastID string, fn func(Promotion) error) error {
	hc := *c.hc
	hc.Timeout = 0 // a stream lasts
	retry := 3 * time.Second
	fails := 0
	for {
		delivered, err := c.streamOnce(ctx, &hc, visitor, &lastID, &retry, fn)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrStop):
			return nil
		case err != nil && errors.Is(err, errCallback):
			return errors.Unwrap(err)
		}
		if delivered {
			fails = 0
		}
		if err != nil {
			if ok, _ := retryable(err); !ok {
				return err
			}
			fails++
			if fails > c.opt.Retries {
				return err
			}
		}
		wait := retry
		var e *Error
		if errors.As(err, &e) && e.RetryAfter > 0 {
			wait = e.RetryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

var errCallback = errors.New("client: promotion callback")

type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }
func (e callbackError) Is(t error) bool {
	return t == errCallback
}

// streamOnce reads one connection of the stream; it reports whether it
// delivered a promotion.
func (c *Client) streamOnce(ctx context.Context, hc *http.Client, visitor string, lastID *string, retry *time.Duration, fn func(Promotion) error) (bool, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/promotions/stream", url.Values{"visitor": {visitor}}, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("client: promotion stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		return false, apiError(resp, body[:n])
	}
	delivered := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id, event string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // the end of an event
			if event == "promotion" && data.Len() > 0 {
				var pr Promotion
				if err := json.Unmarshal([]byte(data.String()), &pr); err != nil {
					return delivered, fmt.Errorf("client: promotion stream: event %s: %w", id, err)
				}
				if err := fn(pr); err != nil {
					if errors.Is(err, ErrStop) {
						return delivered, ErrStop
					}
					return delivered, callbackError{err}
				}
				delivered = true
				if id != "" {
					*lastID = id
				}
			}
			id, event = "", ""
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment (": ping")
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			event = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "retry":
			var ms int
			if _, err := fmt.Sscanf(value, "%d", &ms); err == nil && ms > 0 {
				*retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return delivered, fmt.Errorf("client: promotion stream: %w", err)
	}
	return delivered, nil // the server closed the stream: reconnect
}

package signals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// MessageResult is the outcome of DecodeMessage: every event of the body
// is either in Events or in Rejected.
type MessageResult struct {
	// Events holds the valid events, normalized (see Event.Normalize), in
	// body order. Repeated ids are kept: the engine de-duplicates.
	Events []Event
	// Rejected holds one entry per invalid event, in body order.
	Rejected []RejectedEvent
	// Array is true when the body was a JSON array, false for the
	// single-object form.
	Array bool
}

// RejectedEvent is an event of a message body that does not decode or
// validate.
type RejectedEvent struct {
	// Index is the event's position in the array (0 for a single-object
	// body).
	Index int
	// ID is the event's id when it could be read and is a valid id, else "".
	ID string
	// Raw is the event's JSON text as it appears in the body (a sub-slice
	// of it, not a copy); for a single-object body, the whole body.
	Raw []byte
	// Err names the field at fault and the reason.
	Err *FieldError
}

// DecodeMessage decodes a message body consumed from the broker. The body
// is either one event (a JSON object, the form server-side producers
// publish) or a JSON array of events (the form signals/rabbitmq publishes:
// the events of one visitor, in order). Surrounding whitespace and a
// leading UTF-8 byte order mark are allowed.
//
// Each event is decoded, normalized (Event.Normalize with now) and
// validated on its own, exactly like DecodeEvent (user_hash is dropped:
// producers on the broker are trusted): valid ones are returned
// in Events, invalid ones in Rejected with their position, id, raw JSON
// and error. An object body behaves as DecodeEvent: one event, accepted or
// rejected. An array body is bounded by l.MaxBatch events and
// l.MaxBatchBytes bytes, each event by l.MaxEventBytes; unlike
// DecodeBatch, a repeated id is not rejected.
//
// The error is non-nil only when the body as a whole cannot be read, and
// the result is then empty: a body that is neither an object nor an array
// (a *FieldError matching ErrInvalid), an array whose framing is not JSON
// or that is empty (ErrMalformedBatch, with the byte offset), or an array
// over the limits (ErrBatchTooLarge); both of the latter also match
// ErrInvalid.
func DecodeMessage(body []byte, now time.Time, l Limits) (MessageResult, error) {
	l = l.resolved()
	i := 0
	if len(body) >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
		i = 3
	}
	i = skipSpace(body, i)
	if i == len(body) || (body[i] != '{' && body[i] != '[') {
		got := jsonKind(body[i:])
		if i < len(body) && !json.Valid(body[i:]) {
			got = shortJSON(body[i:])
		}
		return MessageResult{}, fieldErr("", "a message body must be a JSON object (one event) or an array of events, got %s", got)
	}
	if body[i] == '{' {
		if isWrapper(body[i:]) {
			return MessageResult{}, fieldErr("events", `a {"key", "events": […]} body is the HTTP form: publish the array of events itself (or one event object)`)
		}
		e, ferr := decodeOne(trimSpace(body[i:]), now, l)
		if ferr != nil {
			return MessageResult{Rejected: []RejectedEvent{{ID: idOf(trimSpace(body[i:]), &e, l), Raw: body, Err: ferr}}}, nil
		}
		e.UserHash = ""
		return MessageResult{Events: []Event{e}}, nil
	}
	if len(body) > l.MaxBatchBytes {
		return MessageResult{}, &batchError{kind: ErrBatchTooLarge, msg: fmt.Sprintf("message body is %d bytes long, more than %d", len(body), l.MaxBatchBytes)}
	}
	var sc scanner
	end, spans, err := sc.array(body, i, l.MaxBatch)
	if err != nil {
		return MessageResult{}, err
	}
	if j := skipSpace(body, end); j < len(body) {
		return MessageResult{}, malformed(j, "unexpected data after the array")
	}
	if len(spans) == 0 {
		return MessageResult{}, malformed(i, "empty array: a message holds at least one event")
	}
	res := MessageResult{Array: true, Events: make([]Event, 0, len(spans))}
	for k, sp := range spans {
		raw := body[sp.start:sp.end:sp.end]
		e, ferr := decodeOne(raw, now, l)
		if ferr != nil {
			res.Rejected = append(res.Rejected, RejectedEvent{Index: k, ID: idOf(raw, &e, l), Raw: raw, Err: ferr})
			continue
		}
		e.UserHash = ""
		res.Events = append(res.Events, e)
	}
	return res, nil
}

// isWrapper reports whether an object body is the HTTP batch form
// {"key": …, "events": […]} (its "events" member an array).
func isWrapper(obj []byte) bool {
	if !bytes.Contains(obj, []byte(`"events"`)) {
		return false
	}
	var v struct {
		Events json.RawMessage `json:"events"`
	}
	if json.Unmarshal(obj, &v) != nil {
		return false
	}
	ev := bytes.TrimSpace(v.Events)
	return len(ev) > 0 && ev[0] == '['
}

// Package signals defines what flows into Kairos: the visitor events, how
// they are decoded and validated, how much each one teaches the model, and
// the Bus port that carries them from the collector to the engine.
//
// # Events
//
// An Event is one visitor signal; its JSON form is the same on HTTP and on
// RabbitMQ:
//
//	{"id": "e-9f2c", "type": "dwell", "visitor": "v-17", "item": "sku-42",
//	 "ts": "2026-11-23T10:15:00.250Z", "value": 1850, "page": "https://shop.example/p/42"}
//
// Types: view, click, like, dwell (attention in ms on a marked element, the
// gaze proxy; its source says how it was measured: mouse pointer rest,
// viewport visibility on a touch screen, or a resting finger), scroll (depth in percent), add_to_cart, conversion (value
// is the revenue), impression, identify (the visitor becomes user) and exit
// (exit intent). ts is RFC 3339 or epoch milliseconds.
//
// # Validation
//
// Untrusted input passes through DecodeBatch (an HTTP body: a JSON array of
// events or {"key": "pk_...", "events": [...]}) or DecodeEvent (one message
// body). Both call Event.Normalize (a missing ts becomes the receive time;
// ts is kept in UTC at millisecond precision) and Event.Validate, which
// enforces Limits:
//
//   - id, type and visitor are required; like and add_to_cart require
//     item, click and dwell an item or an offer; a view or conversion
//     without item is kept (a page view, an order's revenue) but teaches
//     the model nothing; identify requires user; an unknown type is
//     rejected with the list of valid types;
//   - ids (id, visitor, user, item, offer, session) follow the one id rule,
//     CheckID: at most 200 bytes of valid UTF-8 without control characters
//     (C0, DEL, C1) or bidirectional embedding, override and isolate
//     characters (U+202A–U+202E, U+2066–U+2069) (the visitor is the AMQP
//     routing key, the id the message-id: AMQP allows 255 bytes). The
//     catalog's item ids and the API's id parameters use the same rule;
//   - a visitor id may not start with a reserved prefix ("user:", which
//     names a known user's state in the engine; ReservedPrefix holds the
//     one list), so that no client can write into a user's profile by
//     naming it as a visitor;
//   - JSON text that encoding/json would silently replace with U+FFFD
//     (bytes that are not UTF-8, \u escapes of unpaired surrogates) is
//     rejected, naming the member, so that two different ids never decode
//     to one (CheckJSONUnicode applies the same check to other JSON
//     bodies);
//   - user_hash (identity verification, see UserHash) needs user and is
//     at most 128 bytes; the decoders of broker messages drop it
//     (producers there are trusted);
//   - page, referrer, element and token are at most 2048 bytes;
//   - ts lies at most 10 minutes in the future and 5 years in the past;
//   - value is a finite number >= 0: dwell up to 3,600,000 ms (1 h), scroll
//     up to 100 percent, conversion revenue and all others up to 1e9;
//   - props has at most 32 keys of at most 200 bytes, with string values of
//     at most 1 KiB.
//
// Errors are *FieldError values naming the field ("visitor: missing",
// "value: NaN is not a number"); all match ErrInvalid. In a batch each
// event is judged on its own: BatchResult lists the accepted events and,
// for each rejected one, its index, id, field and reason;
// BatchResult.Check applies a further rule per event (the API's identity
// verification, which depends on the caller's key). Only a body whose
// framing is not JSON fails as a whole (ErrMalformedBatch, with the byte
// offset) or one over the limits (ErrBatchTooLarge). A repeated id within
// one batch is rejected ("duplicate id in batch"), the first one is kept.
//
// # Weights
//
// Weights gives each event its learning weight w (confidence c = 1 + α·w in
// implicit ALS); see Weights for the defaults and ParseWeights for the
// text form used by flags ("view=1,click=2,dwell=0.5").
//
// # The Bus port
//
// Bus is what the API and the engine need from a message broker:
// Publisher (durable: nil means stored), Consumer (batches, per-visitor
// order, poison messages dead-lettered instead of delivered), Broadcaster
// and Subscriber (fan-out topics TopicUpdates, TopicModels,
// TopicPromotions), Ready and Close. Errors: ErrUnavailable (retry later,
// HTTP 503) and ErrClosed. Implementations: signals/membus (in process, the
// embedded mode: Publish returns once the engine has applied the batch) and
// signals/rabbitmq. signals/bustest holds the contract tests both pass.
package signals

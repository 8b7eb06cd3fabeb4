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
// Types: view, click, like, dwell (cursor dwell in ms over a marked element,
// the gaze proxy), scroll (depth in percent), add_to_cart, conversion (value
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
//   - id, type and visitor are required; learning types (view, click,
//     like, dwell, add_to_cart, conversion) require item; identify requires
//     user; an unknown type is rejected with the list of valid types;
//   - ids (id, visitor, user, item, offer, session) are at most 200 bytes of
//     UTF-8 without control characters (the visitor is the AMQP routing
//     key, the id the message-id: AMQP allows 255 bytes);
//     page, referrer, element and token at most 2048 bytes;
//   - ts lies at most 10 minutes in the future and 5 years in the past;
//   - value is a finite number >= 0: dwell up to 3,600,000 ms (1 h), scroll
//     up to 100 percent, conversion revenue and all others up to 1e9;
//   - props has at most 32 keys of at most 200 bytes, with string values of
//     at most 1 KiB.
//
// Errors are *FieldError values naming the field ("visitor: missing",
// "value: NaN is not a number"); all match ErrInvalid. In a batch each
// event is judged on its own: BatchResult lists the accepted events and,
// for each rejected one, its index, id, field and reason. Only a body whose
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

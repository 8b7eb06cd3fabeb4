// Package bustest is the contract test suite of the signals.Bus port: every
// implementation (signals/membus, signals/rabbitmq) runs Run from its own
// tests, so both keep the same guarantees.
//
// The suite checks: a publish-consume round trip delivers every event once
// with its fields intact and per-visitor order, also with concurrent
// publishers and with more events of one visitor than one broker message
// holds; handler calls never overlap; a handler error leads to redelivery
// (or, for a synchronous bus, to Publish returning the error); poison
// messages are dead-lettered with their reason and do not block the
// stream, and a message body of one event object keeps being accepted; a
// broadcast reaches every subscriber of its topic, in order, and no other
// topic; stopping a consumer finishes and acknowledges the in-flight batch;
// a closed bus refuses work with signals.ErrClosed.
//
// For buses that carry message bodies of several events
// (Fixture.ArrayBodies), it also checks that array bodies are delivered
// in order, whatever the visitor field of their events, and that the
// invalid events of an array are dead-lettered one by one while its valid
// events are delivered.
package bustest

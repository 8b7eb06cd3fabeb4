package rabbitmqtest

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ConfirmChannel dials the broker at url and opens a channel in
// publisher-confirm mode; the connection is closed on tb's cleanup.
func ConfirmChannel(tb testing.TB, url string) (*amqp.Connection, *amqp.Channel) {
	tb.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn, ch
}

package rabbitmq

import (
	"errors"
	"fmt"
	"net"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// splitURLs splits a comma-separated list of broker URLs (Config.URL),
// trimming spaces; an empty element is kept, so that Validate names it.
func splitURLs(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// checkURLs parses each URL of a comma-separated list (Config.URL,
// StreamReaderConfig.URL) and returns a problem per bad one, each
// prefixed with prefix and naming its place in a list of several.
func checkURLs(prefix string, urls []string) []error {
	var errs []error
	for i, u := range urls {
		if _, err := amqp.ParseURI(u); err != nil {
			if len(urls) == 1 {
				errs = append(errs, fmt.Errorf("%s: URL: %w", prefix, err))
			} else {
				errs = append(errs, fmt.Errorf("%s: URL %d of %d: %w", prefix, i+1, len(urls), err))
			}
		}
	}
	return errs
}

// dial connects to the first broker of Bus.urls that answers, starting
// with the one of the last connection, or with the next one after that
// connection was lost (so a stopped node is not retried first), and
// records which one answered. When none does, it returns their errors
// joined; the caller backs off before the next round.
func (l *link) dial() (*amqp.Connection, net.Conn, error) {
	urls := l.b.urls
	l.mu.Lock()
	start := l.urlAt
	if l.failover {
		start = (start + 1) % len(urls)
	}
	l.mu.Unlock()
	var errs []error
	for k := range urls {
		i := (start + k) % len(urls)
		conn, nc, err := l.b.dialURL(l.name, urls[i])
		if err == nil {
			l.mu.Lock()
			l.urlAt, l.failover = i, false
			l.mu.Unlock()
			return conn, nc, nil
		}
		errs = append(errs, err)
	}
	return nil, nil, errors.Join(errs...)
}

// urlIndex returns the index in Bus.urls of the broker of the current or
// last connection.
func (l *link) urlIndex() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.urlAt
}

// redactURL hides the passwords of an AMQP URL, or of a comma-separated
// list of them, for messages.
func redactURL(s string) string {
	urls := splitURLs(s)
	for i, u := range urls {
		urls[i] = redactOne(u)
	}
	return strings.Join(urls, ",")
}

// redactOne hides the password of one AMQP URL.
func redactOne(s string) string {
	u, err := amqp.ParseURI(s)
	if err != nil {
		return "(invalid URL)"
	}
	if u.Password != "" {
		u.Password = "xxxxx"
	}
	return u.String()
}

//lint:file-ignore ST1012 the kinds read errs.Invalid, errs.NotFound at the call site (the package name says "error"); packages that export them use ErrFoo names

// Package errs is the error vocabulary of Kairos: five kinds that every
// package's errors are wrapped in, and public messages that the HTTP
// edge may show to a client.
//
// A kind is a sentinel compared with errors.Is:
//
//	Invalid      the request is malformed (the message names the field)
//	NotFound     the thing asked for does not exist
//	Conflict     it exists already, or something else still refers to it
//	Unavailable  a dependency (broker, store) cannot serve now: retry
//	Internal     a bug or an unexpected failure
//
// The packages' own sentinels are these kinds (engine.ErrNotFound is
// errs.NotFound, signals.ErrInvalid wraps errs.Invalid, …), so an adapter
// that wraps engine.ErrNotFound produces an errs.NotFound.
//
// Internal error texts carry the chain of operations ("embedded: item:
// not found"), meant for logs. What a client may read is a public
// message, attached with New or Wrap:
//
//	return errs.Wrap(errs.NotFound, err, "item %q not found", id)
//
// Message returns the outermost public message of a chain; api.errorOf
// is the only place that turns kinds into HTTP statuses and shows it.
package errs

import (
	"errors"
	"fmt"
)

// The kinds. They are named for how they read at the call site,
// errs.Invalid rather than errs.ErrInvalid; the packages that export them
// use the Err prefix (engine.ErrInvalid = errs.Invalid).
var (
	Invalid     = errors.New("invalid")
	NotFound    = errors.New("not found")
	Conflict    = errors.New("conflict")
	Unavailable = errors.New("unavailable")
	Internal    = errors.New("internal error")
)

// Public is an error of a kind with a message that may be shown to a
// client, and an optional cause that is not shown (it is logged).
type Public struct {
	kind  error
	msg   string
	cause error
}

// New returns an error of kind whose public message is the formatted
// text.
func New(kind error, format string, args ...any) error {
	return &Public{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind with the formatted public message and
// cause underneath (errors.Is sees both the kind and the cause's chain).
func Wrap(kind, cause error, format string, args ...any) error {
	return &Public{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// Error returns the public message followed by the cause.
func (e *Public) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

// Unwrap returns the kind and the cause.
func (e *Public) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// Message returns the outermost public message of err's chain and
// whether there is one.
func Message(err error) (string, bool) {
	var p *Public
	if errors.As(err, &p) {
		return p.msg, true
	}
	return "", false
}

// KindOf returns the kind of err: the first of Invalid, NotFound,
// Conflict, Unavailable found in its chain, else Internal (nil for nil).
func KindOf(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range []error{Invalid, NotFound, Conflict, Unavailable} {
		if errors.Is(err, k) {
			return k
		}
	}
	return Internal
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"

	"github.com/kairoshq/kairos/signals"
)

// Code is the machine-readable kind of an API error, the "code" member of
// every error body. Clients branch on the code, never on the message.
type Code string

// The error codes of the API and their HTTP statuses.
const (
	CodeInvalid          Code = "invalid"            // 400: the request is malformed; the message names the field
	CodeUnauthorized     Code = "unauthorized"       // 401: missing or unknown key
	CodeForbidden        Code = "forbidden"          // 403: the key may not use this route, or the origin is not allowed
	CodeNotFound         Code = "not_found"          // 404: no such item or route
	CodeMethodNotAllowed Code = "method_not_allowed" // 405: the route exists, the method does not
	CodeConflict         Code = "conflict"           // 409: the object already exists (POST /v1/items)
	CodeTooLarge         Code = "too_large"          // 413: the body or the batch exceeds a limit, named in the message
	CodeRateLimited      Code = "rate_limited"       // 429: the key's token bucket is empty; see Retry-After
	CodeCanceled         Code = "canceled"           // 499: the client went away (logged nowhere, seen only in metrics)
	CodeInternal         Code = "internal"           // 500: a bug or an unexpected failure; logged with the request id
	CodeUnavailable      Code = "unavailable"        // 503: the broker or the store is unavailable; see Retry-After
	CodeTimeout          Code = "timeout"            // 504: the engine did not answer within the request timeout
)

// statusClientClosed is nginx's non-standard status for a request whose
// client went away before the answer; it only shows in metrics.
const statusClientClosed = 499

// Error is an API error with its HTTP status and code. Handlers return it
// (or any error: see the mapping in errorOf) and the server's single
// HTTPErrorHandler renders it as
//
//	{"error": {"code": "invalid", "message": "n: \"abc\" is not an integer"}}
type Error struct {
	Status  int    // HTTP status
	Code    Code   // machine-readable kind
	Message string // human-readable, names the field or limit at fault
	Err     error  // the underlying error, if any (logged for internal errors)
}

// Error returns the message (and the underlying error for internal ones).
func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return string(e.Code) + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrorBody is the JSON body of every error response (and the "error"
// member of a batch answer in which no event was accepted).
type ErrorBody struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// errorResponse is the top-level JSON of an error response.
type errorResponse struct {
	Error ErrorBody `json:"error"`
}

func newError(status int, code Code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, CodeInvalid, format, args...)
}

// withoutKind is err's text without a leading "<kind>: " (the error
// code already says it): "id: missing", not "invalid: id: missing".
func withoutKind(err, kind error) string {
	return strings.TrimPrefix(err.Error(), kind.Error()+": ")
}

// errorOf maps any error returned by a handler or a dependency to an
// *Error. This is the one place where error kinds (package internal/errs)
// become HTTP statuses:
//
//	*Error                                   as is
//	*echo.HTTPError (router: 404, 405, …)    its status, with a matching code
//	*http.MaxBytesError, signals.ErrBatchTooLarge  413 too_large
//	errs.Invalid                             400 invalid
//	errs.NotFound                            404 not_found
//	errs.Conflict                            409 conflict
//	errs.Unavailable                         503 unavailable
//	context.DeadlineExceeded                 504 timeout
//	context.Canceled                         499 canceled
//	anything else                            500 internal
//
// The message is the error's public message (errs.Message) when it has
// one; without one, an invalid or conflict error shows its text (the
// validation messages name the field), and the other kinds a fixed text
// that reveals nothing of the internals (the error itself is logged when
// internal).
//
// Order matters: a request that both hit a deadline and carries an
// invalid-kind error is reported as invalid (the kinds of the error chain
// come first).
func errorOf(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromEchoError(he)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("request body is larger than the limit of %s", formatBytes(mbe.Limit)), Err: err}
	}
	msg := func(fallback string) string {
		if m, ok := errs.Message(err); ok {
			return m
		}
		return fallback
	}
	switch {
	case errors.Is(err, signals.ErrBatchTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: err.Error(), Err: err}
	case errors.Is(err, errs.Invalid):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Message: msg(withoutKind(err, errs.Invalid)), Err: err}
	case errors.Is(err, errs.NotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg("not found"), Err: err}
	case errors.Is(err, errs.Conflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: msg(withoutKind(err, errs.Conflict)), Err: err}
	case errors.Is(err, errs.Unavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: msg("the broker or the store is unavailable; retry later"), Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: "the request took longer than its deadline", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Status: statusClientClosed, Code: CodeCanceled, Message: "the request was canceled", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

// echoCodes is the code of each status an echo error may carry (echo's
// own: bad request, unauthorized, not found, method not allowed, …).
var echoCodes = map[int]Code{
	http.StatusBadRequest:            CodeInvalid,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusForbidden:             CodeForbidden,
	http.StatusNotFound:              CodeNotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusRequestEntityTooLarge: CodeTooLarge,
	http.StatusTooManyRequests:       CodeRateLimited,
	http.StatusServiceUnavailable:    CodeUnavailable,
	http.StatusGatewayTimeout:        CodeTimeout,
}

func fromEchoError(he *echo.HTTPError) *Error {
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok && s != "" {
		msg = s
	}
	e := &Error{Status: he.Code, Code: echoCodes[he.Code], Message: strings.ToLower(msg), Err: he}
	switch {
	case he.Code == http.StatusNotFound:
		e.Message = "no such route"
	case e.Code != "":
	case he.Code >= 500 || he.Code < 400:
		e.Status, e.Code, e.Message = http.StatusInternalServerError, CodeInternal, "internal error"
	default:
		e.Code = CodeInvalid
	}
	return e
}

// handleError is the server's echo HTTPErrorHandler: it renders err as
// JSON (or, on the pixel route, as the GIF with X-Kairos-Error), sets
// Retry-After on 503 and WWW-Authenticate on 401, and logs internal errors
// with the request id. Nothing else is logged.
func (s *Server) handleError(err error, c echo.Context) {
	ae := errorOf(err)
	req := c.Request()
	if ae.Code == CodeInternal {
		s.log.LogAttrs(req.Context(), slog.LevelError, "internal error",
			slog.String("request_id", requestID(c)),
			slog.String("method", req.Method),
			slog.String("route", routeName(c)),
			slog.Any("error", err))
	}
	if c.Response().Committed {
		return
	}
	h := c.Response().Header()
	msg := ae.Message
	switch ae.Status {
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", retryAfterSeconds(s.cfg.RetryAfter))
		}
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="kairos"`)
	case http.StatusInternalServerError:
		msg = "internal error (request id " + requestID(c) + ")"
	}
	if isPixel(c) {
		s.writePixel(c, ae.Status, ae.Code, msg)
		return
	}
	if req.Method == http.MethodHead {
		h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON) // as GET's answer, without the body
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, errorResponse{Error: ErrorBody{Code: ae.Code, Message: msg}})
}

// jsonSerializer is echo's JSON serializer without HTML escaping: the
// answers are application/json, and messages quoting "<key>" or a page
// URL with "&" stay readable.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

// Serialize writes i as JSON to the response.
func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}

// formatBytes prints n bytes, with the binary unit when exact.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n, 10) + " bytes (" + strconv.FormatInt(n>>20, 10) + " MiB)"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n, 10) + " bytes (" + strconv.FormatInt(n>>10, 10) + " KiB)"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

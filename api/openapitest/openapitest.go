// Package openapitest checks an HTTP API's traffic against its OpenAPI 3.1
// description (kin-openapi's request and response validation), for the
// tests of package api and the end-to-end tests of cmd/kairos: every
// request a test sends is matched to a described operation, and every
// answer must be one the description allows (status, headers, JSON body).
//
//	v, err := openapitest.New(api.OpenAPI())
//	client := &http.Client{Transport: v.Transport(nil)} // RoundTrip fails on a mismatch
//	handler := v.Handler(t, srv.Handler())               // t.Errorf on a mismatch
//
// The rules:
//   - a request that matches no described operation must be answered 404
//     or 405 with the JSON error body (an unknown route); any other answer
//     is an undescribed route;
//   - a request that the description calls invalid (a required parameter
//     missing, a body that does not match its schema, …) must be answered
//     with a 4xx: the server refused it as the description says it would;
//   - every answer's status must be described for the operation, its
//     described headers must match, and a JSON body must match its schema;
//     other bodies must have a described media type; server-sent event
//     streams are checked up to their headers;
//   - HEAD is checked as the GET of the same path (status and headers);
//     OPTIONS on a path without a described preflight may be echo's
//     204 with Allow and no CORS headers.
//
// Request bodies are read as JSON whatever their Content-Type, as the
// Kairos server reads them (curl -d sends a form type).
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Validator checks requests and answers against one description. It is
// safe for concurrent use.
type Validator struct {
	doc *openapi3.T
	ops []operation

	mu      sync.Mutex
	checked map[string]int // "METHOD /path" -> answers validated
}

// operation is one described operation with its path split in segments.
type operation struct {
	method, path string
	segs         []string // "{name}" for a parameter
	rest         bool     // the last parameter takes the rest of the path ("{path}")
	item         *openapi3.PathItem
	op           *openapi3.Operation
}

// New loads and validates an OpenAPI description (JSON or YAML).
func New(spec []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("openapitest: load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapitest: invalid description: %w", err)
	}
	v := &Validator{doc: doc, checked: map[string]int{}}
	for path, item := range doc.Paths.Map() {
		segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
		rest := strings.HasSuffix(path, "/{path}")
		for method, op := range item.Operations() {
			v.ops = append(v.ops, operation{method: method, path: path, segs: segs, rest: rest, item: item, op: op})
		}
	}
	// Literal paths before templated ones, so /v1/pixel.gif never
	// matches a parameter.
	sort.Slice(v.ops, func(i, j int) bool {
		return strings.Count(v.ops[i].path, "{") < strings.Count(v.ops[j].path, "{") ||
			strings.Count(v.ops[i].path, "{") == strings.Count(v.ops[j].path, "{") && v.ops[i].path < v.ops[j].path
	})
	return v, nil
}

// Doc returns the loaded description.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// PathTemplate turns an echo route path ("/v1/items/:id",
// "/dashboard/*") into its OpenAPI template ("/v1/items/{id}",
// "/dashboard/{path}").
func PathTemplate(echoPath string) string {
	segs := strings.Split(echoPath, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, ":"):
			segs[i] = "{" + s[1:] + "}"
		case s == "*":
			segs[i] = "{path}"
		}
	}
	return strings.Join(segs, "/")
}

// Described reports whether the description has the operation method
// path (an OpenAPI path template).
func (v *Validator) Described(method, path string) bool {
	for _, o := range v.ops {
		if o.method == method && o.path == path {
			return true
		}
	}
	return false
}

// Operations lists the described operations as "METHOD /path", sorted.
func (v *Validator) Operations() []string {
	out := make([]string, 0, len(v.ops))
	for _, o := range v.ops {
		out = append(out, o.method+" "+o.path)
	}
	sort.Strings(out)
	return out
}

// Checked returns how many answers of each operation ("METHOD /path")
// were validated so far.
func (v *Validator) Checked() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]int, len(v.checked))
	for k, n := range v.checked {
		out[k] = n
	}
	return out
}

// find returns the operation serving method on the escaped path, and its
// path parameters (unescaped).
func (v *Validator) find(method, escapedPath string) (*operation, map[string]string) {
	raw := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	for i := range v.ops {
		o := &v.ops[i]
		if o.method != method {
			continue
		}
		if params, ok := o.match(raw); ok {
			return o, params
		}
	}
	return nil, nil
}

func (o *operation) match(raw []string) (map[string]string, bool) {
	if len(raw) != len(o.segs) && !(o.rest && len(raw) >= len(o.segs)) {
		return nil, false
	}
	params := map[string]string{}
	for i, s := range o.segs {
		r, err := url.PathUnescape(raw[i])
		if err != nil {
			return nil, false
		}
		if strings.HasPrefix(s, "{") {
			name := strings.Trim(s, "{}")
			if o.rest && i == len(o.segs)-1 {
				r, _ = url.PathUnescape(strings.Join(raw[i:], "/"))
				if r == "" {
					r = "/" // the index of the folder
				}
				params[name] = r
				return params, true
			}
			if r == "" {
				return nil, false
			}
			params[name] = r
			continue
		}
		if r != s {
			return nil, false
		}
	}
	return params, true
}

// Check validates one exchange: the request (its body given apart, as it
// was sent; nil when it is not known, e.g. the server answered before
// reading it, which skips the body's check), and the answer's status, headers and body (nil for a stream
// or a HEAD). It returns nil when the exchange is one the description
// allows.
func (v *Validator) Check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	o, params := v.find(method, r.URL.EscapedPath())
	if o == nil {
		if (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) && isErrorBody(r.Method, header, body) {
			return nil
		}
		if r.Method == http.MethodOptions && status == http.StatusNoContent && header.Get("Allow") != "" && header.Get("Access-Control-Allow-Origin") == "" {
			return nil // echo's answer to OPTIONS on a path with other methods: no CORS
		}
		return fmt.Errorf("openapitest: %s %s is not described, and was answered %d (want 404 or 405 with an error body)", r.Method, r.URL.Path, status)
	}
	name := o.method + " " + o.path
	route := &routers.Route{Spec: v.doc, Path: o.path, PathItem: o.item, Method: o.method, Operation: o.op}

	// The request.
	vr := r.Clone(r.Context())
	vr.Method = method
	vr.Body = io.NopCloser(bytes.NewReader(reqBody))
	vr.ContentLength = int64(len(reqBody))
	if o.op.RequestBody != nil && o.op.RequestBody.Value != nil {
		ct := r.Header.Get("Content-Type")
		if o.op.RequestBody.Value.Content.Get(ct) == nil || ct == "" {
			vr.Header.Set("Content-Type", "application/json") // the server reads any body as JSON
		}
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true, SkipSettingDefaults: true,
			ExcludeRequestBody: reqBody == nil && r.Body != nil && r.Body != http.NoBody},
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		if status < 400 || status > 499 {
			return fmt.Errorf("openapitest: %s %s: the request is invalid per the description (%s) but was answered %d, not a 4xx", r.Method, r.URL, short(err), status)
		}
	}

	// The answer.
	resp := o.op.Responses.Status(status)
	if resp == nil {
		resp = o.op.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		return fmt.Errorf("openapitest: %s %s (%s): status %d is not described (body %.300s)", r.Method, r.URL.Path, name, status, body)
	}
	ct := header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if len(resp.Value.Content) > 0 && status != http.StatusNotModified && r.Method != http.MethodHead {
		if resp.Value.Content.Get(ct) == nil {
			return fmt.Errorf("openapitest: %s %s (%s): %d answered with Content-Type %q, not described", r.Method, r.URL.Path, name, status, ct)
		}
		if body == nil || !isJSON(mt) {
			opts.ExcludeResponseBody = true // a stream, or a body kin-openapi cannot decode (checked by type only)
		}
	}
	in.Request = r
	if r.Method == http.MethodHead {
		in.Request = r.Clone(r.Context())
		in.Request.Method = http.MethodGet
		opts.ExcludeResponseBody = true
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(r.Context(), rin); err != nil {
		return fmt.Errorf("openapitest: %s %s (%s): answer %d does not match the description: %s (body %.300s)", r.Method, r.URL.Path, name, status, short(err), body)
	}
	v.mu.Lock()
	v.checked[name]++
	v.mu.Unlock()
	return nil
}

// short is err's message without the schema and value dumps that
// follow the reason.
func short(err error) string {
	var b strings.Builder
	skip := false
	for _, line := range strings.Split(err.Error(), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "Schema:" || t == "Value:":
			skip = true
			continue
		case skip && (strings.HasPrefix(line, "  ") || t == ""):
			continue
		}
		skip = false
		if b.Len() > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(t)
	}
	return b.String()
}

func isJSON(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// isErrorBody reports whether an answer is the API's JSON error (HEAD has
// no body: its Content-Type must be JSON).
func isErrorBody(method string, header http.Header, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if !isJSON(mt) {
		return false
	}
	if method == http.MethodHead {
		return true
	}
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && e.Error != nil && e.Error.Code != "" && e.Error.Message != ""
}

// TB is the part of testing.TB the Handler reports to.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Handler wraps next so that every exchange it serves is checked; a
// mismatch is reported with tb.Errorf. Streams (text/event-stream) are
// passed through and checked up to their headers.
func (v *Validator) Handler(tb TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orig := r.Clone(r.Context())
		var tee *teeBody
		if r.Body != nil && r.Body != http.NoBody {
			tee = &teeBody{r: r.Body}
			r.Body = tee
		}
		rw := &recorder{w: w}
		next.ServeHTTP(rw, r)
		reqBody := []byte{}
		if tee != nil {
			if tee.err != nil && tee.err != io.EOF {
				return // the test broke the body on purpose: nothing to compare
			}
			reqBody = tee.buf.Bytes()
			if tee.err == nil {
				reqBody = nil // the server answered without reading it all
			}
		}
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		var body []byte
		if !rw.stream {
			body = rw.buf.Bytes()
		}
		if err := v.Check(orig, reqBody, rw.status, rw.w.Header(), body); err != nil {
			tb.Errorf("%v", err)
		}
	})
}

// teeBody keeps what is read from a request body.
type teeBody struct {
	r   io.ReadCloser
	buf bytes.Buffer
	err error
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf.Write(p[:n])
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

func (t *teeBody) Close() error { return t.r.Close() }

// recorder passes an answer through and keeps its status and (unless
// it is a stream) its body.
type recorder struct {
	w      http.ResponseWriter
	status int
	stream bool
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		mt, _, _ := mime.ParseMediaType(r.w.Header().Get("Content-Type"))
		r.stream = mt == "text/event-stream"
	}
	r.w.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if !r.stream {
		r.buf.Write(p)
	}
	return r.w.Write(p)
}

// Flush flushes the underlying writer when it can.
func (r *recorder) Flush() {
	if f, ok := r.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

// Transport returns an http.RoundTripper over base (http.DefaultTransport
// when nil) whose RoundTrip returns an error when an exchange does not
// match the description. Streams are checked up to their headers.
func (v *Validator) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, base: base}
}

type transport struct {
	v    *Validator
	base http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	var reqBody []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var body []byte
	if mt != "text/event-stream" && r.Method != http.MethodHead {
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if resp.Header.Get("Content-Encoding") == "gzip" && !resp.Uncompressed {
			body = nil // compressed on the wire: checked by type only
		}
	}
	if cerr := t.v.Check(r, reqBody, resp.StatusCode, resp.Header, body); cerr != nil {
		_ = resp.Body.Close()
		return nil, cerr
	}
	return resp, nil
}

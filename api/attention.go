package api

import (
	"context"
	"net"
	"net/http"
	"unicode/utf8"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"
)

// Limits of GET /v1/pages/attention.
const (
	// attentionDefaultN is n when the request gives none.
	attentionDefaultN = 100
	// maxPageBytes bounds the page parameter (the event schema's limit
	// for page URLs).
	maxPageBytes = 2048
)

// pageAttention is GET /v1/pages/attention?page=&n=: the attention heat
// of a page (see doc.go).
func (s *Server) pageAttention(c echo.Context) error {
	if s.deps.Attention == nil {
		return errs.New(errs.NotFound, "attention heat is not configured on this server")
	}
	q := c.QueryParams()
	page := q.Get("page")
	switch {
	case page == "":
		return invalidf("page: missing (the page URL, e.g. page=https://shop.example/p/42)")
	case len(page) > maxPageBytes:
		return invalidf("page: longer than %d bytes", maxPageBytes)
	case !utf8.ValidString(page):
		return invalidf("page: not valid UTF-8")
	}
	n, err := intParam(q, "n", min(attentionDefaultN, s.deps.Attention.MaxResults()), 1, s.deps.Attention.MaxResults())
	if err != nil {
		return err
	}
	heat, err := s.deps.Attention.Heat(c.Request().Context(), page, n)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.JSON(http.StatusOK, heat)
}

// site serves GET / and GET /shop/* from Deps.Site (the demo shop of
// kairos serve --demo), 404 without one. The request carries the client
// address the API determined (ClientIP).
func (s *Server) site(c echo.Context) error {
	if s.deps.Site == nil {
		return errs.New(errs.NotFound, "no page here (kairos serve --demo serves a demo shop at /)")
	}
	r := c.Request()
	s.deps.Site.ServeHTTP(c.Response(), r.WithContext(context.WithValue(r.Context(), clientIPKey{}, c.RealIP())))
	return nil
}

// clientIPKey is the context key of the client address given to
// Deps.Site.
type clientIPKey struct{}

// ClientIP returns the client address of a request the API passed to
// Deps.Site: the peer's, or the X-Forwarded-For client's when the peer
// is a trusted proxy (Config.TrustedProxies). For any other request, the
// peer address.
func ClientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

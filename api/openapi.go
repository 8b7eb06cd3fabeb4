package api

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/kairoshq/kairos/internal/httpx"
	"github.com/labstack/echo/v4"
)

// openAPI is the OpenAPI 3.1 description of the API (api/openapi.json).
// Tests keep it true: every route of the route table is described
// (TestOpenAPIDescribesEveryRoute), and the answers of the api and
// cmd/kairos tests are validated against it (package api/openapitest).
//
//go:embed openapi.json
var openAPI []byte

// openAPIETag is the strong ETag of openAPI.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPI)
	return `"oa-` + hex.EncodeToString(sum[:8]) + `"`
}()

// OpenAPI returns the OpenAPI 3.1 description of the HTTP API (JSON), the
// document served at GET /openapi.json. The caller must not modify it.
func OpenAPI() []byte { return openAPI }

// openAPIHandler serves GET /openapi.json (public): the description,
// cacheable for five minutes, with an ETag.
func (s *Server) openAPIHandler(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("ETag", openAPIETag)
	h.Set("Access-Control-Allow-Origin", "*") // tools (Swagger UI, editors) fetch it cross-origin
	if httpx.NotModified(c.Response(), c.Request(), openAPIETag) {
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(openAPI)))
	return c.Blob(http.StatusOK, "application/json", openAPI)
}

package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// healthz is GET /healthz: the process is up.
func (s *Server) healthz(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, []byte(`{"status":"ok"}`))
}

// readyz is GET /readyz: 200 when Checker.Ready returns nil within
// Config.ReadyTimeout, 503 with the reason otherwise.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if err := s.deps.Checker.Ready(ctx); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "not ready: " + err.Error(), Err: err}
	}
	return c.JSONBlob(http.StatusOK, []byte(`{"status":"ready"}`))
}

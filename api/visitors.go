package api

import (
	"net/http"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"
)

// eraseVisitor serves DELETE /v1/visitors/{id}: 204 when erased, 404 when
// there was nothing to erase (or erasure is not configured).
func (s *Server) eraseVisitor(c echo.Context) error {
	if s.deps.Eraser == nil {
		return errs.New(errs.NotFound, "visitor erasure is not configured")
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.deps.Eraser.EraseVisitor(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

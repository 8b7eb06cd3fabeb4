package api

import (
	"net/http"

	"github.com/kairoshq/kairos/internal/errs"

	"github.com/labstack/echo/v4"
)

// eraseVisitor serves DELETE /v1/visitors/{id}: 204 when erased. Erasure
// is idempotent: with an archive (kairos serve always has one) a visitor
// with no state is 204 too, because the tombstone still matters (its
// events may be archived, or in flight and applied later). 404 when
// erasure is not configured, or when the Eraser has neither state nor an
// archive to erase (engine.ErrNotFound).
func (s *Server) eraseVisitor(c echo.Context) error {
	if s.deps.Eraser == nil {
		return errs.New(errs.NotFound, "visitor erasure is not configured")
	}
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := checkIDValue("id", id, s.maxIDBytes()); err != nil {
		return err
	}
	if err := s.deps.Eraser.EraseVisitor(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

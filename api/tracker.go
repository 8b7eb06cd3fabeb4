package api

import (
	"github.com/kairoshq/kairos/signals/tracker"
	"github.com/labstack/echo/v4"
)

// trackerJS serves the browser tracker (public: it carries no secret; the
// page's script tag gives the publishable key). Caching, ETag and gzip are
// tracker.Handler's.
func (s *Server) trackerJS(c echo.Context) error {
	tracker.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// trackerTypes serves GET /tracker.d.ts (public): the TypeScript
// declarations of the tracker's browser API.
func (s *Server) trackerTypes(c echo.Context) error {
	tracker.TypesHandler().ServeHTTP(c.Response(), c.Request())
	return nil
}

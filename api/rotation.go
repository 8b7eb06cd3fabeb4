package api

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/rotation"
)

// Rotator is the rotation and paging layer over the recommendations
// (engine/rotation.Rotation).
type Rotator interface {
	// Serve answers one page of r, asking rank for the candidates.
	// Errors wrapping engine.ErrInvalid name the parameter (page, rotation).
	Serve(ctx context.Context, r rotation.Request, rank rotation.Ranker) (engine.RecResponse, error)
	// Default is the rotation of requests that name none (0: off).
	Default() time.Duration
	// Max is the longest rotation a request may ask for.
	Max() time.Duration
}

// pageQuery is the rotation and paging of a recommendations request.
type pageQuery struct {
	rotation time.Duration // negative: not given
	page     string
	peek     bool // a HEAD request: the page is not recorded as shown
}

// on reports whether the layer applies: the request names a rotation or
// a page, or the site has a default rotation.
func (p pageQuery) on(r Rotator) bool {
	return r != nil && (p.rotation >= 0 || p.page != "" || r.Default() > 0)
}

// parsePageQuery reads rotation (a Go duration: 30m, 2h, 0 for none; at
// most the layer's Max) and page (the next token of the previous page).
func (s *Server) parsePageQuery(q url.Values) (pageQuery, error) {
	p := pageQuery{rotation: -1, page: q.Get("page")}
	if v := q.Get("rotation"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return p, invalidf("rotation: %s is not a duration >= 0 (e.g. 30m, 2h, 0)", strconv.Quote(shorten(v, 40)))
		}
		p.rotation = d
	}
	if s.deps.Rotation == nil {
		if p.rotation >= 0 || p.page != "" {
			return p, invalidf("rotation and page: rotation is not configured on this server")
		}
		return p, nil
	}
	if max := s.deps.Rotation.Max(); p.rotation > max {
		return p, invalidf("rotation: %v is longer than the maximum %v (kairos serve --rotation-max)", p.rotation, max)
	}
	return p, nil
}

// rankRecs asks the engine for req, through the rotation and paging
// layer when p turns it on.
func (s *Server) rankRecs(ctx context.Context, req engine.RecRequest, p pageQuery) (engine.RecResponse, error) {
	if !p.on(s.deps.Rotation) {
		return s.deps.Recommender.Recommend(ctx, req)
	}
	return s.deps.Rotation.Serve(ctx, rotation.Request{Visitor: req.Visitor, User: req.User, N: req.N, Rotation: p.rotation, Page: p.page, Peek: p.peek},
		func(ctx context.Context, n int) (engine.RecResponse, error) {
			r := req
			r.N = n
			return s.deps.Recommender.Recommend(ctx, r)
		})
}

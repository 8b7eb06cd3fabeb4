package filter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Collection is the definition-store collection of named filters.
const Collection = "filters"

// MaxNameBytes bounds a filter's name.
const MaxNameBytes = 100

// Named is a stored filter: a filter and/or boost expression under a
// name, so that pages need not carry expressions in their URLs. With a
// Share, it is a promotion: it claims round(Share·n) of the n slots of a
// list for the best-ranked items it keeps (see Promote).
type Named struct {
	Name   string `json:"name"`
	Filter string `json:"filter,omitempty"`
	Boost  string `json:"boost,omitempty"`
	// Share in [0, 1]: 0 applies the filter and boost to the whole list;
	// above 0, to the promoted slots only.
	Share   float64   `json:"share,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Compiled is a named filter with its expressions compiled (nil when
// absent).
type Compiled struct {
	Named
	FilterExpr, BoostExpr *Expr
}

// Store keeps named filters as versioned documents of the definition
// store (engine/defstore), so that they are shared by every replica on
// both backends, and a compiled copy of each: Lookup reads the cache and
// reloads it when the collection's version changed (checked at most once
// per StoreConfig.Refresh), so a replica sees another's change within
// that time; its own changes at once.
type Store struct {
	coll  defstore.Collection
	comp  *Compiler
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex // guards the fields below
	byName  map[string]*Compiled
	version int64
	loaded  bool
	checked time.Time
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// Refresh is how often Lookup checks the collection's version
	// (default 1s).
	Refresh time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewStore returns the named filters kept in docs, compiled with comp.
func NewStore(docs storage.Documents, comp *Compiler, cfg StoreConfig) *Store {
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{coll: defstore.New(docs, Collection), comp: comp, every: cfg.Refresh, now: cfg.Now}
}

// CheckName validates a filter's name: 1 to MaxNameBytes of letters,
// digits, '-', '_' and '.'.
func CheckName(name string) error {
	if name == "" {
		return errs.New(errs.Invalid, "name: missing")
	}
	if len(name) > MaxNameBytes {
		return errs.New(errs.Invalid, "name: %d bytes, at most %d", len(name), MaxNameBytes)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return errs.New(errs.Invalid, "name: %q: only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// compile validates and compiles n.
func (s *Store) compile(n Named) (*Compiled, error) {
	if err := CheckName(n.Name); err != nil {
		return nil, err
	}
	if n.Filter == "" && n.Boost == "" {
		return nil, errs.New(errs.Invalid, "filter and boost: give at least one")
	}
	if math.IsNaN(n.Share) || n.Share < 0 || n.Share > 1 {
		return nil, errs.New(errs.Invalid, "share: %v is not in [0, 1]", n.Share)
	}
	c := &Compiled{Named: n}
	var err error
	if n.Filter != "" {
		if c.FilterExpr, err = s.comp.Compile("filter", n.Filter, Bool); err != nil {
			return nil, err
		}
	}
	if n.Boost != "" {
		if c.BoostExpr, err = s.comp.Compile("boost", n.Boost, Number); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Put creates or replaces the filter n.Name (validated and compiled
// first: an invalid expression is an errs.Invalid naming its position)
// and returns it as stored, and whether it was created.
func (s *Store) Put(ctx context.Context, n Named) (Named, bool, error) {
	c, err := s.compile(n)
	if err != nil {
		return Named{}, false, err
	}
	now := s.now().UTC()
	var stored Named
	created, err := s.coll.Upsert(ctx, n.Name, func(old []byte) (any, error) {
		stored = c.Named
		stored.Created, stored.Updated = now, now
		if old != nil {
			var prev Named
			if err := json.Unmarshal(old, &prev); err == nil && !prev.Created.IsZero() {
				stored.Created = prev.Created
			}
		}
		return stored, nil
	})
	if err != nil {
		return Named{}, false, fmt.Errorf("filter: put %q: %w", n.Name, err)
	}
	c.Named = stored
	s.mu.Lock()
	if s.byName != nil {
		s.byName[n.Name] = c
	}
	s.mu.Unlock()
	return stored, created, nil
}

// Get returns the stored filter name, or errs.NotFound.
func (s *Store) Get(ctx context.Context, name string) (Named, error) {
	var n Named
	if err := s.coll.Get(ctx, name, &n); err != nil {
		if errors.Is(err, errs.NotFound) {
			return Named{}, errs.Wrap(errs.NotFound, err, "filter %q not found", name)
		}
		return Named{}, fmt.Errorf("filter: get: %w", err)
	}
	return n, nil
}

// Delete removes the filter name, or returns errs.NotFound.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.coll.Delete(ctx, name); err != nil {
		if errors.Is(err, errs.NotFound) {
			return errs.Wrap(errs.NotFound, err, "filter %q not found", name)
		}
		return fmt.Errorf("filter: delete: %w", err)
	}
	s.mu.Lock()
	delete(s.byName, name)
	s.mu.Unlock()
	return nil
}

// List returns every stored filter in name order.
func (s *Store) List(ctx context.Context) ([]Named, error) {
	docs, err := s.coll.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("filter: list: %w", err)
	}
	out := make([]Named, 0, len(docs))
	for _, d := range docs {
		var n Named
		if err := json.Unmarshal(d.JSON, &n); err != nil {
			return nil, fmt.Errorf("filter: %q: %w: %w", d.ID, errs.Internal, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Lookup returns the compiled filter name from the cache (reloaded when
// the collection changed), or an errs.NotFound naming it.
func (s *Store) Lookup(ctx context.Context, name string) (*Compiled, error) {
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c, ok := s.byName[name]
	s.mu.Unlock()
	if !ok {
		return nil, errs.New(errs.NotFound, "filter_name: filter %q not found", name)
	}
	return c, nil
}

// refresh reloads the cache when the collection's version changed,
// checking at most once per s.every.
func (s *Store) refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.loaded && now.Sub(s.checked) < s.every {
		return nil
	}
	ver, err := s.coll.Version(ctx)
	if err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	s.checked = now
	if s.loaded && ver == s.version {
		return nil
	}
	docs, err := s.coll.All(ctx)
	if err != nil {
		return fmt.Errorf("filter: reload: %w", err)
	}
	m := make(map[string]*Compiled, len(docs))
	for _, d := range docs {
		var n Named
		if err := json.Unmarshal(d.JSON, &n); err != nil {
			continue
		}
		c, err := s.compile(n)
		if err != nil {
			continue // stored by a newer version with other rules: skipped
		}
		m[n.Name] = c
	}
	s.byName, s.version, s.loaded = m, ver, true
	return nil
}

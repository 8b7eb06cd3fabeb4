package rotation

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/signals"
)

// Defaults of Config.
const (
	DefaultMax           = 24 * time.Hour
	DefaultTokenTTL      = time.Hour
	DefaultMaxCandidates = 100
	DefaultWriteTimeout  = 5 * time.Second
)

// Config configures a Rotation. Zero fields take their defaults.
type Config struct {
	// Default is the rotation of requests that name none (0: none: the
	// ranker's order, nothing recorded, unless a request asks for one).
	Default time.Duration
	// Max is the longest rotation a request may ask for (default 24 h),
	// and how long a visitor's record of shown items is kept.
	Max time.Duration
	// MaxCandidates is the most items one ranker call may return (the
	// engine's MaxResults, default 100): pages end there.
	MaxCandidates int
	// TokenTTL is how long a page token is valid (default 1 h).
	TokenTTL time.Duration
	// Secret keys the page tokens (at least 16 bytes; every replica must
	// have the same, e.g. the store's token secret).
	Secret []byte
	// WriteTimeout bounds the write of what a request served (default 5 s).
	WriteTimeout time.Duration
	// Logger receives write failures (nil: discard).
	Logger *slog.Logger
	// Now is the clock of the fades, the records and the tokens (nil:
	// time.Now).
	Now func() time.Time
	// StateKey resolves a request's visitor (and user, when it names
	// one) to the key of the state that serves it — the user's once the
	// visitor is linked (engine.Engine.StateKey) — so that a user's
	// devices share one record of shown items, as impressions are
	// recorded under it (nil: the visitor id).
	StateKey func(ctx context.Context, visitor, user string) (string, error)
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.Max, DefaultMax)
	defaults.Set(&c.MaxCandidates, DefaultMaxCandidates)
	defaults.Set(&c.TokenTTL, DefaultTokenTTL)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Max < time.Second {
		errs = append(errs, fmt.Errorf("rotation config: max %v: want >= 1s", c.Max))
	}
	if c.Default < 0 || c.Default > c.Max {
		errs = append(errs, fmt.Errorf("rotation config: default %v: want in [0, max %v]", c.Default, c.Max))
	}
	if c.MaxCandidates < 1 {
		errs = append(errs, fmt.Errorf("rotation config: max candidates %d: want >= 1", c.MaxCandidates))
	}
	if c.TokenTTL < time.Second {
		errs = append(errs, fmt.Errorf("rotation config: token TTL %v: want >= 1s", c.TokenTTL))
	}
	if len(c.Secret) < 16 {
		errs = append(errs, fmt.Errorf("rotation config: secret of %d bytes: want >= 16", len(c.Secret)))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("rotation config: write timeout %v: want > 0", c.WriteTimeout))
	}
	return errors.Join(errs...)
}

// Rotation demotes what a visitor was recently shown and pages
// recommendations (see the package documentation). It is an
// engine.Reactor (impressions) and safe for concurrent use.
type Rotation struct {
	cfg  Config
	maps storage.Maps
	key  []byte
}

// Interface guard.
var _ engine.Reactor = (*Rotation)(nil)

// New returns a Rotation keeping its records in m.
func New(m storage.Maps, cfg Config) (*Rotation, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("rotation: store is nil")
	}
	k := hmac.New(sha256.New, cfg.Secret)
	k.Write([]byte("kairos page token v1"))
	return &Rotation{cfg: cfg, maps: m, key: k.Sum(nil)}, nil
}

// Default returns the rotation of requests that name none.
func (r *Rotation) Default() time.Duration { return r.cfg.Default }

// Max returns the longest rotation a request may ask for.
func (r *Rotation) Max() time.Duration { return r.cfg.Max }

// Ranker returns the ranker's n best items for the request being served
// (engine.Engine.Recommend with N = n): the layer's only view of the
// ranking.
type Ranker func(ctx context.Context, n int) (engine.RecResponse, error)

// Request is a recommendation request as the layer sees it.
type Request struct {
	// Visitor is whose record of shown items applies (required); with
	// Config.StateKey, the record of its state (its user's once linked).
	Visitor string
	// User is the request's user id, when it names one.
	User string
	// N is the page size (>= 1).
	N int
	// Rotation is the demotion time; negative: Config.Default.
	Rotation time.Duration
	// Page is the "next" token of the previous page ("": the first page).
	Page string
	// Peek serves the page without recording its items as shown (HEAD
	// requests, previews): the next request ranks as if it had not come.
	Peek bool
}

// recordKey is the key of a visitor's map of shown items: field = item
// id, value = Unix ms of its latest showing (served or seen), followed,
// in a user's record, by "@" and the device it was shown on (so that
// erasing one device forgets its showings: ForgetVisitor).
func recordKey(visitor string) string { return "rot:" + visitor }

// showing returns the value of a record field: the time of a showing, and
// the device when it differs from the record's key.
func showing(at time.Time, device, key string) string {
	ms := strconv.FormatInt(at.UnixMilli(), 10)
	if device == "" || device == key {
		return ms
	}
	return ms + "@" + device
}

// parseShowing splits a record value written by showing (or by earlier
// builds: the time alone).
func parseShowing(v string) (at time.Time, device string, err error) {
	ms, device, _ := strings.Cut(v, "@")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("rotation: record value %q: %w", v, err)
	}
	return time.UnixMilli(n), device, nil
}

// Serve answers one page: it reads the visitor's recently shown items,
// asks rank for N + the items of the earlier pages + the demoted ones
// (at most MaxCandidates), reranks them with the fade (Rerank), leaves
// out the earlier pages' items, takes N, records them as served (when a
// rotation applies) and sets Next when more items may follow. Errors
// wrapping engine.ErrInvalid name the parameter (page, rotation);
// others are the ranker's or the store's.
func (r *Rotation) Serve(ctx context.Context, req Request, rank Ranker) (engine.RecResponse, error) {
	now := r.cfg.Now()
	device := req.Visitor
	if r.cfg.StateKey != nil {
		key, err := r.cfg.StateKey(ctx, req.Visitor, req.User)
		if err != nil {
			return engine.RecResponse{}, fmt.Errorf("rotation: %w", err)
		}
		req.Visitor = key
	}
	rot := req.Rotation
	if rot < 0 {
		rot = r.cfg.Default
	}
	if rot > r.cfg.Max {
		return engine.RecResponse{}, errs.New(engine.ErrInvalid, "rotation: %v is longer than the maximum %v", rot, r.cfg.Max)
	}
	var prev token
	if req.Page != "" {
		t, err := r.decode(req.Page, now)
		if err != nil {
			return engine.RecResponse{}, errs.New(engine.ErrInvalid, "page: %v", err)
		}
		if t.visitor != req.Visitor {
			return engine.RecResponse{}, errs.New(engine.ErrInvalid, "page: the token was made for another visitor")
		}
		prev, rot = t, t.rotation // a page keeps its first page's rotation
	}
	ages, stale, err := r.ages(ctx, req.Visitor, rot, now)
	if err != nil {
		return engine.RecResponse{}, err
	}
	shown := make(map[uint64]bool, len(prev.shown))
	for _, h := range prev.shown {
		shown[h] = true
	}
	// One candidate more than a page needs tells whether another page
	// follows (a last page that happens to be full has no next).
	want := min(req.N+len(prev.shown)+len(ages)+1, r.cfg.MaxCandidates)
	resp, err := rank(ctx, want)
	if err != nil {
		return engine.RecResponse{}, err
	}
	ranked := Rerank(resp.Items, ages, rot, func(item string) bool { return shown[itemHash(item)] })
	page := ranked[:min(req.N, len(ranked))]
	more := len(ranked) > len(page)
	resp.Items = page
	if more && len(page) > 0 {
		next := token{expires: now.Add(r.cfg.TokenTTL), rotation: rot, visitor: req.Visitor, shown: prev.shown}
		for _, rec := range page {
			next.shown = append(next.shown, itemHash(rec.Item))
		}
		resp.Next = r.encode(next)
	}
	if rot > 0 && len(page) > 0 && !req.Peek {
		r.record(ctx, req.Visitor, device, page, stale, now)
	}
	return resp, nil
}

// ages reads the visitor's record: each item shown less than rot ago,
// with the time since, and the items shown Max ago or more (stale: the
// next write drops them).
func (r *Rotation) ages(ctx context.Context, visitor string, rot time.Duration, now time.Time) (map[string]time.Duration, []string, error) {
	if rot <= 0 {
		return nil, nil, nil
	}
	ms, err := r.maps.Maps(ctx, []string{recordKey(visitor)})
	if err != nil {
		return nil, nil, fmt.Errorf("rotation: read shown items: %w", err)
	}
	out := map[string]time.Duration{}
	var stale []string
	for item, v := range ms[0] {
		at, _, err := parseShowing(v)
		age := now.Sub(at)
		switch {
		case err != nil || age >= r.cfg.Max:
			stale = append(stale, item)
		case age < rot:
			out[item] = max(age, 0)
		}
	}
	return out, stale, nil
}

// record writes the page's items as served now on device, and drops the
// stale items of the record (shown Max ago or more), in one lazy Txn. A
// failure is logged: the page is served anyway.
func (r *Rotation) record(ctx context.Context, visitor, device string, page []engine.Rec, stale []string, now time.Time) {
	var t storage.Txn
	key := recordKey(visitor)
	for _, item := range stale {
		t.Del(key, item)
	}
	v := showing(now, device, visitor)
	for _, rec := range page {
		t.Set(key, rec.Item, v)
	}
	t.Expire(key, now.Add(r.cfg.Max))
	t.Lazy = true
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.WriteTimeout)
	defer cancel()
	if err := r.maps.Apply(wctx, t); err != nil {
		r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "rotation: served items not recorded", slog.Any("err", err))
	}
}

// React records the impressions of a committed batch: an impression
// event with an item marks the item seen at the event's time (the record
// keeps the latest showing) in the record of the state it was committed
// to (the user's for a linked device).
func (r *Rotation) React(ctx context.Context, changes []engine.VisitorChange) {
	var t storage.Txn
	now := r.cfg.Now()
	for i := range changes {
		for j := range changes[i].Fresh {
			ev := &changes[i].Fresh[j]
			if ev.Type != signals.TypeImpression || ev.Item == "" || ev.Visitor == "" {
				continue
			}
			at := ev.Time.Time
			if at.IsZero() || at.After(now) {
				at = now
			}
			if now.Sub(at) >= r.cfg.Max {
				continue
			}
			key := recordKey(changes[i].Visitor.ID)
			t.Set(key, ev.Item, showing(at, ev.Visitor, changes[i].Visitor.ID))
			t.Expire(key, now.Add(r.cfg.Max))
		}
	}
	if t.Empty() {
		return
	}
	t.Lazy = true
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.WriteTimeout)
	defer cancel()
	if err := r.maps.Apply(wctx, t); err != nil {
		r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "rotation: impressions not recorded", slog.Any("err", err))
	}
}

// ForgetVisitor deletes the visitor's record (erasure), and the record
// of the user of that id (its state key, engine.UserKey) when it is one.
// For a device linked to a user (Config.StateKey), it also removes from
// the user's record the items last shown on that device. It must run
// before the link itself is erased.
func (r *Rotation) ForgetVisitor(ctx context.Context, visitor string) error {
	if err := r.maps.Delete(ctx, []string{recordKey(visitor), recordKey(engine.UserKey(visitor))}); err != nil {
		return fmt.Errorf("rotation: forget visitor: %w", err)
	}
	if r.cfg.StateKey == nil {
		return nil
	}
	key, err := r.cfg.StateKey(ctx, visitor, "")
	if err != nil {
		return fmt.Errorf("rotation: forget visitor: %w", err)
	}
	if key == visitor {
		return nil
	}
	return r.forgetDevice(ctx, key, visitor)
}

// forgetDevice deletes from the record of key the items last shown on
// device.
func (r *Rotation) forgetDevice(ctx context.Context, key, device string) error {
	rk := recordKey(key)
	ms, err := r.maps.Maps(ctx, []string{rk})
	if err != nil {
		return fmt.Errorf("rotation: forget device: read %s: %w", key, err)
	}
	var t storage.Txn
	for item, v := range ms[0] {
		if _, d, err := parseShowing(v); err == nil && d == device {
			t.Del(rk, item)
		}
	}
	if t.Empty() {
		return nil
	}
	if err := r.maps.Apply(ctx, t); err != nil {
		return fmt.Errorf("rotation: forget device: %w", err)
	}
	return nil
}

package engine

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// Routing by identity
//
// With several replicas, the bus partitions events by a routing key, and
// one replica consumes each partition. Router gives the key of an event:
// its resolved identity, UserKey(user) once the visitor is linked to a
// user, else the visitor id. So every device of a user goes to one
// partition, and one replica folds the user in; without it a user's
// devices, consumed by different replicas, would race on the user's
// factors (the last fold-in wins).
//
// The key of an event: UserKey(ev.User) when the event names its user;
// else, when another event of the same visitor in the same publish call
// names one, that user's (as the engine links them in one batch, so the
// visitor's events stay together); else the user the store links the
// visitor to (LinkStore.Resolve, shared by every replica, through a small
// cache); else the visitor id.
//
// Across the moment of linking: a visitor's events published before the
// link is visible to the publishing replica (the identify event is
// applied by the user's partition, and caches on other replicas keep
// "not linked" for up to Router.NegativeTTL) are routed by the visitor
// id. The consumer of that partition resolves them to the user and
// forwards them to the user's partition instead of applying them, and
// the user's consumer puts them into the user's history in time order
// (see "One writer per state", forward.go): each state has one writer,
// every event is applied once, and each device's events keep their
// order.

// Defaults of Router.
const (
	DefaultRouteNegativeTTL = time.Second
	DefaultRoutePositiveTTL = 30 * time.Second
	DefaultRouteCacheSize   = 100_000
)

// Router computes routing keys by resolved identity (see "Routing by
// identity" above); it implements rabbitmq.Router. It is safe for
// concurrent use.
type Router struct {
	links LinkStore
	log   *slog.Logger
	// NegativeTTL is how long "not linked" is cached (default 1 s): the
	// longest a new link made on another replica goes unnoticed here.
	NegativeTTL time.Duration
	// PositiveTTL is how long a link is cached (default 30 s).
	PositiveTTL time.Duration
	// Size bounds the cache (default 100,000 visitors; when full it is
	// emptied).
	Size int
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]routeEntry
}

type routeEntry struct {
	user    string // "" when not linked
	expires time.Time
}

// NewRouter returns a Router resolving links in links; log (nil:
// discard) receives store errors.
func NewRouter(links LinkStore, log *slog.Logger) *Router {
	log = defaults.Logger(log)
	return &Router{links: links, log: log.With(slog.String("component", "router")),
		NegativeTTL: DefaultRouteNegativeTTL, PositiveTTL: DefaultRoutePositiveTTL, Size: DefaultRouteCacheSize,
		Now: time.Now, cache: map[string]routeEntry{}}
}

// RouteKeys returns the routing key of each event. When the store cannot
// be read, the visitors it could not resolve are routed by their id (a
// warning is logged): the engine still applies their events to the
// right state, only the user's partition is not guaranteed for them.
func (r *Router) RouteKeys(ctx context.Context, events []signals.Event) []string {
	keys := make([]string, len(events))
	var local map[string]string // visitor -> user named in this call
	for _, ev := range events {
		if ev.User != "" && !strings.HasPrefix(ev.Visitor, userKeyPrefix) && ev.Visitor != ev.User {
			if local == nil {
				local = map[string]string{}
			}
			if local[ev.Visitor] == "" {
				local[ev.Visitor] = ev.User
			}
		}
	}
	var unknown []string
	now := r.Now()
	r.mu.Lock()
	for i, ev := range events {
		switch {
		case ev.User != "":
			keys[i] = UserKey(ev.User)
		case local[ev.Visitor] != "":
			keys[i] = UserKey(local[ev.Visitor])
		case strings.HasPrefix(ev.Visitor, userKeyPrefix):
			keys[i] = ev.Visitor
		default:
			if e, ok := r.cache[ev.Visitor]; ok && now.Before(e.expires) {
				keys[i] = routeKey(ev.Visitor, e.user)
			} else {
				unknown = append(unknown, ev.Visitor)
			}
		}
	}
	r.mu.Unlock()
	if len(unknown) == 0 {
		return keys
	}
	unknown = uniqueStrings(unknown)
	users, err := r.links.Resolve(ctx, unknown)
	if err != nil {
		r.log.LogAttrs(ctx, slog.LevelWarn, "links not resolved: routing by visitor id", slog.Int("visitors", len(unknown)), slog.Any("err", err))
		users = make([]string, len(unknown))
	}
	resolved := make(map[string]string, len(unknown))
	r.mu.Lock()
	if len(r.cache)+len(unknown) > r.Size {
		clear(r.cache)
	}
	for i, v := range unknown {
		resolved[v] = users[i]
		if err == nil {
			ttl := r.NegativeTTL
			if users[i] != "" {
				ttl = r.PositiveTTL
			}
			r.cache[v] = routeEntry{user: users[i], expires: now.Add(ttl)}
		}
	}
	r.mu.Unlock()
	for i, ev := range events {
		if keys[i] == "" {
			keys[i] = routeKey(ev.Visitor, resolved[ev.Visitor])
		}
	}
	return keys
}

// routeKey is UserKey(user) for a linked visitor, else the visitor id.
func routeKey(visitor, user string) string {
	if user == "" {
		return visitor
	}
	return UserKey(user)
}

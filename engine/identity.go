package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/kairoshq/kairos/signals"
)

// Identity
//
// A visitor is anonymous until an event carries its user id (the tracker's
// kairos.identify, POST /v1/identify, or any event with "user"). From then
// on the anonymous id is linked to the user (LinkStore) and every event
// under either id lands on the user's state, stored under the key
// UserKey(user). When the link is made, the anonymous history is merged
// into the user's (events already there, by id, are not added twice) and
// the user is folded in from the union at once; the anonymous state is
// then deleted. Several anonymous ids (devices) may link to one user.
// Erasing a user erases its linked anonymous ids too. Erasing one linked
// anonymous id (a device) removes its link and its events from the user's
// history (each event kept under a user records the device it came from,
// HistoryEvent.Device), and folds the user in again.
//
// With several engine replicas, the bus routes the events of a linked
// user's devices by the user (Router, route.go), and a replica applies an
// event only on the partition of the state it changes, forwarding the
// others (forward.go): one replica writes a user's state and merges its
// devices' anonymous states.

// LinkStore keeps identity links; every Store keeps them.
type LinkStore interface {
	// Link records that the anonymous visitor anon is user (idempotent; a
	// link of anon to another user replaces the first).
	Link(ctx context.Context, anon, user string) error
	// Resolve returns, for each id, the user it is linked to ("" if none).
	Resolve(ctx context.Context, ids []string) ([]string, error)
	// Linked returns the anonymous ids linked to user.
	Linked(ctx context.Context, user string) ([]string, error)
	// Unlink removes every link of user and returns the ids it had.
	Unlink(ctx context.Context, user string) ([]string, error)
	// UnlinkDevice removes the link of the anonymous id anon (not an
	// error when there is none).
	UnlinkDevice(ctx context.Context, anon string) error
}

// userKeyPrefix marks the state of a known user among visitor states.
// Visitor ids starting with it are reserved: signals.CheckVisitorID, used
// by every validation of client input, refuses them, so only the engine
// makes such keys. (Events of archives written before that check may
// still carry one; the engine then takes it as the user's state key.)
const userKeyPrefix = signals.UserKeyPrefix

// UserKey is the key under which a known user's state is stored.
func UserKey(user string) string { return userKeyPrefix + user }

// identities returns the state key of every event and the user it was
// resolved to ("" when none: the key is then the visitor id).
func (e *Engine) identities(ctx context.Context, evs []signals.Event) (keys, users []string, err error) {
	keys = make([]string, len(evs))
	users = make([]string, len(evs))
	// Links made by this batch take precedence over stored ones, so that
	// an anonymous event before the identify in the same batch goes to
	// the user too.
	local := map[string]string{}
	for _, ev := range evs {
		if isLink(&ev) {
			local[ev.Visitor] = ev.User
		}
	}
	var unknown []string
	for _, ev := range evs {
		if ev.User == "" && local[ev.Visitor] == "" {
			unknown = append(unknown, ev.Visitor)
		}
	}
	unknown = uniqueStrings(unknown)
	stored := map[string]string{}
	if len(unknown) > 0 {
		resolved, err := e.store.Resolve(ctx, unknown)
		if err != nil {
			return nil, nil, fmt.Errorf("engine: resolve identities: %w", err)
		}
		for i, u := range resolved {
			if u != "" {
				stored[unknown[i]] = u
			}
		}
	}
	for i, ev := range evs {
		user := ev.User
		if user == "" {
			user = local[ev.Visitor]
		}
		if user == "" {
			user = stored[ev.Visitor]
		}
		if user == "" {
			keys[i] = ev.Visitor
			continue
		}
		keys[i], users[i] = UserKey(user), user
	}
	return keys, users, nil
}

// isLink reports whether ev links its anonymous visitor id to a user.
func isLink(ev *signals.Event) bool {
	return ev.User != "" && !strings.HasPrefix(ev.Visitor, userKeyPrefix) && ev.Visitor != ev.User
}

// identityChanges returns, for the fresh events with their state keys and
// users (from identities), the anonymous ids to merge into each user key
// and the links to record (the first of each anonymous id).
func identityChanges(evs []signals.Event, keys, users []string) (merges map[string][]string, links [][2]string) {
	linked := map[string]bool{}
	merges = map[string][]string{}
	for i := range evs {
		ev := &evs[i]
		if isLink(ev) && !linked[ev.Visitor] {
			linked[ev.Visitor] = true
			links = append(links, [2]string{ev.Visitor, ev.User})
		}
		if users[i] != "" && ev.Visitor != users[i] && !slices.Contains(merges[keys[i]], ev.Visitor) {
			merges[keys[i]] = append(merges[keys[i]], ev.Visitor)
		}
	}
	return merges, links
}

// anonymousStates loads the states of the anonymous ids to merge, keyed
// by id (ids without state are left out).
func (e *Engine) anonymousStates(ctx context.Context, merges map[string][]string) (map[string]Visitor, error) {
	var ids []string
	for _, anon := range merges {
		ids = append(ids, anon...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	vs, err := e.store.Visitors(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("engine: load anonymous states: %w", err)
	}
	out := map[string]Visitor{}
	for _, v := range vs {
		if len(v.History) > 0 {
			out[v.ID] = v
		}
	}
	return out, nil
}

// mergeAnonymous adds to the user's state the history events of its
// anonymous ids that the user's history lacks (by event id); it returns
// the state to fold in and the events to append.
func mergeAnonymous(v Visitor, anon []Visitor) (Visitor, []HistoryEvent) {
	if len(anon) == 0 {
		return v, nil
	}
	have := make(map[string]struct{}, len(v.History))
	for _, h := range v.History {
		have[h.ID] = struct{}{}
	}
	var extra []HistoryEvent
	for _, a := range anon {
		for _, h := range a.History {
			if _, dup := have[h.ID]; dup {
				continue
			}
			have[h.ID] = struct{}{}
			if h.Device == "" {
				h.Device = a.ID
			}
			extra = append(extra, h)
		}
	}
	slices.SortStableFunc(extra, func(a, b HistoryEvent) int { return a.Time.Compare(b.Time) })
	merged := v
	merged.History = append(append(make([]HistoryEvent, 0, len(v.History)+len(extra)), v.History...), extra...)
	return merged, extra
}

// recordLinks stores the batch's new links (before the commit: a failed
// batch is merged again when redelivered, as the anonymous state is only
// deleted after the commit).
// The links (of distinct anonymous ids) are independent and recorded
// concurrently.
func (e *Engine) recordLinks(ctx context.Context, links [][2]string) error {
	errs := make([]error, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.store.Link(ctx, l[0], l[1])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("engine: link identities: %w", err)
		}
	}
	return nil
}

// dropMerged deletes the anonymous states merged into users (after the
// commit; a failure leaves a state that the next merge of the same user
// adds again without double counting).
func (e *Engine) dropMerged(ctx context.Context, anon map[string]Visitor) {
	var wg sync.WaitGroup
	for id := range anon {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.store.DeleteVisitor(ctx, id); err != nil && !isNotFound(err) {
				e.log.LogAttrs(ctx, slog.LevelWarn, "merged anonymous state not deleted", slog.Any("err", err))
			}
		}()
	}
	wg.Wait()
}

// StateKey returns the key of the state that serves a visitor: UserKey of
// user when given, else of the user the visitor is linked to, else the
// visitor id. Features that keep something per visitor beside the
// engine's state (rotation's record of shown items) key it so, to share
// it across a user's devices.
func (e *Engine) StateKey(ctx context.Context, visitor, user string) (string, error) {
	return e.stateKey(ctx, visitor, user)
}

// stateKey returns the key of the state that serves a visitor (its user's
// when linked).
func (e *Engine) stateKey(ctx context.Context, visitor, user string) (string, error) {
	if user != "" {
		return UserKey(user), nil
	}
	if strings.HasPrefix(visitor, userKeyPrefix) {
		return visitor, nil
	}
	users, err := e.store.Resolve(ctx, []string{visitor})
	if err != nil {
		return "", fmt.Errorf("engine: resolve identity: %w", err)
	}
	if users[0] != "" {
		return UserKey(users[0]), nil
	}
	return visitor, nil
}

// ErasureIDs returns every id whose state an erasure of id removes: id
// itself and, when id is a known user, the anonymous ids linked to it
// (components keyed by device, such as promotion logs, erase these too).
// It changes nothing.
func (e *Engine) ErasureIDs(ctx context.Context, id string) ([]string, error) {
	ids := []string{id}
	linked, err := e.store.Linked(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("engine: erasure ids: %w", err)
	}
	return append(ids, linked...), nil
}

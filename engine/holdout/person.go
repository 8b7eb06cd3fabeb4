package holdout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// One person, one arm. A visitor is a unit of its arm from its first
// event (a:<visitor>); once it signs in, its requests and events are the
// user's (u:<user>), whose hash may fall in the other arm. So that nobody
// moves across arms or is counted twice, a user subject that has no unit
// yet and of whose linked devices one was counted becomes an alias of
// that device's unit (the first by id): its record holds "alias" (the
// device's subject) and "arm" (the device unit's), its requests get that
// arm and its outcomes are counted in the device's unit.

// maxLinkedLooked bounds the linked devices whose units a user's first
// look reads.
const maxLinkedLooked = 16

// userUnit is what a user subject's recorded unit resolves to.
type userUnit struct {
	subject string // the user's own, or the device's it is an alias of
	arm     Arm
}

// resolveUser returns the subject that user subject s counts under (s,
// or the device subject it is an alias of) and its arm. cur is s's unit
// as read (nil: read it). It records the alias when s has no unit and a
// linked device has one. A recorded unit never changes its arm or alias,
// so this replica remembers it (up to Config.Remember users): a user's
// requests then cost no store read.
func (h *Holdout) resolveUser(ctx context.Context, s string, cur map[string]string) (string, Arm, error) {
	if u, ok := h.knownUser(s); ok {
		return u.subject, u.arm, nil
	}
	key := unitKey(s)
	for range maxAttempts {
		if cur == nil {
			var err error
			if cur, err = h.maps.Fields(ctx, key, []string{"arm", "alias"}); err != nil {
				return "", "", fmt.Errorf("holdout: read unit: %w", err)
			}
		}
		if arm := cur["arm"]; arm != "" {
			u := userUnit{subject: s, arm: Arm(arm)}
			if a := cur["alias"]; a != "" {
				u.subject = a
			}
			h.rememberUser(s, u)
			return u.subject, u.arm, nil
		}
		dev, arm, err := h.countedDevice(ctx, strings.TrimPrefix(s, experiments.UserKey("")))
		if err != nil || dev == "" {
			return s, h.ArmOf(s), err
		}
		var t storage.Txn
		t.IfAbsent(key, "arm")
		t.Set(key, "arm", string(arm))
		t.Set(key, "alias", dev)
		t.Expire(key, h.cfg.Now().Add(h.cfg.UnitTTL))
		switch err := h.maps.Apply(ctx, t); {
		case err == nil:
			h.rememberUser(s, userUnit{subject: dev, arm: arm})
			return dev, arm, nil
		case errors.Is(err, errs.Conflict): // another writer made the unit: read it again
			cur = nil
		default:
			return "", "", fmt.Errorf("holdout: record alias: %w", err)
		}
	}
	return "", "", errors.New("holdout: user unit kept conflicting")
}

func (h *Holdout) knownUser(s string) (userUnit, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, ok := h.users[s]
	return u, ok
}

func (h *Holdout) rememberUser(s string, u userUnit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.users) >= h.cfg.Remember {
		clear(h.users)
	}
	h.users[s] = u
}

// countedDevice returns the first (by id) of user's linked devices that is
// a unit, with its arm ("" when none is).
func (h *Holdout) countedDevice(ctx context.Context, user string) (string, Arm, error) {
	devs, err := h.links.Linked(ctx, user)
	if err != nil {
		return "", "", fmt.Errorf("holdout: linked devices: %w", err)
	}
	slices.Sort(devs)
	devs = devs[:min(len(devs), maxLinkedLooked)]
	keys := make([]string, len(devs))
	for i, d := range devs {
		keys[i] = unitKey(experiments.AnonKey(d))
	}
	units, err := h.maps.Maps(ctx, keys)
	if err != nil {
		return "", "", fmt.Errorf("holdout: read device units: %w", err)
	}
	for i, u := range units {
		if arm := u["arm"]; arm != "" && u["alias"] == "" {
			return experiments.AnonKey(devs[i]), Arm(arm), nil
		}
	}
	return "", "", nil
}

// isUserSubject reports whether s is a user's subject (u:<user>).
func isUserSubject(s string) bool { return strings.HasPrefix(s, experiments.UserKey("")) }

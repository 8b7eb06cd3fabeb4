package holdout

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/signals"
)

// Layout on storage.Maps:
//
//	ho:u:<subject>   one unit: "arm" → its arm, "rev" → its revenue in
//	                 cents, "conv" → "1" once it converted; expires
//	                 UnitTTL after its last write
//	ho:c:<shard>     the counters of one of Shards shards (a subject's
//	                 shard is FNV-1a of its key mod Shards, so no single
//	                 key is hot): "<arm>:units", "<arm>:converters",
//	                 "<arm>:conversions", "<arm>:revenue" (cents) and
//	                 "<arm>:revenue_sq" (Σx² of the units' revenue, cents²)
const (
	unitPrefix    = "ho:u:"
	counterPrefix = "ho:c:"
	// Shards is the number of counter maps.
	Shards = 16
	// maxAttempts bounds the retries of a unit write that lost to a
	// concurrent writer of the same unit (another replica).
	maxAttempts = 8
)

func unitKey(subject string) string { return unitPrefix + subject }

func shardKey(subject string) string {
	f := fnv.New32a()
	_, _ = f.Write([]byte(subject))
	return counterPrefix + strconv.Itoa(int(f.Sum32()%Shards))
}

// outcome is what one batch adds to one subject.
type outcome struct {
	conversions int64
	revenue     int64 // cents
}

// React counts the committed batch: every subject with fresh events is a
// unit of its arm from its first event on (intent to treat: the arm is
// drawn whether or not the subject was served), and its conversion events
// add to its arm's conversions and revenue. Nothing is counted with the
// holdout off. Store failures are logged; a Reactor cannot fail the batch.
func (h *Holdout) React(ctx context.Context, changes []engine.VisitorChange) {
	if !h.On() || len(changes) == 0 {
		return
	}
	out := map[string]outcome{}
	var order []string
	for i := range changes {
		ch := &changes[i]
		if len(ch.Fresh) == 0 {
			continue
		}
		s := subjectOfState(ch.Visitor.ID)
		o, seen := out[s]
		if !seen {
			order = append(order, s)
		}
		for j := range ch.Fresh {
			if ev := &ch.Fresh[j]; ev.Type == signals.TypeConversion {
				o.conversions++
				o.revenue += cents(ev.Value)
			}
		}
		out[s] = o
	}
	todo := order[:0]
	for _, s := range order {
		if out[s].conversions > 0 || !h.remembered(s) {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return
	}
	wctx, cancel := h.ctxTimeout(ctx)
	defer cancel()
	if err := h.countAll(wctx, todo, out); err != nil {
		h.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "holdout counts not stored", slog.Any("err", err))
	}
}

// countAll counts the subjects of one batch: one read of their units, a
// guarded write per unit that changes, then the counters of every shard
// touched, one lazy Txn per shard.
func (h *Holdout) countAll(ctx context.Context, subjects []string, out map[string]outcome) error {
	keys := make([]string, len(subjects))
	for i, s := range subjects {
		keys[i] = unitKey(s)
	}
	units, err := h.maps.Maps(ctx, keys)
	if err != nil {
		return err
	}
	shards := map[string]*storage.Txn{}
	var errs []error
	for i, s := range subjects {
		u := units[i]
		if u == nil {
			u = map[string]string{} // absent: a new unit
		}
		if err := h.count(ctx, s, out[s], u, shards); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range shards {
		c.Lazy = true
		if err := h.maps.Apply(ctx, *c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// subjectOfState returns the subject key of an engine state key.
func subjectOfState(key string) string {
	if u, ok := cutUser(key); ok {
		return experiments.UserKey(u)
	}
	return experiments.AnonKey(key)
}

func cutUser(key string) (string, bool) {
	p := engine.UserKey("")
	if len(key) > len(p) && key[:len(p)] == p {
		return key[len(p):], true
	}
	return "", false
}

func (h *Holdout) remembered(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counted[s]
}

func (h *Holdout) remember(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.counted) >= h.cfg.Remember {
		clear(h.counted)
	}
	h.counted[s] = true
}

// count adds o to subject's unit, cur as read (nil: read it), and its
// arm's counter increments to shards: the unit's record is updated
// guarded by its values as read (so concurrent writers of one unit read
// again and retry).
func (h *Holdout) count(ctx context.Context, subject string, o outcome, cur map[string]string, shards map[string]*storage.Txn) error {
	if isUserSubject(subject) { // counted in its device's unit once it is an alias (person.go)
		to, _, err := h.resolveUser(ctx, subject, cur)
		if err != nil {
			return err
		}
		if to != subject {
			defer h.remember(subject)
			subject, cur = to, nil
		}
	}
	arm := h.ArmOf(subject)
	key := unitKey(subject)
	for range maxAttempts {
		if cur == nil {
			var err error
			if cur, err = h.maps.Fields(ctx, key, []string{"arm", "rev", "conv"}); err != nil {
				return err
			}
		}
		var t, c storage.Txn
		_, exists := cur["arm"]
		var x int64
		if exists {
			if cur["arm"] != string(arm) {
				arm = Arm(cur["arm"]) // the unit keeps the arm it was counted in
			}
			x, _ = strconv.ParseInt(cur["rev"], 10, 64)
			t.IfEquals(key, "rev", cur["rev"])
			if cur["conv"] != "" {
				t.IfEquals(key, "conv", cur["conv"])
			} else {
				t.IfAbsent(key, "conv")
			}
		} else {
			t.IfAbsent(key, "arm")
			t.Set(key, "arm", string(arm))
			c.Incr(shardKey(subject), string(arm)+":units", 1)
		}
		if !exists && o.conversions == 0 {
			t.Set(key, "rev", "0")
		}
		if o.conversions > 0 {
			t.Set(key, "rev", strconv.FormatInt(x+o.revenue, 10))
			sk := shardKey(subject)
			c.Incr(sk, string(arm)+":conversions", o.conversions)
			c.Incr(sk, string(arm)+":revenue", o.revenue)
			c.Incr(sk, string(arm)+":revenue_sq", (x+o.revenue)*(x+o.revenue)-x*x)
			if cur["conv"] == "" {
				t.Set(key, "conv", "1")
				c.Incr(sk, string(arm)+":converters", 1)
			}
		}
		if !exists || o.conversions > 0 {
			t.Expire(key, h.cfg.Now().Add(h.cfg.UnitTTL))
			err := h.maps.Apply(ctx, t)
			if errors.Is(err, errs.Conflict) {
				cur = nil
				continue
			}
			if err != nil {
				return err
			}
			for _, op := range c.Ops {
				sh := shards[op.Key]
				if sh == nil {
					sh = &storage.Txn{}
					shards[op.Key] = sh
				}
				sh.Incr(op.Key, op.Field, op.Int)
			}
		}
		h.remember(subject)
		return nil
	}
	return errors.New("holdout: unit write kept conflicting")
}

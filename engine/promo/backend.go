package promo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Interface guards.
var (
	_ Store = (*BackendStore)(nil)
)

// BackendStore is the Store of every backend, written once on the
// storage primitives (storage.Backend). Create it with NewStore.
//
// Layout (keys and collections; a backend may prefix them):
//
//   - definitions: the collections "promo:offers", "promo:campaigns" and
//     "promo:rules" of engine/defstore (Definitions);
//   - the token secret: the document "promo:secret"/"token", created
//     with storage.Create, {"secret": base64 bytes};
//   - offer counters: the map "promo:stats", fields "<offer>:i"
//     (impressions), "<offer>:c" (clicks), "<offer>:v" (conversions);
//     learnt offer factors: the map "promo:factors", fields
//     "<index>:<offer>" (floats). Both are only added to (OpIncr,
//     OpIncrFloat), so replicas' writes commute;
//   - per-visitor state: the map "promo:v:<visitor>", fields
//     "cn:<offer>" (impressions in the cap window), "ce:<offer>" (the
//     window's end, Unix ms), "r:<rule>" (the end of the rule's cooldown,
//     Unix ms) and "x" (the map's expiry, Unix ms of the wall clock: a
//     day past its longest window or cooldown). A change of a window's
//     end or of a cooldown is guarded by the value read (IfEquals, or
//     IfAbsent) and retried on errs.Conflict: of concurrent callers one
//     wins;
//   - the promotion log: the log "promo:log:<visitor>" (storage.Logs),
//     whose entries are the promotions as JSON, Seq = max(last + 1,
//     Created in µs).
type BackendStore struct {
	b    storage.Backend
	defs *Definitions
	// fields caches the counter and factor field names of each offer
	// (offer → *offerFields), which every batch writes.
	fields sync.Map
}

// offerFields are the field names of one offer's counters and factors.
type offerFields struct {
	stats   [3]string // imp, click, conv
	factors []string  // "<i>:<offer>"
}

// NewStore returns the promo store kept in b.
func NewStore(b storage.Backend) *BackendStore {
	return &BackendStore{b: b, defs: NewDefinitions(b)}
}

// Definitions returns the definitions' collections.
func (s *BackendStore) Definitions() *Definitions { return s.defs }

// Keys and fields.
const (
	statsKey     = "promo:stats"
	factorsKey   = "promo:factors"
	secretColl   = "promo:secret"
	secretID     = "token"
	capCount     = "cn:"
	capEnd       = "ce:"
	cooldownPfx  = "r:"
	expiryField  = "x"
	statImp      = ":i"
	statClick    = ":c"
	statConv     = ":v"
	maxFactorIdx = 4096
	// visitorSlack is how long a visitor's map outlives its longest cap
	// window or cooldown; its expiry is moved only when less than half
	// of it is left, so that most writes leave it alone.
	visitorSlack = 24 * time.Hour
	// maxAttempts bounds the retries of a write that lost to a concurrent
	// one.
	maxAttempts = 64
)

// VisitorKey returns the key of a visitor's caps and cooldowns.
func VisitorKey(visitor string) string { return "promo:v:" + visitor }

// LogKey returns the key of a visitor's promotion log.
func LogKey(visitor string) string { return "promo:log:" + visitor }

func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("promo store: %s: %w", op, err)
}

// AddOfferCounts adds c: per visitor with cap increments, the new state of each touched cap
// window in one lazy Txn on the visitor's map alone, guarded by the
// windows' ends as read beforehand (one Maps call for every visitor); a
// visitor whose windows another writer moved is read again and retried;
// then the offer counters and factor deltas (additions) in one lazy
// storage.Txn of increments (counters of consumed batches: no disk sync
// of their own, as before the storage port). Each Txn touches one map or increments only, as a sharded backend
// (a Redis Cluster) needs (storage.Txn); on an error, the Txns before it
// stay applied.
func (s *BackendStore) AddOfferCounts(ctx context.Context, c Counts) error {
	if err := ctx.Err(); err != nil {
		return wrapErr("add offer counts", err)
	}
	if c.Empty() {
		return nil
	}
	if err := s.addCaps(ctx, &c); err != nil {
		return wrapErr("add offer counts", err)
	}
	if base := s.counterOps(&c); len(base) > 0 {
		return wrapErr("add offer counts", s.b.Apply(ctx, storage.Txn{Ops: base, Lazy: true}))
	}
	return nil
}

// addCaps applies c's cap increments, one Txn per visitor.
func (s *BackendStore) addCaps(ctx context.Context, c *Counts) error {
	if len(c.Caps) == 0 {
		return nil
	}
	vis := groupCaps(c.Caps)
	for range maxAttempts {
		keys := make([]string, len(vis))
		for i, v := range vis {
			keys[i] = v.key
		}
		ms, err := s.b.Maps(ctx, keys)
		if err != nil {
			return err
		}
		var retry []*visitorCaps
		for i, v := range vis {
			t := storage.Txn{Lazy: true}
			if err := v.capTxn(&t, ms[i], c.Now.UnixMilli(), time.Now()); err != nil {
				return err
			}
			switch err := s.b.Apply(ctx, t); {
			case errors.Is(err, errs.Conflict):
				retry = append(retry, v)
			case err != nil:
				return err
			}
		}
		if vis = retry; len(vis) == 0 {
			return nil
		}
	}
	return errs.New(errs.Conflict, "cap windows are being changed concurrently; retry")
}

// offerFields returns the field names of the offer's counters and of
// its first k factors.
func (s *BackendStore) offerFields(id string, k int) *offerFields {
	if v, ok := s.fields.Load(id); ok {
		if f := v.(*offerFields); len(f.factors) >= k {
			return f
		}
	}
	f := &offerFields{stats: [3]string{id + statImp, id + statClick, id + statConv}, factors: make([]string, k)}
	for i := range f.factors {
		f.factors[i] = strconv.Itoa(i) + ":" + id
	}
	s.fields.Store(id, f)
	return f
}

// ForgetOfferCounts deletes the offer's fields of the counters' map and
// of the factors' map (two writes: on a Redis Cluster they are in
// different slots).
func (s *BackendStore) ForgetOfferCounts(ctx context.Context, id string, k int) error {
	f := s.offerFields(id, k)
	var stats, factors storage.Txn
	for _, field := range f.stats {
		stats.Del(statsKey, field)
	}
	for _, field := range f.factors[:k] {
		factors.Del(factorsKey, field)
	}
	for _, t := range []storage.Txn{stats, factors} {
		if t.Empty() {
			continue
		}
		if err := s.b.Apply(ctx, t); err != nil {
			return wrapErr("forget offer counts", err)
		}
	}
	s.fields.Delete(id)
	return nil
}

// counterOps returns the additions of c's counters and factors.
func (s *BackendStore) counterOps(c *Counts) []storage.Op {
	n := 3 * len(c.Stats)
	for _, d := range c.Factors {
		n += len(d)
	}
	ops := make([]storage.Op, 0, n)
	for id, d := range c.Stats {
		f := s.offerFields(id, 0)
		for i, n := range [3]int64{d.Impressions, d.Clicks, d.Conversions} {
			if n != 0 {
				ops = append(ops, storage.Op{Kind: storage.OpIncr, Key: statsKey, Field: f.stats[i], Int: n})
			}
		}
	}
	for id, d := range c.Factors {
		f := s.offerFields(id, len(d))
		for i, v := range d {
			// The last component is always written, even when zero, so
			// that the stored vector has its length.
			if v != 0 || i == len(d)-1 {
				ops = append(ops, storage.Op{Kind: storage.OpIncrFloat, Key: factorsKey, Field: f.factors[i], Float: float64(v)})
			}
		}
	}
	return ops
}

// visitorCaps are a batch's cap increments of one visitor.
type visitorCaps struct {
	key  string
	incs []CapIncrement // in order
}

func groupCaps(caps []CapIncrement) []*visitorCaps {
	var out []*visitorCaps
	by := map[string]*visitorCaps{}
	for _, c := range caps {
		v := by[c.Visitor]
		if v == nil {
			v = &visitorCaps{key: VisitorKey(c.Visitor)}
			by[c.Visitor] = v
			out = append(out, v)
		}
		v.incs = append(v.incs, c)
	}
	return out
}

// window is a cap window as read and as changed by a batch.
type capWindow struct {
	oldEnd   string // "" when absent
	n, end   int64
	added    int64
	restarts bool
}

// capTxn appends to t the visitor's cap changes given its map h as read:
// a window that ended at or before now (Unix ms) restarts at 1 and ends
// at now + period; otherwise its count grows.
func (v *visitorCaps) capTxn(t *storage.Txn, h map[string]string, now int64, wall time.Time) error {
	ws := make(map[string]*capWindow, len(v.incs))
	order := make([]string, 0, len(v.incs))
	var longest time.Duration
	for _, inc := range v.incs {
		w := ws[inc.Offer]
		if w == nil {
			w = &capWindow{}
			if e, ok := h[capEnd+inc.Offer]; ok {
				end, err := strconv.ParseInt(e, 10, 64)
				n, err2 := strconv.ParseInt(h[capCount+inc.Offer], 10, 64)
				if err != nil || err2 != nil {
					return fmt.Errorf("%w: %s: cap of offer %q is malformed", errs.Internal, v.key, inc.Offer)
				}
				w.oldEnd, w.end, w.n = e, end, n
			}
			ws[inc.Offer] = w
			order = append(order, inc.Offer)
		}
		if w.end <= now {
			w.n, w.end, w.added, w.restarts = 1, now+inc.Period.Milliseconds(), 0, true
		} else {
			w.n++
			w.added++
		}
		longest = max(longest, inc.Period)
	}
	for _, o := range order {
		w := ws[o]
		if w.oldEnd == "" {
			t.IfAbsent(v.key, capEnd+o)
		} else {
			t.IfEquals(v.key, capEnd+o, w.oldEnd)
		}
		if w.restarts {
			t.Set(v.key, capEnd+o, strconv.FormatInt(w.end, 10))
			t.Set(v.key, capCount+o, strconv.FormatInt(w.n, 10))
		} else {
			t.Incr(v.key, capCount+o, w.added)
		}
	}
	return extendExpiry(t, v.key, h, wall, longest)
}

// extendExpiry appends to t, when the visitor's map h (as read) would
// expire less than half a slack after wall + d, a guarded move of its
// expiry to wall + d + visitorSlack.
func extendExpiry(t *storage.Txn, key string, h map[string]string, wall time.Time, d time.Duration) error {
	old, ok := h[expiryField]
	if ok {
		x, err := strconv.ParseInt(old, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %s: expiry %q is malformed", errs.Internal, key, old)
		}
		if x >= wall.Add(d+visitorSlack/2).UnixMilli() {
			return nil
		}
		t.IfEquals(key, expiryField, old)
	} else {
		t.IfAbsent(key, expiryField)
	}
	at := wall.Add(d + visitorSlack)
	t.Set(key, expiryField, strconv.FormatInt(at.UnixMilli(), 10))
	t.Expire(key, at)
	return nil
}

// OfferCounts reads the counter and factor maps (one Maps call).
func (s *BackendStore) OfferCounts(ctx context.Context) (OfferCounts, error) {
	ms, err := s.b.Maps(ctx, []string{statsKey, factorsKey})
	if err != nil {
		return OfferCounts{}, wrapErr("offer counts", err)
	}
	oc := OfferCounts{Stats: map[string]OfferStats{}, Factors: map[string][]float32{}}
	for field, v := range ms[0] {
		n, err := strconv.ParseInt(v, 10, 64)
		at := strings.LastIndexByte(field, ':')
		if err != nil || at < 0 {
			return OfferCounts{}, fmt.Errorf("promo store: offer counts: %w: field %q = %q is not a counter", errs.Internal, field, v)
		}
		id := field[:at]
		st := oc.Stats[id]
		switch field[at:] {
		case statImp:
			st.Impressions = n
		case statClick:
			st.Clicks = n
		case statConv:
			st.Conversions = n
		}
		oc.Stats[id] = st
	}
	for field, v := range ms[1] {
		f, err := strconv.ParseFloat(v, 64)
		is, id, ok := strings.Cut(field, ":")
		i, ierr := strconv.Atoi(is)
		if err != nil || !ok || ierr != nil || i < 0 || i >= maxFactorIdx {
			return OfferCounts{}, fmt.Errorf("promo store: offer counts: %w: factor field %q = %q is malformed", errs.Internal, field, v)
		}
		vec := oc.Factors[id]
		if i >= len(vec) {
			vec = append(vec, make([]float32, i+1-len(vec))...)
		}
		vec[i] = float32(f)
		oc.Factors[id] = vec
	}
	return oc, nil
}

// OfferCaps reads the visitor's cap windows of offers (one Fields call).
func (s *BackendStore) OfferCaps(ctx context.Context, visitor string, offers []string, now time.Time) ([]int, error) {
	out := make([]int, len(offers))
	if len(offers) == 0 {
		return out, wrapErr("offer caps", ctx.Err())
	}
	fields := make([]string, 0, 2*len(offers))
	for _, o := range offers {
		fields = append(fields, capEnd+o, capCount+o)
	}
	key := VisitorKey(visitor)
	h, err := s.b.Fields(ctx, key, fields)
	if err != nil {
		return nil, wrapErr("offer caps", err)
	}
	ms := now.UnixMilli()
	for i, o := range offers {
		es, ok := h[capEnd+o]
		if !ok {
			continue
		}
		end, err1 := strconv.ParseInt(es, 10, 64)
		n, err2 := strconv.Atoi(h[capCount+o])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("promo store: offer caps: %w: %s: cap of offer %q is malformed", errs.Internal, key, o)
		}
		if end > ms {
			out[i] = n
		}
	}
	return out, nil
}

// RuleCooldown reads the cooldown of rule for visitor (one Fields call).
func (s *BackendStore) RuleCooldown(ctx context.Context, visitor, rule string, now time.Time) (time.Time, bool, error) {
	key, f := VisitorKey(visitor), cooldownPfx+rule
	h, err := s.b.Fields(ctx, key, []string{f})
	if err != nil {
		return time.Time{}, false, wrapErr("rule cooldown", err)
	}
	cur, ok := h[f]
	if !ok {
		return time.Time{}, false, nil
	}
	end, err := strconv.ParseInt(cur, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("promo store: rule cooldown: %w: %s %s = %q is malformed", errs.Internal, key, f, cur)
	}
	return time.UnixMilli(end).UTC(), end > now.UnixMilli(), nil
}

// TryRuleCooldown reads the cooldown (one Fields call) and, when none is
// running, starts it with a Txn guarded by the value read; a concurrent
// start makes it read again.
func (s *BackendStore) TryRuleCooldown(ctx context.Context, visitor, rule string, now time.Time, d time.Duration) (bool, time.Time, error) {
	key, f := VisitorKey(visitor), cooldownPfx+rule
	ms := now.UnixMilli()
	for range maxAttempts {
		h, err := s.b.Fields(ctx, key, []string{f, expiryField})
		if err != nil {
			return false, time.Time{}, wrapErr("try rule cooldown", err)
		}
		var t storage.Txn
		if cur, ok := h[f]; ok {
			end, err := strconv.ParseInt(cur, 10, 64)
			if err != nil {
				return false, time.Time{}, fmt.Errorf("promo store: try rule cooldown: %w: %s %s = %q is malformed", errs.Internal, key, f, cur)
			}
			if end > ms {
				return false, time.UnixMilli(end).UTC(), nil
			}
			t.IfEquals(key, f, cur)
		} else {
			t.IfAbsent(key, f)
		}
		end := ms + d.Milliseconds()
		t.Set(key, f, strconv.FormatInt(end, 10))
		if err := extendExpiry(&t, key, h, time.Now(), d); err != nil {
			return false, time.Time{}, wrapErr("try rule cooldown", err)
		}
		err = s.b.Apply(ctx, t)
		switch {
		case err == nil:
			return true, time.UnixMilli(end).UTC(), nil
		case !errors.Is(err, errs.Conflict):
			return false, time.Time{}, wrapErr("try rule cooldown", err)
		}
	}
	return false, time.Time{}, errs.New(errs.Conflict, "promo store: try rule cooldown: %s is being changed concurrently; retry", key)
}

// ForgetPromoVisitor deletes the visitor's map and promotion log.
func (s *BackendStore) ForgetPromoVisitor(ctx context.Context, visitor string) error {
	return wrapErr("forget promo visitor", s.b.Delete(ctx, []string{VisitorKey(visitor), LogKey(visitor)}))
}

// AppendPromotion appends p as JSON (without ID and Seq, times at ms
// precision) to the visitor's log with minimum Seq p.Created in µs.
func (s *BackendStore) AppendPromotion(ctx context.Context, p Promotion, keep int, ttl time.Duration) (Promotion, error) {
	if p.Visitor == "" || keep < 1 {
		return Promotion{}, errs.New(errs.Invalid, "promo store: append promotion: visitor %q, keep %d", p.Visitor, keep)
	}
	p.Created, p.Expires = p.Created.UTC().Truncate(time.Millisecond), p.Expires.UTC().Truncate(time.Millisecond)
	p.ID, p.Seq = "", 0
	js, err := json.Marshal(p)
	if err != nil {
		return Promotion{}, wrapErr("append promotion", err)
	}
	seq, err := s.b.Append(ctx, LogKey(p.Visitor), uint64(max(p.Created.UnixMicro(), 0)), js, keep, max(ttl, time.Second))
	if err != nil {
		return Promotion{}, wrapErr("append promotion", err)
	}
	p.Seq, p.ID = seq, strconv.FormatUint(seq, 10)
	return p, nil
}

// Promotions reads the visitor's log after a Seq.
func (s *BackendStore) Promotions(ctx context.Context, visitor string, after uint64, limit int) ([]Promotion, error) {
	if limit < 1 {
		return []Promotion{}, wrapErr("promotions", ctx.Err())
	}
	es, err := s.b.Entries(ctx, LogKey(visitor), after, limit)
	if err != nil {
		return nil, wrapErr("promotions", err)
	}
	out := make([]Promotion, 0, len(es))
	for _, e := range es {
		var p Promotion
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return nil, fmt.Errorf("promo store: promotions: %w: %s: entry %d: %w", errs.Internal, LogKey(visitor), e.Seq, err)
		}
		p.Seq, p.ID = e.Seq, strconv.FormatUint(e.Seq, 10)
		out = append(out, p)
	}
	return out, nil
}

// secretDoc is the stored token secret.
type secretDoc struct {
	Secret []byte `json:"secret"`
}

// PromoSecret reads the secret document, creating it (storage.Create)
// with 32 random bytes when absent: of concurrent first callers one
// creates it and every one reads it.
func (s *BackendStore) PromoSecret(ctx context.Context) ([]byte, error) {
	for range maxAttempts {
		b, err := s.b.Doc(ctx, secretColl, secretID)
		if err == nil {
			var d secretDoc
			if err := json.Unmarshal(b, &d); err != nil || len(d.Secret) < 16 {
				return nil, fmt.Errorf("promo store: promo secret: %w: %s/%s holds no secret of at least 16 bytes", errs.Internal, secretColl, secretID)
			}
			return d.Secret, nil
		}
		if !errors.Is(err, errs.NotFound) {
			return nil, wrapErr("promo secret", err)
		}
		d := secretDoc{Secret: make([]byte, 32)}
		if _, err := rand.Read(d.Secret); err != nil {
			return nil, wrapErr("promo secret", err)
		}
		js, err := json.Marshal(d)
		if err != nil {
			return nil, wrapErr("promo secret", err)
		}
		err = s.b.PutDoc(ctx, secretColl, secretID, js, storage.Create)
		switch {
		case err == nil:
			return d.Secret, nil
		case !errors.Is(err, errs.Conflict):
			return nil, wrapErr("promo secret", err)
		}
	}
	return nil, errs.New(errs.Conflict, "promo store: promo secret: created and deleted concurrently; retry")
}

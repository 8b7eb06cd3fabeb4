package embedded

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
)

// Interface guard.
var _ promo.Store = (*Store)(nil)

// promoState is the promo.Store part of the state: definitions, offer
// counters and factors, and per-visitor caps, cooldowns and promotion
// logs. As in state, stored values are never modified in place (a write
// replaces a visitor's record or a factor slice), so clone copies maps.
type promoState struct {
	now      func() time.Time // the store's clock, for pruning at snapshots
	docs     map[promo.Kind]map[string][]byte
	version  int64
	stats    map[string]promo.OfferStats
	factors  map[string][]float32
	visitors map[string]*promoVisitor
	secret   []byte
}

// promoVisitor is one visitor's promotion state (times in Unix ms).
type promoVisitor struct {
	caps      map[string]capWindow // offer → window
	cooldowns map[string]int64     // rule → end
	log       []promo.Promotion
	logUntil  int64
}

type capWindow struct {
	n   int
	end int64
}

func newPromoState(now func() time.Time) *promoState {
	return &promoState{
		now: now, docs: map[promo.Kind]map[string][]byte{},
		stats: map[string]promo.OfferStats{}, factors: map[string][]float32{}, visitors: map[string]*promoVisitor{},
	}
}

func (ps *promoState) clone() *promoState {
	c := *ps
	c.docs = make(map[promo.Kind]map[string][]byte, len(ps.docs))
	for k, m := range ps.docs {
		c.docs[k] = maps.Clone(m)
	}
	c.stats = maps.Clone(ps.stats)
	c.factors = maps.Clone(ps.factors)
	c.visitors = maps.Clone(ps.visitors)
	return &c
}

// visitor returns a copy of the visitor's record to modify (a new one if
// there is none).
func (ps *promoState) visitor(id string) *promoVisitor {
	v := &promoVisitor{caps: map[string]capWindow{}, cooldowns: map[string]int64{}}
	if old := ps.visitors[id]; old != nil {
		v.caps, v.cooldowns = maps.Clone(old.caps), maps.Clone(old.cooldowns)
		v.log, v.logUntil = old.log, old.logUntil
	}
	return v
}

// Promo records: recPromo, then one of these operations. The snapshot
// holds the definitions (put), the counters (counts, from zero), the
// secret, the version and each visitor's unexpired state.
const (
	promoPut          = 1 // kind, id, JSON
	promoDelete       = 2 // kind, id
	promoCounts       = 3 // now ms; stats (offer, impressions, clicks, conversions); factors (offer, floats); caps (visitor, offer, period ms)
	promoCooldown     = 4 // visitor, rule, end ms
	promoAppend       = 5 // visitor, keep, log until ms, promotion JSON (Seq set)
	promoForget       = 6 // visitor
	promoSecretSet    = 7 // secret
	promoVersion      = 8 // version (snapshot)
	promoVisitorState = 9 // visitor, caps (offer, n, end), cooldowns (rule, end), log until, promotions JSON (snapshot)
)

func encodePromo(b []byte, op byte) []byte { return append(b, recPromo, op) }

func appendCounts(b []byte, c *promo.Counts) []byte {
	b = binary.AppendVarint(b, c.Now.UnixMilli())
	b = binary.AppendUvarint(b, uint64(len(c.Stats)))
	for _, id := range sortedStrings(c.Stats) {
		st := c.Stats[id]
		b = appendStr(b, id)
		b = binary.AppendVarint(b, st.Impressions)
		b = binary.AppendVarint(b, st.Clicks)
		b = binary.AppendVarint(b, st.Conversions)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Factors)))
	for _, id := range sortedStrings(c.Factors) {
		b = appendStr(b, id)
		b = appendFloats(b, c.Factors[id])
	}
	b = binary.AppendUvarint(b, uint64(len(c.Caps)))
	for _, inc := range c.Caps {
		b = appendStr(b, inc.Visitor)
		b = appendStr(b, inc.Offer)
		b = binary.AppendVarint(b, inc.Period.Milliseconds())
	}
	return b
}

func sortedStrings[V any](m map[string]V) []string {
	ks := slices.Collect(maps.Keys(m))
	slices.Sort(ks)
	return ks
}

func readKind(r *reader) promo.Kind {
	k := promo.Kind(r.str())
	if r.err == nil && !k.Valid() {
		r.fail("unknown definition kind %q", k)
	}
	return k
}

func readPromotion(r *reader) promo.Promotion {
	var p promo.Promotion
	if b := r.bytes(r.count(1)); r.err == nil {
		if err := json.Unmarshal(b, &p); err != nil {
			r.fail("promotion: %v", err)
		}
	}
	return p
}

func appendPromotion(b []byte, p *promo.Promotion) []byte {
	js, _ := json.Marshal(p) // a Promotion always encodes
	b = binary.AppendUvarint(b, uint64(len(js)))
	return append(b, js...)
}

// applyPromo applies one promo record (r is after the record type).
func (st *state) applyPromo(r *reader) error {
	ps := st.promo
	op := r.byte()
	switch op {
	case promoPut:
		kind, id := readKind(r), r.str()
		doc := slices.Clone(r.b)
		r.b = nil
		if err := r.done(); err != nil {
			return err
		}
		if ps.docs[kind] == nil {
			ps.docs[kind] = map[string][]byte{}
		}
		ps.docs[kind][id] = doc
		ps.version++
	case promoDelete:
		kind, id := readKind(r), r.str()
		if err := r.done(); err != nil {
			return err
		}
		delete(ps.docs[kind], id)
		ps.version++
	case promoCounts:
		c := promo.Counts{Now: time.UnixMilli(r.varint())}
		if n := r.count(4); n > 0 {
			c.Stats = make(map[string]promo.OfferStats, n)
			for range n {
				id := r.str()
				c.Stats[id] = promo.OfferStats{Impressions: r.varint(), Clicks: r.varint(), Conversions: r.varint()}
			}
		}
		if n := r.count(2); n > 0 {
			c.Factors = make(map[string][]float32, n)
			for range n {
				id := r.str()
				c.Factors[id] = r.floats()
			}
		}
		n := r.count(3)
		c.Caps = make([]promo.CapIncrement, n)
		for i := range c.Caps {
			c.Caps[i] = promo.CapIncrement{Visitor: r.str(), Offer: r.str(), Period: time.Duration(r.varint()) * time.Millisecond}
		}
		if err := r.done(); err != nil {
			return err
		}
		ps.applyCounts(&c)
	case promoCooldown:
		id, rule, end := r.str(), r.str(), r.varint()
		if err := r.done(); err != nil {
			return err
		}
		v := ps.visitor(id)
		v.cooldowns[rule] = end
		ps.visitors[id] = v
	case promoAppend:
		id, keep, until := r.str(), int(r.uvarint()), r.varint()
		p := readPromotion(r)
		if err := r.done(); err != nil {
			return err
		}
		ps.applyAppend(id, p, keep, until)
	case promoForget:
		id := r.str()
		if err := r.done(); err != nil {
			return err
		}
		delete(ps.visitors, id)
	case promoSecretSet:
		b := slices.Clone(r.b)
		r.b = nil
		if len(b) < 16 {
			return fmt.Errorf("%w: promo secret of %d bytes", errCorruptRecord, len(b))
		}
		ps.secret = b
	case promoVersion:
		v := r.varint()
		if err := r.done(); err != nil {
			return err
		}
		ps.version = v
	case promoVisitorState:
		id := r.str()
		v := &promoVisitor{caps: map[string]capWindow{}, cooldowns: map[string]int64{}}
		for range r.count(3) {
			offer := r.str()
			v.caps[offer] = capWindow{n: int(r.varint()), end: r.varint()}
		}
		for range r.count(2) {
			rule := r.str()
			v.cooldowns[rule] = r.varint()
		}
		v.logUntil = r.varint()
		for range r.count(2) {
			v.log = append(v.log, readPromotion(r))
		}
		if err := r.done(); err != nil {
			return err
		}
		ps.visitors[id] = v
	default:
		return fmt.Errorf("%w: unknown promo operation %d", errCorruptRecord, op)
	}
	return r.err
}

func (ps *promoState) applyCounts(c *promo.Counts) {
	for id, d := range c.Stats {
		st := ps.stats[id]
		st.Impressions += d.Impressions
		st.Clicks += d.Clicks
		st.Conversions += d.Conversions
		ps.stats[id] = st
	}
	for id, d := range c.Factors {
		old := ps.factors[id]
		f := make([]float32, max(len(old), len(d)))
		copy(f, old)
		for i, x := range d {
			f[i] += x
		}
		ps.factors[id] = f
	}
	now := c.Now.UnixMilli()
	for _, inc := range c.Caps {
		v := ps.visitor(inc.Visitor)
		w := v.caps[inc.Offer]
		if w.end <= now {
			w = capWindow{n: 1, end: now + inc.Period.Milliseconds()}
		} else {
			w.n++
		}
		v.caps[inc.Offer] = w
		ps.visitors[inc.Visitor] = v
	}
}

func (ps *promoState) applyAppend(id string, p promo.Promotion, keep int, until int64) {
	v := ps.visitor(id)
	log := append(slices.Clip(v.log), p)
	if len(log) > keep {
		log = slices.Clone(log[len(log)-keep:])
	}
	v.log, v.logUntil = log, until
	ps.visitors[id] = v
}

// writePromo writes the promo state as snapshot records, leaving out what
// has expired at the store's clock.
func writePromo(ps *promoState, emit func(func([]byte) []byte) error) error {
	for _, kind := range []promo.Kind{promo.KindOffer, promo.KindCampaign, promo.KindRule} {
		for _, id := range sortedStrings(ps.docs[kind]) {
			doc := ps.docs[kind][id]
			if err := emit(func(b []byte) []byte {
				return append(appendStr(appendStr(encodePromo(b, promoPut), string(kind)), id), doc...)
			}); err != nil {
				return err
			}
		}
	}
	if err := emit(func(b []byte) []byte { return binary.AppendVarint(encodePromo(b, promoVersion), ps.version) }); err != nil {
		return err
	}
	if ps.secret != nil {
		if err := emit(func(b []byte) []byte { return append(encodePromo(b, promoSecretSet), ps.secret...) }); err != nil {
			return err
		}
	}
	if len(ps.stats) > 0 || len(ps.factors) > 0 {
		c := promo.Counts{Stats: ps.stats, Factors: ps.factors}
		if err := emit(func(b []byte) []byte { return appendCounts(encodePromo(b, promoCounts), &c) }); err != nil {
			return err
		}
	}
	now := ps.now().UnixMilli()
	for id, v := range ps.visitors {
		caps := make([]string, 0, len(v.caps))
		for o, w := range v.caps {
			if w.end > now {
				caps = append(caps, o)
			}
		}
		cds := make([]string, 0, len(v.cooldowns))
		for rule, end := range v.cooldowns {
			if end > now {
				cds = append(cds, rule)
			}
		}
		log := v.log
		if v.logUntil <= now {
			log = nil
		}
		if len(caps) == 0 && len(cds) == 0 && len(log) == 0 {
			continue
		}
		if err := emit(func(b []byte) []byte {
			b = appendStr(encodePromo(b, promoVisitorState), id)
			b = binary.AppendUvarint(b, uint64(len(caps)))
			for _, o := range caps {
				b = binary.AppendVarint(binary.AppendVarint(appendStr(b, o), int64(v.caps[o].n)), v.caps[o].end)
			}
			b = binary.AppendUvarint(b, uint64(len(cds)))
			for _, rule := range cds {
				b = binary.AppendVarint(appendStr(b, rule), v.cooldowns[rule])
			}
			b = binary.AppendVarint(b, v.logUntil)
			b = binary.AppendUvarint(b, uint64(len(log)))
			for i := range log {
				b = appendPromotion(b, &log[i])
			}
			return b
		}); err != nil {
			return err
		}
	}
	return nil
}

// writePromoRecord appends one promo record to the log and applies it;
// with wait, it returns once the record is as durable as the sync
// policy makes it.
func (s *Store) writePromoRecord(op string, b []byte, wait bool) error {
	b = sealFrame(b)
	defer s.putBuf(b)
	s.mu.Lock()
	seq, err := s.appendLocked(b)
	if err == nil {
		err = s.st.apply(b[frameHeader:], s.cfg.HistoryLimit)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	if wait {
		return s.syncTo(seq)
	}
	return nil
}

// PutPromoDoc logs and applies the document (fsynced by the sync policy).
func (s *Store) PutPromoDoc(ctx context.Context, kind promo.Kind, id string, doc []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: put promo doc: %w", err)
	}
	if !kind.Valid() || id == "" {
		return fmt.Errorf("embedded: put promo doc: %w: kind %q, id %q", engine.ErrInvalid, kind, id)
	}
	b := appendStr(appendStr(encodePromo(s.getBuf(), promoPut), string(kind)), id)
	return s.writePromoRecord("put promo doc", append(b, doc...), true)
}

// DeletePromoDoc removes the document, or returns engine.ErrNotFound.
func (s *Store) DeletePromoDoc(ctx context.Context, kind promo.Kind, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: delete promo doc: %w", err)
	}
	s.mu.RLock()
	_, ok := s.st.promo.docs[kind][id]
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return errClosed
	}
	if !ok {
		return fmt.Errorf("embedded: delete promo doc %s %q: %w", kind, id, engine.ErrNotFound)
	}
	b := appendStr(appendStr(encodePromo(s.getBuf(), promoDelete), string(kind)), id)
	return s.writePromoRecord("delete promo doc", b, true)
}

// PromoDocs returns the kind's documents in id order (copies).
func (s *Store) PromoDocs(ctx context.Context, kind promo.Kind) ([]promo.Doc, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: promo docs: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	m := s.st.promo.docs[kind]
	out := make([]promo.Doc, 0, len(m))
	for _, id := range sortedStrings(m) {
		out = append(out, promo.Doc{ID: id, JSON: slices.Clone(m[id])})
	}
	return out, nil
}

// PromoDocsVersion returns the number of definition writes so far.
func (s *Store) PromoDocsVersion(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("embedded: promo docs version: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return s.st.promo.version, nil
}

// AddOfferCounts logs and applies c. Like stats counters it does not wait
// for an fsync (counters may lose the last moments before a machine
// crash, never double).
func (s *Store) AddOfferCounts(ctx context.Context, c promo.Counts) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: add offer counts: %w", err)
	}
	if c.Empty() {
		return nil
	}
	return s.writePromoRecord("add offer counts", appendCounts(encodePromo(s.getBuf(), promoCounts), &c), false)
}

// OfferCounts returns every offer's counters and factors (copies).
func (s *Store) OfferCounts(ctx context.Context) (promo.OfferCounts, error) {
	if err := ctx.Err(); err != nil {
		return promo.OfferCounts{}, fmt.Errorf("embedded: offer counts: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return promo.OfferCounts{}, errClosed
	}
	oc := promo.OfferCounts{Stats: maps.Clone(s.st.promo.stats), Factors: make(map[string][]float32, len(s.st.promo.factors))}
	for id, f := range s.st.promo.factors {
		oc.Factors[id] = slices.Clone(f)
	}
	return oc, nil
}

// OfferCaps returns the visitor's counts in the offers' cap windows.
func (s *Store) OfferCaps(ctx context.Context, visitor string, offers []string, now time.Time) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: offer caps: %w", err)
	}
	out := make([]int, len(offers))
	ms := now.UnixMilli()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	if v := s.st.promo.visitors[visitor]; v != nil {
		for i, o := range offers {
			if w := v.caps[o]; w.end > ms {
				out[i] = w.n
			}
		}
	}
	return out, nil
}

// TryRuleCooldown starts the cooldown unless one runs, under the write
// lock (so one of concurrent callers wins); a started cooldown is logged
// and fsynced by the sync policy before the call returns.
func (s *Store) TryRuleCooldown(ctx context.Context, visitor, rule string, now time.Time, d time.Duration) (bool, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return false, time.Time{}, fmt.Errorf("embedded: try rule cooldown: %w", err)
	}
	ms := now.UnixMilli()
	end := ms + d.Milliseconds()
	b := binary.AppendVarint(appendStr(appendStr(encodePromo(s.getBuf(), promoCooldown), visitor), rule), end)
	b = sealFrame(b)
	defer s.putBuf(b)
	s.mu.Lock()
	if v := s.st.promo.visitors[visitor]; v != nil {
		if cur, ok := v.cooldowns[rule]; ok && cur > ms {
			err := s.usableLocked()
			s.mu.Unlock()
			return false, time.UnixMilli(cur).UTC(), err
		}
	}
	seq, err := s.appendLocked(b)
	if err == nil {
		err = s.st.apply(b[frameHeader:], s.cfg.HistoryLimit)
	}
	s.mu.Unlock()
	if err != nil {
		return false, time.Time{}, fmt.Errorf("embedded: try rule cooldown: %w", err)
	}
	if err := s.syncTo(seq); err != nil {
		return false, time.Time{}, err
	}
	return true, time.UnixMilli(end).UTC(), nil
}

// ForgetPromoVisitor erases the visitor's promo state.
func (s *Store) ForgetPromoVisitor(ctx context.Context, visitor string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: forget promo visitor: %w", err)
	}
	s.mu.RLock()
	_, ok := s.st.promo.visitors[visitor]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	return s.writePromoRecord("forget promo visitor", appendStr(encodePromo(s.getBuf(), promoForget), visitor), true)
}

// AppendPromotion assigns the Seq under the write lock, then logs the
// promotion (fsynced by the sync policy).
func (s *Store) AppendPromotion(ctx context.Context, p promo.Promotion, keep int, ttl time.Duration) (promo.Promotion, error) {
	if err := ctx.Err(); err != nil {
		return promo.Promotion{}, fmt.Errorf("embedded: append promotion: %w", err)
	}
	if p.Visitor == "" || keep < 1 {
		return promo.Promotion{}, fmt.Errorf("embedded: append promotion: %w: visitor %q, keep %d", engine.ErrInvalid, p.Visitor, keep)
	}
	p.Created, p.Expires = p.Created.UTC().Truncate(time.Millisecond), p.Expires.UTC().Truncate(time.Millisecond)
	until := s.cfg.Now().Add(max(ttl, time.Second)).UnixMilli()
	s.mu.Lock()
	p.Seq = uint64(max(p.Created.UnixMicro(), 0))
	if v := s.st.promo.visitors[p.Visitor]; v != nil && len(v.log) > 0 {
		if last := v.log[len(v.log)-1].Seq; last+1 > p.Seq {
			p.Seq = last + 1
		}
	}
	p.ID = strconv.FormatUint(p.Seq, 10)
	b := appendStr(encodePromo(s.getBuf(), promoAppend), p.Visitor)
	b = binary.AppendVarint(binary.AppendUvarint(b, uint64(keep)), until)
	b = sealFrame(appendPromotion(b, &p))
	seq, err := s.appendLocked(b)
	if err == nil {
		err = s.st.apply(b[frameHeader:], s.cfg.HistoryLimit)
	}
	s.mu.Unlock()
	s.putBuf(b)
	if err != nil {
		return promo.Promotion{}, fmt.Errorf("embedded: append promotion: %w", err)
	}
	if err := s.syncTo(seq); err != nil {
		return promo.Promotion{}, err
	}
	return p, nil
}

// Promotions returns the visitor's logged promotions after a Seq (an
// expired log reads as empty).
func (s *Store) Promotions(ctx context.Context, visitor string, after uint64, limit int) ([]promo.Promotion, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: promotions: %w", err)
	}
	out := []promo.Promotion{}
	now := s.cfg.Now().UnixMilli()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	v := s.st.promo.visitors[visitor]
	if v == nil || v.logUntil <= now {
		return out, nil
	}
	for _, p := range v.log {
		if p.Seq > after && len(out) < limit {
			out = append(out, p)
		}
	}
	return out, nil
}

// PromoSecret returns the token secret, creating and logging a random one
// on first use.
func (s *Store) PromoSecret(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: promo secret: %w", err)
	}
	s.mu.RLock()
	sec, closed := s.st.promo.secret, s.closed
	s.mu.RUnlock()
	if closed {
		return nil, errClosed
	}
	if sec != nil {
		return slices.Clone(sec), nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("embedded: promo secret: %w", err)
	}
	b := sealFrame(append(encodePromo(s.getBuf(), promoSecretSet), fresh...))
	defer s.putBuf(b)
	s.mu.Lock()
	if sec = s.st.promo.secret; sec != nil { // another caller won
		s.mu.Unlock()
		return slices.Clone(sec), nil
	}
	seq, err := s.appendLocked(b)
	if err == nil {
		err = s.st.apply(b[frameHeader:], s.cfg.HistoryLimit)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("embedded: promo secret: %w", err)
	}
	if err := s.syncTo(seq); err != nil {
		return nil, err
	}
	return fresh, nil
}

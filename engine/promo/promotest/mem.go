package promotest

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
)

// Interface guard.
var _ promo.Store = (*Mem)(nil)

// Mem is an in-memory promo.Store: the reference implementation of the
// contract (it passes Run), for tests of code that uses a promo.Store.
// Times are kept at millisecond precision, as the real stores do.
type Mem struct {
	mu       sync.Mutex
	docs     map[promo.Kind]map[string][]byte
	version  int64
	stats    map[string]promo.OfferStats
	factors  map[string][]float32
	caps     map[[2]string]window
	cooldown map[[2]string]int64
	logs     map[string][]promo.Promotion
	secret   []byte
	err      error
}

type window struct {
	n   int
	end int64 // Unix ms
}

// NewMem returns an empty store.
func NewMem() *Mem {
	return &Mem{
		docs: map[promo.Kind]map[string][]byte{}, stats: map[string]promo.OfferStats{},
		factors: map[string][]float32{}, caps: map[[2]string]window{}, cooldown: map[[2]string]int64{},
		logs: map[string][]promo.Promotion{},
	}
}

// Fail makes every later call return err (nil: work again).
func (m *Mem) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

func (m *Mem) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.err
}

// PutPromoDoc implements promo.DocStore.
func (m *Mem) PutPromoDoc(ctx context.Context, kind promo.Kind, id string, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return err
	}
	if !kind.Valid() || id == "" {
		return fmt.Errorf("mem: put doc: %w: kind %q id %q", engine.ErrInvalid, kind, id)
	}
	if m.docs[kind] == nil {
		m.docs[kind] = map[string][]byte{}
	}
	m.docs[kind][id] = slices.Clone(doc)
	m.version++
	return nil
}

// DeletePromoDoc implements promo.DocStore.
func (m *Mem) DeletePromoDoc(ctx context.Context, kind promo.Kind, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return err
	}
	if _, ok := m.docs[kind][id]; !ok {
		return fmt.Errorf("mem: delete doc: %w", engine.ErrNotFound)
	}
	delete(m.docs[kind], id)
	m.version++
	return nil
}

// PromoDocs implements promo.DocStore.
func (m *Mem) PromoDocs(ctx context.Context, kind promo.Kind) ([]promo.Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := []promo.Doc{}
	for id, b := range m.docs[kind] {
		out = append(out, promo.Doc{ID: id, JSON: slices.Clone(b)})
	}
	slices.SortFunc(out, func(a, b promo.Doc) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

// PromoDocsVersion implements promo.DocStore.
func (m *Mem) PromoDocsVersion(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, m.check(ctx)
}

// AddOfferCounts implements promo.CounterStore.
func (m *Mem) AddOfferCounts(ctx context.Context, c promo.Counts) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return err
	}
	for id, d := range c.Stats {
		st := m.stats[id]
		st.Impressions += d.Impressions
		st.Clicks += d.Clicks
		st.Conversions += d.Conversions
		m.stats[id] = st
	}
	for id, d := range c.Factors {
		f := m.factors[id]
		if len(f) != len(d) {
			f = make([]float32, len(d))
		}
		for i, v := range d {
			f[i] += v
		}
		m.factors[id] = f
	}
	now := c.Now.UnixMilli()
	for _, inc := range c.Caps {
		k := [2]string{inc.Visitor, inc.Offer}
		w := m.caps[k]
		if w.end <= now {
			w = window{n: 1, end: now + inc.Period.Milliseconds()}
		} else {
			w.n++
		}
		m.caps[k] = w
	}
	return nil
}

// OfferCounts implements promo.CounterStore.
func (m *Mem) OfferCounts(ctx context.Context) (promo.OfferCounts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return promo.OfferCounts{}, err
	}
	oc := promo.OfferCounts{Stats: map[string]promo.OfferStats{}, Factors: map[string][]float32{}}
	for id, st := range m.stats {
		oc.Stats[id] = st
	}
	for id, f := range m.factors {
		oc.Factors[id] = slices.Clone(f)
	}
	return oc, nil
}

// OfferCaps implements promo.VisitorStateStore.
func (m *Mem) OfferCaps(ctx context.Context, visitor string, offers []string, now time.Time) ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := make([]int, len(offers))
	for i, o := range offers {
		if w := m.caps[[2]string{visitor, o}]; w.end > now.UnixMilli() {
			out[i] = w.n
		}
	}
	return out, nil
}

// TryRuleCooldown implements promo.VisitorStateStore.
func (m *Mem) TryRuleCooldown(ctx context.Context, visitor, rule string, now time.Time, d time.Duration) (bool, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return false, time.Time{}, err
	}
	k := [2]string{visitor, rule}
	ms := now.UnixMilli()
	if until, ok := m.cooldown[k]; ok && until > ms {
		return false, time.UnixMilli(until).UTC(), nil
	}
	until := ms + d.Milliseconds()
	m.cooldown[k] = until
	return true, time.UnixMilli(until).UTC(), nil
}

// ForgetPromoVisitor implements promo.VisitorStateStore.
func (m *Mem) ForgetPromoVisitor(ctx context.Context, visitor string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return err
	}
	for k := range m.caps {
		if k[0] == visitor {
			delete(m.caps, k)
		}
	}
	for k := range m.cooldown {
		if k[0] == visitor {
			delete(m.cooldown, k)
		}
	}
	delete(m.logs, visitor)
	return nil
}

// AppendPromotion implements promo.PromotionLog.
func (m *Mem) AppendPromotion(ctx context.Context, p promo.Promotion, keep int, ttl time.Duration) (promo.Promotion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return promo.Promotion{}, err
	}
	if p.Visitor == "" || keep < 1 {
		return promo.Promotion{}, fmt.Errorf("mem: append promotion: %w: visitor %q, keep %d", engine.ErrInvalid, p.Visitor, keep)
	}
	log := m.logs[p.Visitor]
	p.Seq = uint64(max(p.Created.UnixMicro(), 0))
	if n := len(log); n > 0 && log[n-1].Seq+1 > p.Seq {
		p.Seq = log[n-1].Seq + 1
	}
	p.ID = strconv.FormatUint(p.Seq, 10)
	p.Created, p.Expires = p.Created.UTC().Truncate(time.Millisecond), p.Expires.UTC().Truncate(time.Millisecond)
	log = append(log, p)
	if len(log) > keep {
		log = slices.Clone(log[len(log)-keep:])
	}
	m.logs[p.Visitor] = log
	return p, nil
}

// Promotions implements promo.PromotionLog.
func (m *Mem) Promotions(ctx context.Context, visitor string, after uint64, limit int) ([]promo.Promotion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	out := []promo.Promotion{}
	for _, p := range m.logs[visitor] {
		if p.Seq > after && len(out) < limit {
			out = append(out, p)
		}
	}
	return out, nil
}

// PromoSecret implements promo.SecretStore.
func (m *Mem) PromoSecret(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	if m.secret == nil {
		m.secret = make([]byte, 32)
		rand.Read(m.secret)
	}
	return slices.Clone(m.secret), nil
}

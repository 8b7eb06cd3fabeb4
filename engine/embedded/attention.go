package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/kairoshq/kairos/engine/attention"
)

// Interface guard.
var _ attention.Store = (*Store)(nil)

// attentionPruneEvery is how often AddDwell drops expired pages.
const attentionPruneEvery = time.Minute

// attentionState is the dwell of engine/attention per page. Pages are
// modified in place under the state lock; clone copies them.
type attentionState struct {
	now       func() time.Time // the store's clock: expiry at reads, pruning, snapshots
	pages     map[string]*attPage
	lastPrune int64 // Unix ms
}

// attPage is one page's dwell per element.
type attPage struct {
	els      map[string]int64
	expireAt int64 // Unix ms; 0: never
}

func (p *attPage) expired(nowMs int64) bool { return p.expireAt != 0 && p.expireAt <= nowMs }

func newAttentionState(now func() time.Time) *attentionState {
	return &attentionState{now: now, pages: map[string]*attPage{}}
}

func (as *attentionState) clone() *attentionState {
	c := &attentionState{now: as.now, pages: make(map[string]*attPage, len(as.pages)), lastPrune: as.lastPrune}
	for k, p := range as.pages {
		c.pages[k] = &attPage{els: maps.Clone(p.els), expireAt: p.expireAt}
	}
	return c
}

// An attention record (type 14, recAttention) is one AddDwell, or one
// page of a snapshot:
//
//	recAttention | varint now (Unix ms) | uvarint max elements | uvarint pages |
//	per page: page (uvarint length, bytes), varint expire_at (Unix ms, 0: never), uvarint elements,
//	per element: element (same), uvarint ms
//
// It carries the write's time so that replaying it decides expiry as the
// write did (a page expired at now starts again from zero).
func encodeAttention(b []byte, nowMs int64, w *attention.Write) []byte {
	b = append(b, recAttention)
	b = binary.AppendVarint(b, nowMs)
	b = binary.AppendUvarint(b, uint64(w.MaxElements))
	expire := int64(0)
	if !w.ExpireAt.IsZero() {
		expire = max(w.ExpireAt.UnixMilli(), 1)
	}
	pages := 0
	for i := range w.Deltas {
		if i == 0 || w.Deltas[i].Page != w.Deltas[i-1].Page {
			pages++
		}
	}
	b = binary.AppendUvarint(b, uint64(pages))
	for i := 0; i < len(w.Deltas); {
		j := i + 1
		for j < len(w.Deltas) && w.Deltas[j].Page == w.Deltas[i].Page {
			j++
		}
		b = appendStr(b, w.Deltas[i].Page)
		b = binary.AppendVarint(b, expire)
		b = binary.AppendUvarint(b, uint64(j-i))
		for _, d := range w.Deltas[i:j] {
			b = appendStr(b, d.Element)
			b = binary.AppendUvarint(b, uint64(d.Ms))
		}
		i = j
	}
	return b
}

// applyAttention applies one attention record.
func (st *state) applyAttention(r *reader) error {
	nowMs := r.varint()
	maxEl := r.uvarint()
	pages := r.count(3)
	as := st.dwell
	for range pages {
		page := r.str()
		expire := r.varint()
		n := r.count(2)
		if r.err != nil {
			return r.err
		}
		p := as.pages[page]
		if p == nil || p.expired(nowMs) {
			p = &attPage{els: map[string]int64{}}
			as.pages[page] = p
		}
		p.expireAt = expire
		for range n {
			el, ms := r.str(), r.uvarint()
			if r.err != nil {
				return r.err
			}
			if ms > math.MaxInt64/2 {
				return fmt.Errorf("%w: dwell %d ms", errCorruptRecord, ms)
			}
			if _, ok := p.els[el]; !ok && el != attention.OtherElement {
				kept := len(p.els)
				if _, ok := p.els[attention.OtherElement]; ok {
					kept--
				}
				if uint64(kept) >= maxEl {
					el = attention.OtherElement
				}
			}
			p.els[el] += int64(ms)
		}
	}
	return r.done()
}

// pruneAttention drops the pages expired at nowMs.
func (as *attentionState) prune(nowMs int64) {
	as.lastPrune = nowMs
	for k, p := range as.pages {
		if p.expired(nowMs) {
			delete(as.pages, k)
		}
	}
}

// writeAttention emits every page not expired by the store's clock as an
// attention record of its own (with no bound: the page is restored as
// it is).
func writeAttention(as *attentionState, emit func(func([]byte) []byte) error) error {
	nowMs := as.now().UnixMilli()
	for page, p := range as.pages {
		if p.expired(nowMs) || len(p.els) == 0 {
			continue
		}
		err := emit(func(b []byte) []byte {
			b = append(b, recAttention)
			b = binary.AppendVarint(b, 0)
			b = binary.AppendUvarint(b, uint64(len(p.els)+1))
			b = binary.AppendUvarint(b, 1)
			b = appendStr(b, page)
			b = binary.AppendVarint(b, p.expireAt)
			b = binary.AppendUvarint(b, uint64(len(p.els)))
			for el, ms := range p.els {
				b = appendStr(b, el)
				b = binary.AppendUvarint(b, uint64(ms))
			}
			return b
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// AddDwell adds the write as one log record (recAttention), applied in
// memory under the state lock, so readers see the whole call or none of
// it. Like AddCounts it does not wait for an fsync, whatever Config.Sync
// (derived data: the record has reached the operating system when it
// returns). Expired pages are dropped at most once a minute, by a write.
func (s *Store) AddDwell(ctx context.Context, w attention.Write) error {
	if err := w.Check(); err != nil {
		return fmt.Errorf("embedded: add dwell: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: add dwell: %w", err)
	}
	if len(w.Deltas) == 0 {
		return nil
	}
	nowMs := s.cfg.Now().UnixMilli()
	b := sealFrame(encodeAttention(s.getBuf(), nowMs, &w))
	defer s.putBuf(b)
	s.mu.Lock()
	_, err := s.appendLocked(b)
	if err == nil {
		r := reader{b: b[frameHeader+1:]}
		err = s.st.applyAttention(&r)
		if as := s.st.dwell; nowMs-as.lastPrune >= attentionPruneEvery.Milliseconds() {
			as.prune(nowMs)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: add dwell: %w", err)
	}
	return nil
}

// PageDwell returns the page's elements, none when the page expired by
// the store's clock (Config.Now).
func (s *Store) PageDwell(ctx context.Context, page string) ([]attention.ElementDwell, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: page dwell: %w", err)
	}
	nowMs := s.cfg.Now().UnixMilli()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	p := s.st.dwell.pages[page]
	if p == nil || p.expired(nowMs) {
		return []attention.ElementDwell{}, nil
	}
	out := make([]attention.ElementDwell, 0, len(p.els))
	for el, ms := range p.els {
		out = append(out, attention.ElementDwell{Element: el, Ms: ms})
	}
	return out, nil
}

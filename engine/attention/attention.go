package attention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/internal/batchwrite"
	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// OtherElement is the element under which a page's dwell on elements
// past Config.MaxElements is kept (it counts in the page's total, and is
// reported as Heat.OtherMs, never ranked).
const OtherElement = "(other)"

// Delta adds Ms of cursor dwell to one element of one page.
type Delta struct {
	// Page is a page key (PageKey).
	Page string
	// Element names the marked element: "item:42", "offer:o1" or a
	// data-kairos-element name.
	Element string
	// Ms is the dwell in milliseconds (> 0).
	Ms int64
}

// Write is one batch of deltas for Store.AddDwell.
type Write struct {
	Deltas []Delta
	// MaxElements bounds the distinct elements kept per page: the dwell
	// of a new element on a page that has that many already is added to
	// OtherElement instead (which does not count against the bound).
	MaxElements int
	// ExpireAt is set as the expiry of every page the write touches (zero:
	// never): a page without dwell for the TTL disappears.
	ExpireAt time.Time
}

// Check reports whether w is well formed, with an error wrapping
// engine.ErrInvalid that names the field.
func (w *Write) Check() error {
	if w.MaxElements < 1 {
		return fmt.Errorf("%w: max_elements: %d, want >= 1", engine.ErrInvalid, w.MaxElements)
	}
	for i := range w.Deltas {
		d := &w.Deltas[i]
		switch {
		case d.Page == "":
			return fmt.Errorf("%w: deltas[%d].page: empty", engine.ErrInvalid, i)
		case d.Element == "":
			return fmt.Errorf("%w: deltas[%d].element: empty", engine.ErrInvalid, i)
		case d.Ms <= 0:
			return fmt.Errorf("%w: deltas[%d].ms: %d, want > 0", engine.ErrInvalid, i, d.Ms)
		}
	}
	return nil
}

// ElementDwell is the total dwell of one element of a page.
type ElementDwell struct {
	Element string
	Ms      int64
}

// Store keeps the dwell per (page, element): engine/redisstore and
// engine/embedded implement it and pass the suite of
// engine/attention/attentiontest.
type Store interface {
	// AddDwell adds every delta of w to its (page, element) counter,
	// bounding each page's elements by w.MaxElements (see Write), and
	// sets the expiry of the touched pages. A malformed write (Check)
	// fails with engine.ErrInvalid and nothing is added. The deltas of
	// one call are applied together: a reader sees all or none of them.
	AddDwell(ctx context.Context, w Write) error
	// PageDwell returns every element's total on page (OtherElement
	// included when it has dwell), in any order; an unknown or expired
	// page gives an empty slice, not an error.
	PageDwell(ctx context.Context, page string) ([]ElementDwell, error)
}

// PageKey normalises a page URL into the key its dwell is kept under:
// scheme and host lower-cased, the default port (80 for http, 443 for
// https) dropped, the path as sent (escaped; "/" when empty), and no
// user info, query or fragment. So "https://Shop.example:443/p/42?utm_source=x#top"
// is "https://shop.example/p/42". A path-only URL ("/p/42", as a server
// may send) keeps only its path. It returns "" for what is not a page URL
// (empty, relative without a leading slash, opaque such as mailto:, or
// unparsable).
func PageKey(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return ""
	}
	path := u.EscapedPath()
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(path, "/") {
			return ""
		}
		return path
	}
	if u.Scheme == "" || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port := u.Port(); port != "" && !(scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host += ":" + port
	}
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// ElementOf returns the element an event's dwell is counted for: its
// Element, else "offer:<offer>" or "item:<item>" (what the tracker sends
// for marked elements), else "".
func ElementOf(ev *signals.Event) string {
	switch {
	case ev.Element != "":
		return ev.Element
	case ev.Offer != "":
		return "offer:" + ev.Offer
	case ev.Item != "":
		return "item:" + ev.Item
	}
	return ""
}

// ParseElement returns the item or offer id named by an element of the
// forms "item:<id>" and "offer:<id>" (both "" for other names).
func ParseElement(el string) (item, offer string) {
	if id, ok := strings.CutPrefix(el, "item:"); ok {
		return id, ""
	}
	if id, ok := strings.CutPrefix(el, "offer:"); ok {
		return "", id
	}
	return "", ""
}

// Heat is the attention heat of one page: each marked element's share of
// the page's cursor dwell, ranked.
type Heat struct {
	// Page is the page key.
	Page string `json:"page"`
	// TotalMs is the page's whole dwell, OtherMs included.
	TotalMs int64 `json:"total_ms"`
	// OtherMs is the dwell of elements past Config.MaxElements.
	OtherMs int64 `json:"other_ms,omitempty"`
	// Elements are the ranked elements, most dwelt on first, at most the
	// n asked for.
	Elements []ElementHeat `json:"elements"`
	// Count is the number of elements ranked (before the cut at n).
	Count int `json:"count"`
}

// ElementHeat is one element's attention.
type ElementHeat struct {
	Element string `json:"element"`
	// Item or Offer is the id named by an "item:"/"offer:" element.
	Item    string `json:"item,omitempty"`
	Offer   string `json:"offer,omitempty"`
	DwellMs int64  `json:"dwell_ms"`
	// Share is DwellMs / TotalMs, rounded to 4 decimals (0.0673 is
	// "6.73 %").
	Share float64 `json:"share"`
	// Rank is 1 for the most dwelt-on element; equal dwell, equal rank
	// (competition ranking: 1, 2, 2, 4).
	Rank int `json:"rank"`
}

// Defaults of Config.
const (
	DefaultMaxElements  = 1000
	DefaultTTL          = 90 * 24 * time.Hour
	DefaultWriteTimeout = 5 * time.Second
	DefaultMaxResults   = 1000
)

// Config configures Attention. Zero fields take their defaults.
type Config struct {
	// MaxElements bounds the distinct elements kept per page (default
	// 1,000); the dwell of further ones goes to OtherElement. It keeps a
	// page's counters bounded whatever element names clients send.
	MaxElements int
	// TTL is how long a page's counters live after its last dwell
	// (default 90 days; negative: forever). It bounds the number of pages
	// kept to those dwelt on recently.
	TTL time.Duration
	// MaxResults bounds the n of a Heat call (default 1,000).
	MaxResults int
	// WriteTimeout bounds the store write of one batch (default 5 s). It
	// runs even when the batch's context is cancelled (a shutdown
	// finishing its last batch).
	WriteTimeout time.Duration
	// FlushEvery, when positive, adds the dwell of this period's batches
	// together and writes it in one call per page, off the consuming
	// goroutine (and before every Heat, and at Flush), as stats.Config's
	// does for the counters; zero writes each batch's dwell in React.
	FlushEvery time.Duration
	// Logger receives write failures (nil: discard).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock of the expiries (nil: time.Now).
	Now func() time.Time
}

// Defaults returns a copy of c with every zero field set to its default.
func (c Config) Defaults() Config {
	defaults.Set(&c.MaxElements, DefaultMaxElements)
	defaults.Set(&c.TTL, DefaultTTL)
	defaults.Set(&c.MaxResults, DefaultMaxResults)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
	c.Logger = defaults.Logger(c.Logger)
	c.Now = defaults.Clock(c.Now)
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxElements < 1 {
		errs = append(errs, fmt.Errorf("attention config: MaxElements %d: want >= 1", c.MaxElements))
	}
	if c.MaxResults < 1 {
		errs = append(errs, fmt.Errorf("attention config: MaxResults %d: want >= 1", c.MaxResults))
	}
	if c.TTL > 0 && c.TTL < time.Second {
		errs = append(errs, fmt.Errorf("attention config: TTL %v: want >= 1s (or negative: forever)", c.TTL))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("attention config: WriteTimeout %v: want > 0", c.WriteTimeout))
	}
	if c.FlushEvery < 0 {
		errs = append(errs, fmt.Errorf("attention config: FlushEvery %v: want >= 0", c.FlushEvery))
	}
	return errors.Join(errs...)
}

// Attention counts cursor dwell per page and element (it is an
// engine.Reactor) and answers heat queries. It is safe for concurrent
// use.
type Attention struct {
	cfg   Config
	store Store
	out   *batchwrite.Writer

	mu     sync.Mutex // guards agg and deltas (React calls are serialised by the engine, but need not be)
	agg    map[pageElement]int64
	deltas []Delta
}

type pageElement struct{ page, element string }

// Interface guards.
var (
	_ engine.Reactor = (*Attention)(nil)
	_ engine.Flusher = (*Attention)(nil)
)

// New returns Attention over store, configured by cfg (after Defaults and
// Validate).
func New(store Store, cfg Config) (*Attention, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("attention: store is nil")
	}
	return &Attention{cfg: cfg, store: store, out: newWriter(cfg), agg: map[pageElement]int64{}}, nil
}

// React adds the dwell events of a committed batch: per (PageKey of the
// event's page, ElementOf the event), the sum of the dwell values in ms
// (rounded), written with one AddDwell call — or, with Config.FlushEvery,
// together with the other batches of the period, later. Dwell events without a page
// URL, without an element or with no dwell are skipped
// (kairos_attention_skipped_total). A failed write is logged and counted
// (kairos_attention_write_errors_total) and the batch's dwell is lost: a
// Reactor cannot fail the batch.
func (a *Attention) React(ctx context.Context, changes []engine.VisitorChange) {
	a.mu.Lock()
	if a.out.Coalescing() {
		a.add(changes)
		if len(a.agg) > 0 {
			a.out.Hold(func() { a.Flush(context.Background()) })
		}
		a.mu.Unlock()
		return
	}
	defer a.mu.Unlock()
	clear(a.agg)
	a.add(changes)
	if w, ok := a.takeWrite(); ok {
		a.out.Write(ctx, len(w.Deltas), func(ctx context.Context) error { return a.store.AddDwell(ctx, w) })
	}
}

// add sums the dwell events of changes into agg (a.mu held).
func (a *Attention) add(changes []engine.VisitorChange) {
	skipped := 0
	var lastRaw, lastPage string // a visitor's dwells are mostly on one page
	for ci := range changes {
		fresh := changes[ci].Fresh
		for ei := range fresh {
			ev := &fresh[ei]
			if ev.Type != signals.TypeDwell {
				continue
			}
			ms := int64(math.Round(ev.Value))
			if ev.Page != lastRaw || lastPage == "" {
				lastRaw, lastPage = ev.Page, PageKey(ev.Page)
			}
			page, el := lastPage, ElementOf(ev)
			if ms <= 0 || page == "" || el == "" {
				skipped++
				continue
			}
			a.agg[pageElement{page, el}] += ms
		}
	}
	a.out.Skip(skipped)
}

// takeWrite turns agg into the store write (a.mu held; the write's
// deltas are a.deltas, valid until the next takeWrite); false when there
// is nothing to write.
func (a *Attention) takeWrite() (Write, bool) {
	if len(a.agg) == 0 {
		return Write{}, false
	}
	a.deltas = a.deltas[:0]
	for k, ms := range a.agg {
		a.deltas = append(a.deltas, Delta{Page: k.page, Element: k.element, Ms: ms})
	}
	// Pages together (the Redis adapter sends one script per page).
	slices.SortFunc(a.deltas, func(x, y Delta) int {
		return cmp.Or(strings.Compare(x.Page, y.Page), strings.Compare(x.Element, y.Element))
	})
	w := Write{Deltas: a.deltas, MaxElements: a.cfg.MaxElements}
	if a.cfg.TTL > 0 {
		w.ExpireAt = a.cfg.Now().Add(a.cfg.TTL)
	}
	return w, true
}

// Flush writes the dwell held back by Config.FlushEvery now, and returns
// once it is written (or its write failed: logged and counted); it does
// nothing without FlushEvery. Heat flushes first; the engine flushes
// when it stops.
func (a *Attention) Flush(ctx context.Context) {
	a.out.Flush(ctx, &a.mu, func() (int, func(context.Context) error) {
		w, _ := a.takeWrite()
		w.Deltas = slices.Clone(w.Deltas)
		clear(a.agg)
		return len(w.Deltas), func(ctx context.Context) error { return a.store.AddDwell(ctx, w) }
	})
}

// Heat returns the attention heat of the page of pageURL (normalised by
// PageKey): its total dwell and up to n elements, most dwelt on first
// (ties by element name). An unknown page has no elements and a zero
// total. Errors wrapping engine.ErrInvalid name the parameter: a page
// that is not a page URL, n outside [1, Config.MaxResults].
func (a *Attention) Heat(ctx context.Context, pageURL string, n int) (Heat, error) {
	page := PageKey(pageURL)
	if page == "" {
		return Heat{}, fmt.Errorf("attention: heat: %w: page: %q is not an absolute http(s) URL or a path", engine.ErrInvalid, shorten(pageURL, 100))
	}
	if n < 1 || n > a.cfg.MaxResults {
		return Heat{}, fmt.Errorf("attention: heat: %w: n: %d is not in [1, %d]", engine.ErrInvalid, n, a.cfg.MaxResults)
	}
	a.Flush(ctx)
	els, err := a.store.PageDwell(ctx, page)
	if err != nil {
		return Heat{}, fmt.Errorf("attention: heat: %w", err)
	}
	return rank(page, els, n), nil
}

// MaxResults returns the largest n of a Heat call.
func (a *Attention) MaxResults() int { return a.cfg.MaxResults }

// rank computes the heat of page from its elements' totals.
func rank(page string, els []ElementDwell, n int) Heat {
	h := Heat{Page: page, Elements: []ElementHeat{}}
	ranked := make([]ElementDwell, 0, len(els))
	for _, e := range els {
		if e.Ms <= 0 {
			continue
		}
		h.TotalMs += e.Ms
		if e.Element == OtherElement {
			h.OtherMs += e.Ms
			continue
		}
		ranked = append(ranked, e)
	}
	slices.SortFunc(ranked, func(x, y ElementDwell) int {
		return cmp.Or(cmp.Compare(y.Ms, x.Ms), strings.Compare(x.Element, y.Element))
	})
	h.Count = len(ranked)
	r := 0
	for i, e := range ranked[:min(n, len(ranked))] {
		if i == 0 || e.Ms != ranked[i-1].Ms {
			r = i + 1
		}
		eh := ElementHeat{Element: e.Element, DwellMs: e.Ms, Rank: r,
			Share: math.Round(float64(e.Ms)/float64(h.TotalMs)*1e4) / 1e4}
		eh.Item, eh.Offer = ParseElement(e.Element)
		h.Elements = append(h.Elements, eh)
	}
	return h
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// newWriter returns the batch writer of Attention and its instruments.
func newWriter(cfg Config) *batchwrite.Writer {
	return batchwrite.New(batchwrite.Config{
		Timeout:    cfg.WriteTimeout,
		Logger:     cfg.Logger.With("component", "attention"),
		Failed:     "dwell not written",
		Deltas:     prometheus.CounterOpts{Name: "kairos_attention_deltas_total", Help: "Dwell increments written (one per page and element of a batch)."},
		Errors:     prometheus.CounterOpts{Name: "kairos_attention_write_errors_total", Help: "Batches whose dwell could not be written (their dwell is lost)."},
		Skipped:    prometheus.CounterOpts{Name: "kairos_attention_skipped_total", Help: "Dwell events not counted: no page URL, no element or no dwell."},
		Write:      prometheus.HistogramOpts{Name: "kairos_attention_write_seconds", Help: "Time to write one batch's dwell to the store.", Buckets: prometheus.ExponentialBuckets(5e-5, 2, 14)},
		Registerer: cfg.Registerer,
		FlushEvery: cfg.FlushEvery,
	})
}

package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/kairoshq/kairos/api/client"
)

// offerDef is an offer the demo creates (PUT /v1/offers/{id}).
type offerDef struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Body       string   `json:"body"`
	Image      string   `json:"image,omitempty"`
	Link       string   `json:"link,omitempty"`
	Items      []string `json:"items,omitempty"`
	Categories []string `json:"categories,omitempty"`
	Slot       string   `json:"slot"`
	Active     bool     `json:"active"`
}

// offers are the demo's offers: one per category for the hero slot, and
// an exit offer. Image and link are made absolute with the shop's origin
// (the promo engine wants absolute http(s) URLs; the page rewrites links
// to its own origin).
func (s *Shop) offers() []offerDef {
	o := s.cfg.Origin
	first := func(cat string) []string {
		ps := s.cat.InCategory(cat)
		return []string{ps[0].ID, ps[1].ID}
	}
	mk := func(id, title, body, cat string) offerDef {
		return offerDef{ID: id, Title: title, Body: body, Image: o + "/shop/img/banner-" + cat + ".svg", Link: o + "/shop/c/" + cat,
			Items: first(cat), Categories: []string{cat}, Slot: "hero", Active: true}
	}
	return []offerDef{
		mk("sneaker-week", "Sneaker week: −20 % on runners", "Your next pair is lighter than you think. Today only.", "sneakers"),
		mk("carry-more", "Bags: free monogram", "Make it yours: initials stitched for free on every bag.", "bags"),
		mk("time-well-spent", "Watches: a second strap on us", "Pick any watch, choose a second strap free.", "watches"),
		mk("sound-bundle", "Headphones + case, −15 %", "Noise off, music on: the bundle for your commute.", "audio"),
		mk("warm-light", "Lighting: free delivery", "Lamps delivered free this week, bulbs included.", "lighting"),
		mk("barista-set", "Coffee kit −25 %", "Kettle, dripper and mugs: brew like a pro.", "kitchen"),
		{ID: "stay-10", Title: "Leaving already? 10 % off", Body: "Use code STAY10 at checkout, valid for 24 hours.", Link: o + "/", Slot: "exit", Active: true},
	}
}

// Rules of the demo (PUT /v1/rules/{id}). hero-interest is the one a
// visitor meets first: 2 s of cursor dwell on products and two clicks in
// the last 10 minutes show the best hero offer for this visitor (ranked
// by the live model: what they looked at decides which).
var demoRules = []map[string]any{
	{"id": "hero-interest", "name": "Dwell 2 s and 2 clicks: best hero offer", "priority": 10, "cooldown": "5m",
		"when": map[string]any{"all": []any{
			map[string]any{"dwell": map[string]any{"min_ms": 2000, "within": "10m"}},
			map[string]any{"count": map[string]any{"type": "click", "min": 2, "within": "10m"}},
		}},
		"then": map[string]any{"slot": "hero", "campaign": "autumn"}},
	{"id": "exit-intent", "name": "Exit intent: 10 % off", "priority": 20, "cooldown": "10m",
		"when": map[string]any{"exit": map[string]any{}},
		"then": map[string]any{"offer": "stay-10"}},
	{"id": "audio-fan", "name": "Three audio products and a scroll down in a session", "priority": 5, "cooldown": "30m",
		"when": map[string]any{"all": []any{
			map[string]any{"count": map[string]any{"type": "view", "category": "audio", "min": 3}},
			map[string]any{"scroll": map[string]any{"min": 50}},
		}},
		"then": map[string]any{"offer": "sound-bundle"}},
}

// Seed puts the demo's catalog, offers, campaign and rules through the API
// (idempotent PUTs), and — when the catalog was not there yet — posts the
// background traffic: Config.Visitors generated visitors with category
// affinities browsing over the last two days, so that trending and the
// model have something to say from the first page. It blocks until done.
func (s *Shop) Seed(ctx context.Context) error {
	start := time.Now()
	fresh := false
	if _, err := s.api.GetItem(ctx, s.cat.Products[0].ID); err != nil {
		if !client.IsNotFound(err) {
			return fmt.Errorf("demo: seed: %w", err)
		}
		fresh = true
	}
	for i := range s.cat.Products {
		if _, _, err := s.api.PutItem(ctx, s.cat.Products[i].item()); err != nil {
			return fmt.Errorf("demo: seed item: %w", err)
		}
	}
	offers := s.offers()
	for _, o := range offers {
		if _, err := s.api.PutDefinition(ctx, "offers", o.ID, o, nil); err != nil {
			return fmt.Errorf("demo: seed offer: %w", err)
		}
	}
	var heroes []string
	for _, o := range offers {
		if o.Slot == "hero" {
			heroes = append(heroes, o.ID)
		}
	}
	campaign := map[string]any{"id": "autumn", "name": "Autumn sale", "offers": heroes, "priority": 5, "active": true}
	if _, err := s.api.PutDefinition(ctx, "campaigns", "autumn", campaign, nil); err != nil {
		return fmt.Errorf("demo: seed campaign: %w", err)
	}
	for _, r := range demoRules {
		if _, err := s.api.PutDefinition(ctx, "rules", r["id"].(string), r, nil); err != nil {
			return fmt.Errorf("demo: seed rule: %w", err)
		}
	}
	events := 0
	if fresh {
		evs := s.traffic(s.cfg.Now())
		batch := make([]client.Event, len(evs))
		for i, e := range evs {
			batch[i] = client.Event{ID: e.ID, Type: e.Type, Visitor: e.Visitor, Item: e.Item, Time: time.UnixMilli(e.TS),
				Value: e.Value, Page: e.Page, Element: e.Element, Session: e.Session}
		}
		res, err := s.api.SendEvents(ctx, batch) // in batches of 500
		if err != nil {
			return fmt.Errorf("demo: seed traffic: %w", err)
		}
		if len(res.Rejected) > 0 {
			return fmt.Errorf("demo: seed traffic: %d events rejected, the first: %+v", len(res.Rejected), res.Rejected[0])
		}
		events = len(evs)
	}
	s.seeded.Store(true)
	s.log.LogAttrs(ctx, slog.LevelInfo, "demo shop seeded", slog.Int("products", len(s.cat.Products)), slog.Int("offers", len(offers)),
		slog.Int("rules", len(demoRules)), slog.Int("events", events), slog.Duration("took", time.Since(start)))
	return nil
}

// event is a background event as posted to /v1/events.
type event struct {
	ID      string  `json:"id"`
	Type    string  `json:"type"`
	Visitor string  `json:"visitor"`
	Item    string  `json:"item,omitempty"`
	TS      int64   `json:"ts"`
	Value   float64 `json:"value,omitempty"`
	Page    string  `json:"page,omitempty"`
	Element string  `json:"element,omitempty"`
	Session string  `json:"session,omitempty"`
}

// traffic generates the background visitors' events, deterministically
// from Config.Seed: each visitor likes one or two categories (80 % of
// their views), prefers the popular products of a category (Zipf-like),
// clicks about a third of what they view, sometimes likes or adds to the
// cart, and rests the cursor on a product now and then (dwell under the
// 2 s of the demo's hero rule: background visitors fire no promotion).
// Ids are deterministic, so a repeated seed is de-duplicated.
func (s *Shop) traffic(now time.Time) []event {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 0x74726166)) // "traf"
	cats := s.cat.Categories
	var evs []event
	for v := range s.cfg.Visitors {
		visitor := fmt.Sprintf("demo-bg-%03d", v)
		fav := []int{rng.IntN(len(cats))}
		if rng.Float64() < 0.4 {
			fav = append(fav, rng.IntN(len(cats)))
		}
		t := now.Add(-time.Duration(rng.Int64N(int64(47 * time.Hour)))).Add(-30 * time.Minute)
		n := 6 + rng.IntN(18)
		dwells := 0
		for j := range n {
			c := fav[rng.IntN(len(fav))]
			if rng.Float64() < 0.2 {
				c = rng.IntN(len(cats))
			}
			ps := s.cat.InCategory(cats[c].ID)
			// Zipf-like popularity within the category.
			k := int(math.Floor(float64(len(ps)) * math.Pow(rng.Float64(), 2.2)))
			p := ps[min(k, len(ps)-1)]
			t = t.Add(time.Duration(5+rng.IntN(90)) * time.Second)
			page := s.cfg.Origin + "/shop/p/" + p.ID
			id := fmt.Sprintf("%s-%02d", visitor, j)
			sess := visitor + "-s"
			evs = append(evs, event{ID: id + "v", Type: "view", Visitor: visitor, Item: p.ID, TS: t.UnixMilli(), Page: page, Session: sess})
			if dwells < 2 && rng.Float64() < 0.3 {
				dwells++
				evs = append(evs, event{ID: id + "d", Type: "dwell", Visitor: visitor, Item: p.ID, TS: t.Add(2 * time.Second).UnixMilli(),
					Value: float64(300 + rng.IntN(600)), Page: page, Element: "item:" + p.ID, Session: sess})
			}
			r := rng.Float64()
			switch {
			case r < 0.30:
				evs = append(evs, event{ID: id + "c", Type: "click", Visitor: visitor, Item: p.ID, TS: t.Add(3 * time.Second).UnixMilli(), Page: page, Element: "item:" + p.ID, Session: sess})
			case r < 0.36:
				evs = append(evs, event{ID: id + "l", Type: "like", Visitor: visitor, Item: p.ID, TS: t.Add(4 * time.Second).UnixMilli(), Page: page, Session: sess})
			case r < 0.41:
				evs = append(evs, event{ID: id + "a", Type: "add_to_cart", Visitor: visitor, Item: p.ID, TS: t.Add(5 * time.Second).UnixMilli(), Page: page, Session: sess})
			}
		}
	}
	return evs
}

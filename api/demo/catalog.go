package demo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/kairoshq/kairos/api/client"
)

// Category is a department of the demo shop.
type Category struct {
	ID    string // e.g. "audio"
	Name  string // e.g. "Audio"
	Blurb string
	code  string // prefix of its product ids
	hue   int    // base hue of its images
}

// Product is one generated catalog entry.
type Product struct {
	ID          string
	Title       string
	Category    string // Category.ID
	PriceCents  int
	Color       string // color name
	Material    string
	Description string
	Rating      float64 // 3.6 .. 5.0
	Reviews     int
	hue         int // image hue
	shape       int // image variant
}

// Price formats the price, e.g. "€89.00".
func (p *Product) Price() string {
	return fmt.Sprintf("€%d.%02d", p.PriceCents/100, p.PriceCents%100)
}

// Catalog is the generated catalog: categories and their products.
type Catalog struct {
	Categories []Category
	Products   []Product // by category, then id
	byID       map[string]int
}

// Product returns the product with id.
func (c *Catalog) Product(id string) (*Product, bool) {
	i, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	return &c.Products[i], true
}

// Category returns the category with id.
func (c *Catalog) Category(id string) (*Category, bool) {
	for i := range c.Categories {
		if c.Categories[i].ID == id {
			return &c.Categories[i], true
		}
	}
	return nil, false
}

// InCategory returns the products of a category.
func (c *Catalog) InCategory(id string) []*Product {
	var out []*Product
	for i := range c.Products {
		if c.Products[i].Category == id {
			out = append(out, &c.Products[i])
		}
	}
	return out
}

// vocabulary of one category's generated titles.
type vocabulary struct {
	cat                Category
	lines, models      []string
	materials          []string
	minPrice, maxPrice int // euros
	pitch              []string
	shapes             map[string]int // model → image shape (else random)
}

var colors = []string{"Graphite", "Sand", "Teal", "Coral", "Ivory", "Navy", "Olive", "Crimson", "Slate", "Amber", "Sage", "Plum"}

var vocabularies = []vocabulary{
	{cat: Category{ID: "sneakers", Name: "Sneakers", Blurb: "Light, grippy, made for city miles.", code: "snk", hue: 14},
		lines: []string{"Aero", "Metro", "Drift", "Pulse", "Nimbus", "Vega", "Trail", "Flux"}, models: []string{"Runner", "Trainer", "Low", "Racer", "Court", "Hiker"},
		materials: []string{"knit", "suede", "mesh", "leather", "canvas"}, minPrice: 59, maxPrice: 189,
		pitch: []string{"A cushioned foam sole that springs back mile after mile.", "Breathable upper, reinforced heel, laces that stay tied.", "Grippy rubber outsole for wet pavements and gravel paths."}},
	{cat: Category{ID: "bags", Name: "Bags", Blurb: "Everyday carry, from laptop to weekend.", code: "bag", hue: 32},
		lines: []string{"Transit", "Atlas", "Nomad", "Harbor", "Field", "Loop", "Canyon", "Orbit"}, models: []string{"Backpack", "Tote", "Duffel", "Sling", "Messenger", "Roll-top"},
		materials: []string{"waxed canvas", "recycled nylon", "full-grain leather", "ripstop"}, minPrice: 39, maxPrice: 249,
		pitch: []string{"A padded sleeve fits a 16\" laptop; quick pockets for the rest.", "Water-resistant, with a lifetime warranty on zips and seams.", "Packs flat, carries heavy: load-lifting straps and a chest strap."}},
	{cat: Category{ID: "watches", Name: "Watches", Blurb: "Clean dials, sapphire glass, no fuss.", code: "wat", hue: 210},
		lines: []string{"Meridian", "Tide", "Polar", "Zenith", "Orion", "Fjord", "Quartz", "Kepler"}, models: []string{"Field 38", "Diver 42", "Dress 36", "Chrono 40", "GMT 41"},
		materials: []string{"steel", "titanium", "bronze", "ceramic"}, minPrice: 129, maxPrice: 690,
		pitch: []string{"Sapphire crystal, 100 m water resistance, a strap for every day.", "A Swiss movement behind a dial you can read at a glance.", "Lume that glows all night; quick-release straps."}},
	{cat: Category{ID: "audio", Name: "Audio", Blurb: "Sound that keeps up with you.", code: "aud", hue: 265},
		lines: []string{"Echo", "Hush", "Tempo", "Basso", "Aria", "Nova", "Wave", "Studio"}, models: []string{"Over-ear", "Studio Cans", "Headphones", "Speaker", "Boombox", "Mini Speaker"},
		shapes:    map[string]int{"Over-ear": 0, "Studio Cans": 1, "Headphones": 0, "Speaker": 2, "Boombox": 2, "Mini Speaker": 2},
		materials: []string{"aluminium", "matte polymer", "walnut", "fabric"}, minPrice: 49, maxPrice: 399,
		pitch: []string{"Active noise cancelling and 30 hours of battery.", "Rich bass, clear calls, and a case that charges in 15 minutes.", "Pairs with two devices at once; tuned by ear, not by chart."}},
	{cat: Category{ID: "lighting", Name: "Lighting", Blurb: "Warm light for every corner.", code: "lmp", hue: 45},
		lines: []string{"Halo", "Lumen", "Dune", "Glow", "Arc", "Beacon", "Ember", "Pebble"}, models: []string{"Desk Lamp", "Floor Lamp", "Pendant", "Task Light", "Reading Lamp"},
		shapes:    map[string]int{"Desk Lamp": 0, "Floor Lamp": 2, "Pendant": 1, "Task Light": 0, "Reading Lamp": 2},
		materials: []string{"brass", "opal glass", "oak", "powder-coated steel", "linen"}, minPrice: 45, maxPrice: 320,
		pitch: []string{"Dimmable warm-white LED, 2700 K, flicker-free.", "A weighted base and an arm that stays where you put it.", "Hand-blown glass shade that softens every shadow."}},
	{cat: Category{ID: "kitchen", Name: "Kitchen", Blurb: "Tools that make good coffee and better dinners.", code: "kit", hue: 150},
		lines: []string{"Barista", "Hearth", "Copper", "Mill", "Pantry", "Kettle", "Rye", "Salt"}, models: []string{"Pour-over", "Kettle", "Dripper", "Mug Set", "Tea Kettle", "Mug"},
		shapes:    map[string]int{"Pour-over": 2, "Kettle": 1, "Dripper": 2, "Mug Set": 0, "Tea Kettle": 1, "Mug": 0},
		materials: []string{"stoneware", "cast iron", "stainless steel", "borosilicate glass"}, minPrice: 19, maxPrice: 229,
		pitch: []string{"Built to last a lifetime and look good doing it.", "Even heat, a comfortable grip, dishwasher safe.", "Precise to the gram: brew the cup you actually like."}},
}

// PerCategory is the number of products generated per category.
const PerCategory = 10

// NewCatalog generates the catalog deterministically from seed: six
// categories of PerCategory products with titles, prices, colors,
// materials, ratings and descriptions.
func NewCatalog(seed uint64) *Catalog {
	rng := rand.New(rand.NewPCG(seed, 0x6b616972)) // "kair"
	c := &Catalog{byID: map[string]int{}}
	for _, v := range vocabularies {
		c.Categories = append(c.Categories, v.cat)
		seen := map[string]bool{}
		for i := range PerCategory {
			var title, model string
			for {
				model = v.models[rng.IntN(len(v.models))]
				title = v.lines[rng.IntN(len(v.lines))] + " " + model
				if !seen[title] {
					seen[title] = true
					break
				}
			}
			color := colors[rng.IntN(len(colors))]
			mat := v.materials[rng.IntN(len(v.materials))]
			euros := v.minPrice + rng.IntN(v.maxPrice-v.minPrice+1)
			cents := []int{0, 0, 50, 90, 95, 99}[rng.IntN(6)]
			p := Product{
				ID:         v.cat.code + "-" + fmt.Sprintf("%02d", i+1),
				Title:      title,
				Category:   v.cat.ID,
				PriceCents: euros*100 + cents,
				Color:      color,
				Material:   mat,
				Rating:     float64(36+rng.IntN(15)) / 10,
				Reviews:    3 + rng.IntN(480),
				hue:        (v.cat.hue + rng.IntN(50) - 25 + 360) % 360,
				shape:      rng.IntN(3),
			}
			if sh, ok := v.shapes[model]; ok {
				p.shape = sh
			}
			p.Description = fmt.Sprintf("The %s in %s %s. %s %s", title, strings.ToLower(color), mat, v.pitch[rng.IntN(len(v.pitch))],
				"Free returns within 30 days.")
			c.byID[p.ID] = len(c.Products)
			c.Products = append(c.Products, p)
		}
	}
	return c
}

// item is the catalog item the shop PUTs to /v1/items/{id}.
func (p *Product) item() client.Item {
	return client.Item{
		ID: p.ID, Title: p.Title, Category: p.Category, Active: client.Bool(true),
		Tags: slices.Compact([]string{strings.ToLower(p.Color), p.Material}),
		Attributes: map[string]string{
			"price": strconv.FormatFloat(float64(p.PriceCents)/100, 'f', 2, 64), "currency": "EUR",
			"color": p.Color, "material": p.Material, "image": "/shop/img/" + p.ID + ".svg",
		},
	}
}

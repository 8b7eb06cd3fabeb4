package demo

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kairoshq/kairos/api/client"
	"github.com/kairoshq/kairos/internal/defaults"
)

//go:embed templates/*.html static/*
var files embed.FS

// Defaults of Config.
const (
	DefaultSeed     = 1
	DefaultVisitors = 300
)

// Config configures a Shop.
type Config struct {
	// SecretKey is the key the shop's back end calls the API with (never
	// sent to the browser); PublishableKey is the tracker's (in the page).
	SecretKey, PublishableKey string
	// Origin is the shop's absolute origin as browsers reach it, e.g.
	// "http://127.0.0.1:8080": the offers' images and links are made
	// absolute with it (the page rewrites links to its own origin).
	Origin string
	// Seed makes the catalog and the background traffic (default 1).
	Seed uint64
	// Visitors is the number of background visitors Seed generates
	// (default 300; negative: none).
	Visitors int
	// VisitorKey signs the visitor ids the shop mints (the kairos_vid
	// cookie and its HttpOnly signature kairos_demo_vsig): the
	// recommendation proxy asks Kairos only about signed ids, so a cookie
	// cannot name another visitor, nor a user. nil: derived from
	// SecretKey. Keep it stable across restarts (kairos serve passes the
	// site's secret key) or visitors start over.
	VisitorKey []byte
	// ClientRate bounds the shop's calls to the API made for one client
	// (default 10/s, burst 40), TotalRate those of the whole shop
	// (default 200/s, burst 400). Beyond, a page is rendered without what
	// it would have asked (trending, similar items) and the
	// recommendation proxy answers 429 with Retry-After.
	ClientRate, TotalRate Rate
	// ClientIP returns a request's client address, which keys ClientRate
	// (nil: the peer address; kairos serve passes api.ClientIP, which
	// honours its trusted proxies).
	ClientIP func(*http.Request) string
	// Logger receives the seed's summary and page errors (nil: discard).
	Logger *slog.Logger
	// Now is the clock of the background traffic (nil: time.Now).
	Now func() time.Time
}

// Shop is the demo shop: an http.Handler for GET / and GET /shop/*, and
// Seed. Create it with New, give it the API's handler with SetAPI.
type Shop struct {
	cfg    Config
	cat    *Catalog
	api    *apiClient
	log    *slog.Logger
	tmpl   *template.Template
	mux    http.Handler
	static fs.FS
	seeded atomic.Bool
	signer visitorSigner
	budget *apiBudget
}

// New checks cfg and builds the shop and its catalog.
func New(cfg Config) (*Shop, error) {
	defaults.Set(&cfg.Seed, DefaultSeed)
	defaults.Set(&cfg.Visitors, DefaultVisitors)
	cfg.Visitors = max(cfg.Visitors, 0)
	cfg.Logger = defaults.Logger(cfg.Logger)
	cfg.Now = defaults.Clock(cfg.Now)
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	setRate := func(r *Rate, d Rate) {
		defaults.Set(&r.PerSecond, d.PerSecond)
		defaults.Set(&r.Burst, d.Burst)
	}
	setRate(&cfg.ClientRate, DefaultClientRate)
	setRate(&cfg.TotalRate, DefaultTotalRate)
	if cfg.VisitorKey == nil {
		cfg.VisitorKey = []byte(cfg.SecretKey)
	}
	var errs []error
	for _, r := range []struct {
		name string
		r    Rate
	}{{"ClientRate", cfg.ClientRate}, {"TotalRate", cfg.TotalRate}} {
		if !(r.r.PerSecond > 0) || r.r.Burst < 1 {
			errs = append(errs, fmt.Errorf("demo: config: %s: want a rate > 0 and a burst >= 1, got %v/s and %d", r.name, r.r.PerSecond, r.r.Burst))
		}
	}
	if cfg.SecretKey == "" || cfg.PublishableKey == "" {
		errs = append(errs, errors.New("demo: config: SecretKey and PublishableKey are required"))
	}
	if u, err := url.Parse(cfg.Origin); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		errs = append(errs, fmt.Errorf("demo: config: Origin %q: want http(s)://host[:port]", cfg.Origin))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Origin = strings.TrimSuffix(cfg.Origin, "/")
	api, err := newAPIClient(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	s := &Shop{cfg: cfg, cat: NewCatalog(cfg.Seed), api: api, log: cfg.Logger.With("component", "demo"),
		signer: newVisitorSigner(cfg.VisitorKey), budget: newAPIBudget(cfg.ClientRate, cfg.TotalRate)}
	s.tmpl, err = template.New("").Funcs(template.FuncMap{
		"stars": stars,
	}).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("demo: templates: %w", err)
	}
	s.static, _ = fs.Sub(files, "static")
	s.routes()
	return s, nil
}

// SetAPI gives the shop the Kairos API's handler, which its back end
// calls in process with the secret key. Call it before serving or
// seeding.
func (s *Shop) SetAPI(h http.Handler) { s.api.handler.Store(&h) }

// Catalog returns the generated catalog.
func (s *Shop) Catalog() *Catalog { return s.cat }

// Seeded reports whether Seed has completed.
func (s *Shop) Seeded() bool { return s.seeded.Load() }

// ServeHTTP serves the shop's pages (see the package documentation).
func (s *Shop) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Shop) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.home)
	m.HandleFunc("GET /shop/c/{category}", s.category)
	m.HandleFunc("GET /shop/p/{id}", s.product)
	m.HandleFunc("GET /shop/img/{name}", s.image)
	m.HandleFunc("GET /shop/static/{name}", s.staticFile)
	m.HandleFunc("GET /shop/api/recommendations", s.recommendations)
	m.HandleFunc("GET /shop/api/status", s.status)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.notFound(w, r) })
	s.mux = s.securityHeaders(m)
}

// staticFile serves GET /shop/static/{name}: a file of static/, never a
// directory listing (anything but a file is the 404 page).
func (s *Shop) staticFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if st, err := fs.Stat(s.static, name); err != nil || !st.Mode().IsRegular() {
		s.notFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeFileFS(w, r, s.static, name)
}

// callAPI reports whether the shop may call the API for r now (see
// Config.ClientRate); wait is the time until it may.
func (s *Shop) callAPI(r *http.Request) (ok bool, wait time.Duration) {
	return s.budget.take(s.cfg.ClientIP(r), s.cfg.Now())
}

// card is a product as the templates and the recommendations JSON show it.
type card struct {
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Category string  `json:"category"`
	Price    string  `json:"price"`
	Image    string  `json:"image"`
	Link     string  `json:"link"`
	Rating   float64 `json:"rating"`
	Because  string  `json:"because,omitempty"`
}

func (s *Shop) card(p *Product) card {
	c, _ := s.cat.Category(p.Category)
	return card{ID: p.ID, Title: p.Title, Category: c.Name, Price: p.Price(), Image: "/shop/img/" + p.ID + ".svg",
		Link: "/shop/p/" + p.ID, Rating: p.Rating}
}

// page is the data of every template.
type page struct {
	Title      string
	Key        string
	Categories []Category
	Current    string // current category id
	Item       string // the page's item (meta kairos:item)
	Seeded     bool

	Trending []card
	Strategy string
	Category *Category
	Products []card
	Product  *Product
	Card     card
	Similar  []card
}

func (s *Shop) newPage(title string) page {
	return page{Title: title, Key: s.cfg.PublishableKey, Categories: s.cat.Categories, Seeded: s.seeded.Load()}
}

// render writes a page (status 200 unless set before), giving the
// visitor an id the shop minted first.
func (s *Shop) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	s.ensureVisitor(w, r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.tmpl.ExecuteTemplate(w, name, p); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "page not rendered", slog.String("page", name), slog.Any("err", err))
	}
}

func (s *Shop) notFound(w http.ResponseWriter, r *http.Request) {
	s.render(&statusWriter{ResponseWriter: w, status: http.StatusNotFound}, r, "notfound.html", s.newPage("Not found"))
}

// statusWriter answers status instead of 200 (headers can still be set
// until the first write).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(int) {
	if !w.wrote {
		w.wrote = true
		w.ResponseWriter.WriteHeader(w.status)
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.WriteHeader(0)
	return w.ResponseWriter.Write(b)
}

// recommend calls GET /v1/recommendations with the secret key.
func (s *Shop) recommend(ctx context.Context, q client.RecQuery) (client.Recommendations, error) {
	return s.api.Recommendations(ctx, q)
}

func (s *Shop) cards(ids []string) []card {
	var out []card
	for _, id := range ids {
		if p, ok := s.cat.Product(id); ok {
			out = append(out, s.card(p))
		}
	}
	return out
}

// trendingVisitor is a visitor id that never sends events: its
// recommendations are the shop's trending items.
const trendingVisitor = "demo-shop-trending"

func (s *Shop) home(w http.ResponseWriter, r *http.Request) {
	p := s.newPage("Kairos Supply Co. — demo shop")
	var rr client.Recommendations
	if ok, _ := s.callAPI(r); ok { // else: the page without trending
		var err error
		if rr, err = s.recommend(r.Context(), client.RecQuery{Visitor: trendingVisitor, N: 8}); err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "trending not loaded", slog.Any("err", err))
		}
	}
	var ids []string
	for _, it := range rr.Items {
		ids = append(ids, it.Item)
	}
	p.Trending, p.Strategy = s.cards(ids), rr.Strategy
	s.render(w, r, "home.html", p)
}

func (s *Shop) category(w http.ResponseWriter, r *http.Request) {
	c, ok := s.cat.Category(r.PathValue("category"))
	if !ok {
		s.notFound(w, r)
		return
	}
	p := s.newPage(c.Name + " — Kairos Supply Co.")
	p.Category, p.Current = c, c.ID
	for _, pr := range s.cat.InCategory(c.ID) {
		p.Products = append(p.Products, s.card(pr))
	}
	s.render(w, r, "category.html", p)
}

func (s *Shop) product(w http.ResponseWriter, r *http.Request) {
	pr, ok := s.cat.Product(r.PathValue("id"))
	if !ok {
		s.notFound(w, r)
		return
	}
	p := s.newPage(pr.Title + " — Kairos Supply Co.")
	p.Product, p.Card, p.Item, p.Current = pr, s.card(pr), pr.ID, pr.Category
	p.Category, _ = s.cat.Category(pr.Category)
	var ids []string
	if ok, _ := s.callAPI(r); ok { // else: the category's products
		if sim, err := s.api.Similar(r.Context(), pr.ID, 4); err == nil {
			for _, it := range sim {
				ids = append(ids, it.Item)
			}
		}
	}
	if len(ids) == 0 { // the model does not know the item yet: its category
		for _, o := range s.cat.InCategory(pr.Category) {
			if o.ID != pr.ID && len(ids) < 4 {
				ids = append(ids, o.ID)
			}
		}
	}
	p.Similar = s.cards(ids)
	s.render(w, r, "product.html", p)
}

// image serves /shop/img/<product>.svg (?v=0..2: the gallery's views)
// and /shop/img/banner-<category>.svg.
func (s *Shop) image(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".svg")
	var svg string
	if cat, isBanner := strings.CutPrefix(name, "banner-"); ok && isBanner {
		svg = bannerSVG(s.cat, cat)
	} else if pr, found := s.cat.Product(name); ok && found {
		v, _ := strconv.Atoi(r.URL.Query().Get("v"))
		svg = productSVG(pr, min(max(v, 0), 2))
	}
	if svg == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Write([]byte(svg))
}

// recommendations is GET /shop/api/recommendations?n=&item=: the shop's
// back end asks Kairos for the visitor's recommendations with the secret
// key — the visitor is the tracker's first-party cookie kairos_vid, if
// the shop minted it (signed: see ensureVisitor) — and answers the
// products to show. A visitor cookie the shop did not sign is 403; a
// client over Config.ClientRate (or the shop over Config.TotalRate) is
// 429 with Retry-After.
func (s *Shop) recommendations(w http.ResponseWriter, r *http.Request) {
	type answer struct {
		Visitor  string `json:"visitor,omitempty"`
		Strategy string `json:"strategy"`
		Items    []card `json:"items"`
	}
	w.Header().Set("Cache-Control", "private, no-store")
	out := answer{Items: []card{}}
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	n = min(max(n, 1), 24)
	visitor, ok, present := s.visitor(r)
	if present && !ok {
		jsonError(w, http.StatusForbidden, "the visitor cookie kairos_vid was not issued by this shop: reload the page for a new visitor")
		return
	}
	out.Visitor = visitor
	if out.Visitor != "" {
		if ok, wait := s.callAPI(r); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait.Seconds(), 1)))))
			jsonError(w, http.StatusTooManyRequests, "too many requests from this client: retry later")
			return
		}
		q := client.RecQuery{Visitor: out.Visitor, N: n, Explain: true, Item: r.URL.Query().Get("item")}
		rr, err := s.recommend(r.Context(), q)
		if err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "recommendations not loaded", slog.Any("err", err))
			jsonError(w, http.StatusBadGateway, "recommendations unavailable")
			return
		}
		out.Strategy = rr.Strategy
		for _, it := range rr.Items {
			p, ok := s.cat.Product(it.Item)
			if !ok {
				continue
			}
			c := s.card(p)
			if len(it.Because) > 0 {
				if b, ok := s.cat.Product(it.Because[0]); ok {
					c.Because = b.Title
				}
			}
			out.Items = append(out.Items, c)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// jsonError answers {"error": msg} with status.
func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// status is GET /shop/api/status: {"seeded": bool, "products": n}.
func (s *Shop) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"seeded": s.seeded.Load(), "products": len(s.cat.Products)})
}

// stars renders a rating as five stars.
func stars(r float64) string {
	full := int(r + 0.25)
	return strings.Repeat("★", full) + strings.Repeat("☆", 5-full)
}

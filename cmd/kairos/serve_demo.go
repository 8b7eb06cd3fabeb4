package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/engine/filter"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/api/demo"
	"github.com/kairoshq/kairos/engine/attention"
	"github.com/kairoshq/kairos/engine/holdout"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/engine/rotation"
)

// demoBlendKappa is the cold-start κ of --demo when --blend-kappa is not
// given: a demo visitor's first clicks should show in the
// recommendations at once (w(n) = n/(n+2): 0.67 after 4 events), where
// the default κ = 8, chosen on MovieLens, leans on trending longer.
const demoBlendKappa = 2

// demoDefaults applies the defaults of --demo to flags left unset (flag
// nor environment variable).
func demoDefaults(fs *flag.FlagSet, c *serveConfig) {
	if !c.Demo || os.Getenv(envName("blend-kappa")) != "" {
		return
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "blend-kappa" })
	if !set {
		c.Blend.Kappa = demoBlendKappa
	}
}

// addAttention creates the attention heat reactor (engine/attention) over
// the store, registers it with the engine (after the promo engine, so
// that its write does not delay promotions) and gives it to the API
// (GET /v1/pages/attention).
func (a *app) addAttention(_ context.Context, w *wiring) error {
	at, err := attention.New(attention.NewStore(a.store), attention.Config{FlushEvery: a.cfg.StatsFlush, Logger: a.log, Registerer: w.reg})
	if err != nil {
		return fmt.Errorf("attention: %w", err)
	}
	a.engine.AddReactor(at)
	w.deps.Attention = at
	return nil
}

// addHoldout (kairos serve --holdout-share) creates the holdout of
// personalization (engine/holdout) over the store, registers it with the
// engine (it counts units and conversions per arm) and gives it to the
// API, which serves the held-out visitors the baseline and GET
// /v1/holdout/results.
func (a *app) addHoldout(_ context.Context, w *wiring) error {
	h, err := holdout.New(a.store, a.store, holdout.Config{Share: a.cfg.HoldoutShare, Logger: a.log})
	if err != nil {
		return fmt.Errorf("holdout: %w", err)
	}
	a.engine.AddReactor(h)
	a.holdout = h
	w.deps.Holdout = h
	return nil
}

// addFilters keeps the named filters of /v1/filters (engine/filter) as
// versioned documents on the store, so every replica serves them.
func (a *app) addFilters(_ context.Context, w *wiring) error {
	w.deps.Filters = filter.NewStore(a.store, filter.NewCompiler(256), filter.StoreConfig{Now: a.cfg.Now})
	return nil
}

// addRotation creates the rotation and paging layer of
// GET /v1/recommendations (engine/rotation) over the store, keyed by the
// store's token secret (so every replica accepts every replica's page
// tokens), registers it with the engine (impressions mark items seen)
// and erases a visitor's record with the visitor.
func (a *app) addRotation(ctx context.Context, w *wiring) error {
	secret, err := promo.NewStore(a.store).PromoSecret(ctx)
	if err != nil {
		return fmt.Errorf("rotation: secret: %w", err)
	}
	r, err := rotation.New(a.store, rotation.Config{Default: a.cfg.Rotation, Max: a.cfg.RotationMax,
		MaxCandidates: w.api.MaxResults, Secret: secret, Logger: a.log, Now: a.cfg.Now, StateKey: a.engine.StateKey})
	if err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	a.engine.AddReactor(r)
	w.deps.Rotation = r
	w.deps.Eraser = alsoErase{name: "rotation", forget: r.ForgetVisitor, ids: a.engine.ErasureIDs, next: w.deps.Eraser}
	return nil
}

// addDemo (kairos serve --demo) builds the demo shop (package api/demo)
// and mounts it at / through deps.Site. It listens at once (unless a
// listener was given) so that the shop knows its origin: the origins
// browsers reach it by are added to the publishable key's allowed
// origins — http://<ip>:<port> for a specific address, plus
// http://localhost:<port> for a loopback one; for an unspecified one
// (":8080", "0.0.0.0:8080") http://localhost:<port>,
// http://127.0.0.1:<port> and http://<hostname>:<port> (other names need
// --allowed-origins).
func (a *app) addDemo(_ context.Context, w *wiring) error {
	acfg := w.api
	if a.listener == nil {
		ln, err := net.Listen("tcp", a.cfg.Addr)
		if err != nil {
			return fmt.Errorf("demo: listen: %w", err)
		}
		a.listener = ln
	}
	origins := demoOrigins(a.listener.Addr())
	acfg.AllowedOrigins = append(acfg.AllowedOrigins, origins...)
	// The shop's back end has a secret key of its own (in memory only),
	// so its calls take from their own rate bucket, never from the site's
	// secret key's; it bounds them per client itself (demo.Config).
	shopKey, err := newShopKey()
	if err != nil {
		return err
	}
	acfg.SecretKeys = append(slices.Clip(acfg.SecretKeys), shopKey)
	shop, err := demo.New(demo.Config{SecretKey: shopKey, PublishableKey: a.keys.publishable[0], Origin: origins[0],
		VisitorKey: []byte(a.keys.secret[0]), ClientIP: api.ClientIP, Logger: a.log})
	if err != nil {
		return err
	}
	// The shop's back end calls the API in process; a.api is set once
	// newApp has built it, before anything is served.
	shop.SetAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.api.Handler().ServeHTTP(w, r) }))
	a.demo = shop
	w.deps.Site = shop
	return nil
}

// newShopKey returns a random secret key for the demo shop's back end.
func newShopKey() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("demo: key: %w", err)
	}
	return "sk_demo_" + hex.EncodeToString(b[:]), nil
}

// seedDemo seeds the demo shop (catalog, offers, rules, background
// traffic) with the engine running; a failure is logged, the shop still
// serves.
func (a *app) seedDemo(ctx context.Context) {
	if a.demo == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := a.demo.Seed(sctx); err != nil {
		a.log.LogAttrs(ctx, slog.LevelError, "demo shop not seeded", slog.Any("err", err))
		return
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "demo shop ready", slog.String("url", "http://"+demoHost(a.listener.Addr())+"/"))
}

// demoOrigins returns the origins of the demo shop at addr, the one its
// offers' links use first.
func demoOrigins(addr net.Addr) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return []string{"http://" + addr.String()}
	}
	port := strconv.Itoa(tcp.Port)
	switch {
	case tcp.IP == nil || tcp.IP.IsUnspecified():
		out := []string{"http://localhost:" + port, "http://127.0.0.1:" + port}
		if h, err := os.Hostname(); err == nil && h != "" {
			out = append(out, "http://"+h+":"+port)
		}
		return out
	case tcp.IP.IsLoopback():
		return []string{"http://" + net.JoinHostPort(tcp.IP.String(), port), "http://localhost:" + port}
	}
	return []string{"http://" + net.JoinHostPort(tcp.IP.String(), port)}
}

// demoHost is the host:port of the shop's first origin.
func demoHost(addr net.Addr) string {
	o := demoOrigins(addr)[0]
	return o[len("http://"):]
}

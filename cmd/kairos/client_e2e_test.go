package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/api/client"
)

const (
	testSecretKey      = "sk_test_0123456789abcdef"
	testPublishableKey = "pk_test_0123456789abcdef"
)

// newTestClient returns a client of srv whose every exchange is checked
// against the OpenAPI description (httpClient's transport).
func newTestClient(t *testing.T, srv *testServer, key string) *client.Client {
	t.Helper()
	c, err := client.New(srv.base, key, client.Options{HTTPClient: httpClient, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientEndToEnd drives kairos serve (embedded) through the Go client:
// catalog, events, identify, recommendations, similar items, offers and
// rules, the promotion stream resumed after a disconnect, stats,
// attention, experiments and erasure; every exchange validated against
// the OpenAPI description.
func TestClientEndToEnd(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newTestClient(t, srv, testSecretKey)

	for i := range 6 {
		cat := "shoes"
		if i >= 3 {
			cat = "bags"
		}
		if _, created, err := c.PutItem(ctx, client.Item{ID: fmt.Sprintf("c-sku/%d", i), Title: "Item", Category: cat}); err != nil || !created {
			t.Fatalf("PutItem: created %v, %v", created, err)
		}
	}
	if _, err := c.CreateItem(ctx, client.Item{ID: "c-sku/0"}); !client.IsConflict(err) {
		t.Fatalf("CreateItem of an existing id: %v", err)
	}
	if it, err := c.GetItem(ctx, "c-sku/0"); err != nil || it.ID != "c-sku/0" || it.Active == nil || !*it.Active || it.Created.IsZero() {
		t.Fatalf("GetItem: %+v %v", it, err)
	}
	items, next, err := c.Items(ctx, "", 4)
	if err != nil || len(items) != 4 || next == "" {
		t.Fatalf("Items: %d items, next %q, %v", len(items), next, err)
	}

	// A background crowd, then a visitor into shoes.
	var evs []client.Event
	for v := range 20 {
		for i := range 3 {
			item := fmt.Sprintf("c-sku/%d", i+3*(v%2))
			evs = append(evs, client.Event{Type: "click", Visitor: fmt.Sprintf("c-bg%d", v), Item: item})
		}
	}
	evs = append(evs, client.Event{Type: "view", Visitor: "c-v1", Item: "c-sku/0"}, client.Event{ID: "bad", Type: "hover", Visitor: "c-v1"})
	res, err := c.SendEventsWait(ctx, evs, 5*time.Second)
	if err != nil || res.Accepted != len(evs)-1 || res.Applied != res.Accepted || len(res.Rejected) != 1 || res.Rejected[0].Index != len(evs)-1 || res.Rejected[0].Field != "type" {
		t.Fatalf("SendEventsWait: %+v, %v", res, err)
	}
	if id, err := c.IdentifyWait(ctx, "c-v1", "c-u1", 5*time.Second); err != nil || id.Event == "" || id.Applied == nil || !*id.Applied {
		t.Fatalf("IdentifyWait: %+v %v", id, err)
	}
	if id, err := c.Identify(ctx, "c-v1", "c-u1"); err != nil || id.Event == "" || id.Applied != nil {
		t.Fatalf("Identify: %+v %v", id, err)
	}
	var recs client.Recommendations
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs, err = c.Recommendations(ctx, client.RecQuery{Visitor: "c-v1", N: 3, Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs.Items) > 0 && recs.Strategy != "catalog" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(recs.Items) == 0 || recs.Visitor != "c-v1" {
		t.Fatalf("Recommendations: %+v", recs)
	}
	// Pages through rotation: the second page repeats nothing of the first.
	first, err := c.Recommendations(ctx, client.RecQuery{Visitor: "c-v2", N: 2, Rotation: "30m"})
	if err != nil || len(first.Items) != 2 || first.Next == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	second, err := c.Recommendations(ctx, client.RecQuery{Visitor: "c-v2", N: 2, Rotation: "30m", Page: first.Next})
	if err != nil || len(second.Items) == 0 {
		t.Fatalf("second page: %+v, %v", second, err)
	}
	for _, r := range second.Items {
		if slices.ContainsFunc(first.Items, func(f client.Rec) bool { return f.Item == r.Item }) {
			t.Fatalf("second page %+v repeats an item of the first %+v", second.Items, first.Items)
		}
	}
	if _, err := c.Recommendations(ctx, client.RecQuery{Visitor: "c-v2", N: 2, Page: "forged"}); !client.IsInvalid(err) {
		t.Fatalf("a forged page token: %v, want invalid", err)
	}
	if sim, err := c.Similar(ctx, "c-sku/0", 2); err != nil || len(sim) == 0 {
		t.Fatalf("Similar: %v %v", sim, err)
	}
	if _, err := c.Similar(ctx, "c-none", 2); !client.IsNotFound(err) {
		t.Fatalf("Similar of an unknown item: %v", err)
	}
	// Filter and boost expressions, named filters.
	bags, err := c.Recommendations(ctx, client.RecQuery{Visitor: "c-v2", N: 2, Expressions: client.Expressions{Filter: `category == "bags"`, Boost: "2"}})
	if err != nil || len(bags.Items) != 2 || bags.Items[0].Category != "bags" || bags.Items[1].Category != "bags" {
		t.Fatalf("filtered recommendations: %+v, %v", bags, err)
	}
	if _, err := c.Recommendations(ctx, client.RecQuery{Visitor: "c-v2", Expressions: client.Expressions{Filter: "category =="}}); !client.IsInvalid(err) {
		t.Fatalf("a bad filter: %v, want invalid", err)
	}
	if f, created, err := c.PutFilter(ctx, client.Filter{Name: "c-shoes", Filter: `category == "shoes"`, Share: 0.5}); err != nil || !created || f.Created.IsZero() {
		t.Fatalf("PutFilter: %+v %v %v", f, created, err)
	}
	if fs, err := c.Filters(ctx); err != nil || len(fs) != 1 || fs[0].Share != 0.5 {
		t.Fatalf("Filters: %+v %v", fs, err)
	}
	if f, err := c.GetFilter(ctx, "c-shoes"); err != nil || f.Filter != `category == "shoes"` {
		t.Fatalf("GetFilter: %+v %v", f, err)
	}
	promo, err := c.Recommendations(ctx, client.RecQuery{Visitor: "c-v2", N: 2, Expressions: client.Expressions{FilterName: "c-shoes"}})
	if err != nil || len(promo.Items) != 2 || !slices.ContainsFunc(promo.Items, func(r client.Rec) bool { return r.Promoted && r.Category == "shoes" }) {
		t.Fatalf("promotion: %+v, %v", promo, err)
	}
	if sim, err := c.SimilarWith(ctx, "c-sku/0", 2, client.Expressions{FilterName: "c-shoes"}); err != nil || len(sim) == 0 || sim[0].Category != "shoes" {
		t.Fatalf("SimilarWith: %+v %v", sim, err)
	}
	if err := c.DeleteFilter(ctx, "c-shoes"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFilter(ctx, "c-shoes"); !client.IsNotFound(err) {
		t.Fatalf("GetFilter after DeleteFilter: %v", err)
	}

	// Offers, a rule and the promotion stream.
	if _, err := c.PutDefinition(ctx, "offers", "c-o1", map[string]any{"title": "Stay!", "slot": "exit", "items": []string{"c-sku/0"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutDefinition(ctx, "rules", "c-r1", map[string]any{"cooldown": "0s", "when": map[string]any{"exit": map[string]any{}}, "then": map[string]any{"offer": "c-o1"}}, nil); err != nil {
		t.Fatal(err)
	}
	pub := newTestClient(t, srv, testPublishableKey)
	offers, err := pub.Offers(ctx, client.OfferQuery{Visitor: "c-v1", Slot: "exit"})
	if err != nil || len(offers.Offers) != 1 || offers.Offers[0].Token == "" {
		t.Fatalf("Offers: %+v %v", offers, err)
	}
	got := make(chan client.Promotion, 10)
	streamCtx, stopStream := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- pub.Promotions(streamCtx, "c-v1", "", func(p client.Promotion) error { got <- p; return nil })
	}()
	nextPromo := func() client.Promotion {
		t.Helper()
		for {
			if _, err := pub.SendEvents(ctx, []client.Event{{Type: "exit", Visitor: "c-v1"}}); err != nil {
				t.Fatal(err)
			}
			select {
			case p := <-got:
				return p
			case <-time.After(2 * time.Second): // the stream may not be open yet: exit again
			case <-ctx.Done():
				t.Fatal("no promotion")
			}
		}
	}
	p1 := nextPromo()
	if p1.Rule != "c-r1" || p1.Offer.Title != "Stay!" || p1.Token == "" {
		t.Fatalf("promotion %+v", p1)
	}
	stopStream()
	if err := <-done; err != nil {
		t.Fatalf("Promotions: %v", err)
	}
	// Resumed after the first: only later promotions come.
	streamCtx, stopStream = context.WithCancel(ctx)
	defer stopStream()
	go func() {
		done <- pub.Promotions(streamCtx, "c-v1", p1.ID, func(p client.Promotion) error { got <- p; return nil })
	}()
	if p2 := nextPromo(); p2.Seq <= p1.Seq {
		t.Fatalf("resumed after %d, got %d again", p1.Seq, p2.Seq)
	}
	stopStream()
	<-done

	if st, err := c.ItemStats(ctx, "c-sku/0", "1h", time.Time{}, time.Time{}); err != nil || st.Resolution != "1h" || len(st.Points) == 0 {
		t.Fatalf("ItemStats: %+v %v", st, err)
	}
	if _, err := c.OfferStats(ctx, "c-o1", "1d", time.Now().Add(-48*time.Hour), time.Now()); err != nil {
		t.Fatalf("OfferStats: %v", err)
	}
	if at, err := c.PageAttention(ctx, "https://shop.example/p/1", 10); err != nil || at.TotalMs != 0 {
		t.Fatalf("PageAttention: %+v %v", at, err)
	}

	// An experiment on the exit slot: the variant comes with the offers.
	x := map[string]any{"target": map[string]any{"surface": "offers", "slot": "hero"}, "metric": "conversion",
		"variants": []map[string]any{{"name": "A"}, {"name": "B", "offer": "c-o1"}}}
	if created, err := c.PutDefinition(ctx, "experiments", "c-x1", x, nil); err != nil || !created {
		t.Fatalf("PutDefinition experiment: %v %v", created, err)
	}
	if xs, err := c.Experiments(ctx); err != nil || len(xs) != 1 || xs[0].Status != "running" {
		t.Fatalf("Experiments: %+v %v", xs, err)
	}
	if r, err := c.ExperimentResults(ctx, "c-x1"); err != nil || r.Verdict == "" {
		t.Fatalf("ExperimentResults: %+v %v", r, err)
	}
	if err := c.DeleteDefinition(ctx, "experiments", "c-x1"); err != nil {
		t.Fatal(err)
	}
	var e *client.Error
	if err := c.DeleteDefinition(ctx, "offers", "c-o1"); !errors.As(err, &e) || e.Code != "conflict" || e.RequestID == "" {
		t.Fatalf("deleting a named offer: %v", err)
	}

	if err := c.EraseVisitor(ctx, "c-u1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteItem(ctx, "c-sku/5"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteItem(ctx, "c-sku/5"); !client.IsNotFound(err) {
		t.Fatalf("second DeleteItem: %v", err)
	}
	// The publishable key may not read the catalog.
	if _, err := pub.GetItem(ctx, "c-sku/0"); !errors.As(err, &e) || e.Status != 403 {
		t.Fatalf("publishable GetItem: %v", err)
	}
}

// TestReadmeClientExample checks that the README's Go client example is
// examples/client/main.go, runs it against kairos serve and compares its
// output with the README's.
func TestReadmeClientExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	code := readmeBlock(t, string(readme), "<!-- client example -->", "```go\n")
	want := readmeBlock(t, string(readme), "<!-- client example output -->", "```text\n")
	src, err := os.ReadFile("../../examples/client/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if code != string(src) {
		t.Fatal("the README's client example differs from examples/client/main.go: copy the file into the README")
	}
	bin := filepath.Join(t.TempDir(), "client")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/client").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/client: %v\n%s", err, out)
	}
	srv := startServer(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "KAIROS_URL="+srv.base, "KAIROS_SECRET_KEY="+testSecretKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/client: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	lines := strings.Split(strings.TrimSpace(want), "\n")
	if len(got) != len(lines) {
		t.Fatalf("output:\n%s\nthe README says:\n%s", out, want)
	}
	for i, w := range lines {
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(w), "…", ".*") + "$")
		if !re.MatchString(got[i]) {
			t.Errorf("line %d: %q, the README says %q", i+1, got[i], w)
		}
	}
	t.Logf("examples/client against kairos serve:\n%s", out)
}

// readmeBlock returns the fenced block that follows mark.
func readmeBlock(t *testing.T, readme, mark, fence string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, mark)
	if !ok {
		t.Fatalf("README: no %s", mark)
	}
	_, after, ok = strings.Cut(after, fence)
	if !ok {
		t.Fatalf("README: no %s block after %s", strings.TrimSpace(fence), mark)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("README: the block after %s does not end", mark)
	}
	return block
}

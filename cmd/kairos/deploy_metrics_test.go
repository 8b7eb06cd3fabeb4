package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/api/client"
)

var deployMetricName = regexp.MustCompile(`\bkairos_[a-z0-9_]+`)

// deployMetrics returns the kairos_ metric families that the Grafana
// dashboard and the alert rules of deploy/ read (histogram series
// suffixes stripped), each with the file that reads it.
func deployMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{"grafana/kairos-dashboard.json", "prometheus/alerts.yml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "runbook_url") {
				continue
			}
			for _, m := range deployMetricName.FindAllString(line, -1) {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					if strings.HasSuffix(m, "_seconds"+s) {
						m = strings.TrimSuffix(m, s)
					}
				}
				out[m] = f
			}
		}
	}
	return out
}

// TestDeployMetricsExist checks that every metric the dashboard and the
// alert rules of deploy/ read is exported by kairos serve: it drives a
// server through the API (items, events with a rejection,
// recommendations, an offer, a rule and its promotion, an experiment's
// decision) and reads its /metrics. A family that has no series yet
// because nothing happened to label it (a retrain's NDCG, say) must at
// least be declared by the server's code.
func TestDeployMetricsExist(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newTestClient(t, srv, testSecretKey)
	if _, _, err := c.PutItem(ctx, client.Item{ID: "m-1", Category: "shoes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutDefinition(ctx, "offers", "m-o1", map[string]any{"title": "Hi", "slot": "hero"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutDefinition(ctx, "rules", "m-r1", map[string]any{"cooldown": "1h", "when": map[string]any{"exit": map[string]any{}}, "then": map[string]any{"offer": "m-o1"}}, nil); err != nil {
		t.Fatal(err)
	}
	x := map[string]any{"target": map[string]any{"surface": "offers", "slot": "hero"}, "metric": "conversion",
		"variants": []map[string]any{{"name": "A"}, {"name": "B", "offer": "m-o1"}}}
	if _, err := c.PutDefinition(ctx, "experiments", "m-x1", x, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second exit is skipped: cooling down
		if _, err := c.SendEvents(ctx, []client.Event{{Type: "view", Visitor: "m-v1", Item: "m-1"}, {Type: "exit", Visitor: "m-v1"}, {Type: "hover", Visitor: "m-v1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Recommendations(ctx, client.RecQuery{Visitor: "m-v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Offers(ctx, client.OfferQuery{Visitor: "m-v2", Slot: "hero"}); err != nil {
		t.Fatal(err)
	}

	want := deployMetrics(t)
	var exported map[string]bool
	// Scrape until nothing new shows for 2 s (events are applied
	// asynchronously).
	deadline := time.Now().Add(30 * time.Second)
	for last, same := -1, 0; ; {
		exported = scrapeMetricNames(t, srv)
		missing := 0
		for m := range want {
			if !exported[m] {
				missing++
			}
		}
		if missing == last {
			same++
		} else {
			last, same = missing, 0
		}
		if missing == 0 || same >= 10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	declared := declaredMetricNames(t)
	var names, onlyDeclared []string
	for m, f := range want {
		names = append(names, m)
		switch {
		case exported[m]:
		case declared[m]:
			onlyDeclared = append(onlyDeclared, m)
		default:
			t.Errorf("%s reads %s, which kairos serve neither exports nor declares", f, m)
		}
	}
	sort.Strings(names)
	sort.Strings(onlyDeclared)
	if len(onlyDeclared) > len(want)/4 {
		t.Errorf("%d of %d metrics have no series after the test's traffic: %v", len(onlyDeclared), len(want), onlyDeclared)
	}
	t.Logf("%d metrics read by deploy/, %d in /metrics; declared, no series yet: %v", len(want), len(want)-len(onlyDeclared), onlyDeclared)
}

// scrapeMetricNames returns the metric families in srv's /metrics (for
// histograms, the family name).
func scrapeMetricNames(t *testing.T, srv *testServer) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, line := range strings.Split(scrapeMetrics(t, srv), "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			if f := strings.Fields(line); len(f) >= 3 {
				out[f[2]] = true
			}
		}
	}
	return out
}

// declaredMetricNames returns the kairos_ names quoted in the module's
// non-test Go files.
func declaredMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	quoted := regexp.MustCompile(`"(kairos_[a-z0-9_]+)"`)
	err := filepath.WalkDir(filepath.Join("..", ".."), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

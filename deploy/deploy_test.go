// Package deploy_test checks the operations kit: the Grafana dashboard
// (grafana/kairos-dashboard.json) and the Prometheus alert rules
// (prometheus/alerts.yml, unit-tested by prometheus/alerts_test.yml with
// promtool). That every metric they use is one kairos serve exports is
// checked against a running server in cmd/kairos (TestDeployMetricsExist).
package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// dashboard is the part of Grafana's dashboard JSON model the test reads.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct{ H, W, X, Y int }
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", "kairos-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("kairos-dashboard.json: %v", err)
	}
	return d
}

// TestDashboardSchema checks the dashboard's shape: identity, the data
// source variable every panel uses, panels on Grafana's 24-column grid
// without overlaps, and PromQL targets; and that it covers what an
// operator watches (ingest, lag, latency, errors, dependencies,
// promotions, experiments, retrains).
func TestDashboardSchema(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 {
		t.Errorf("title %q, uid %q, schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("template variables %v: want datasource (a Prometheus data source) and instance", vars)
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	exprs := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at (%d, %d)", other, p.Title, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Type != "timeseries" && p.Type != "stat" {
			t.Errorf("panel %q: type %q", p.Title, p.Type)
		}
		if p.Title == "" || p.Description == "" {
			t.Errorf("panel %d: title %q, description %q", p.ID, p.Title, p.Description)
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no targets", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %q: empty or repeated refId, or no expr", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			exprs++
		}
	}
	used := map[string]bool{}
	for _, m := range DashboardMetrics(t) {
		used[m] = true
	}
	for what, m := range map[string]string{
		"ingest rate": "kairos_events_received_total", "applied": "kairos_engine_events_applied_total",
		"consumer lag": "kairos_engine_consume_lag_seconds", "HTTP latency": "kairos_http_request_duration_seconds",
		"errors": "kairos_http_requests_total", "dependencies": "kairos_dependency_up",
		"dead letters": "kairos_events_dead_lettered_total", "promotions": "kairos_promo_promotions_total",
		"experiments": "kairos_experiment_decisions_total", "retrain status": "kairos_retrain_runs_total",
	} {
		if !used[m] {
			t.Errorf("the dashboard shows no %s (%s)", what, m)
		}
	}
	t.Logf("%d panels, %d PromQL targets, %d metrics", len(ids), exprs, len(used))
}

var metricName = regexp.MustCompile(`\bkairos_[a-z0-9_]+`)

// baseName strips the series suffixes of histograms.
func baseName(m string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if strings.HasSuffix(m, s) && strings.HasSuffix(strings.TrimSuffix(m, s), "_seconds") {
			return strings.TrimSuffix(m, s)
		}
	}
	return m
}

func names(text string) []string {
	set := map[string]bool{}
	for _, m := range metricName.FindAllString(text, -1) {
		set[baseName(m)] = true
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// DashboardMetrics returns the kairos_ metric families the dashboard's
// targets read.
func DashboardMetrics(t *testing.T) []string {
	var all strings.Builder
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	return names(all.String())
}

// promtool returns promtool's path; without it the test is skipped, or
// fails under CI=true (scripts/services.sh installs it there).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found (Debian package prometheus; scripts/services.sh installs it under CI)")
		}
		t.Skip("promtool not found: apt-get install prometheus")
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules runs promtool check rules and the rules' unit tests,
// and checks that every alert has a severity, a summary, and a runbook
// entry in the README that its runbook_url points at.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	t.Log(strings.TrimSpace(run(t, "prometheus", pt, "check", "rules", "alerts.yml")))
	t.Log(strings.TrimSpace(run(t, "prometheus", pt, "test", "rules", "alerts_test.yml")))

	rules, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tests, _ := os.ReadFile(filepath.Join("prometheus", "alerts_test.yml"))
	alerts := regexp.MustCompile(`(?m)^\s+- alert: (\w+)$`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) < 8 {
		t.Fatalf("%d alerts in alerts.yml", len(alerts))
	}
	for i, a := range alerts {
		name := a[1]
		end := len(rules)
		if i+1 < len(alerts) {
			end = strings.Index(string(rules), alerts[i+1][0])
		}
		body := string(rules)[strings.Index(string(rules), a[0]):end]
		for _, want := range []string{"severity:", "summary:", "runbook_url: \"https://github.com/kairoshq/kairos#" + strings.ToLower(name) + "\""} {
			if !strings.Contains(body, want) {
				t.Errorf("alert %s: no %s", name, want)
			}
		}
		if !regexp.MustCompile(`(?m)^#+ ` + name + `$`).Match(readme) {
			t.Errorf("alert %s: no runbook heading %q in README.md", name, name)
		}
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s: no unit test in alerts_test.yml", name)
		}
	}
}

// TestDashboardQueriesParse has promtool parse every dashboard query, as
// recording rules (Grafana's $__rate_interval and $instance filled in).
func TestDashboardQueriesParse(t *testing.T) {
	pt := promtool(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			expr := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(tg.Expr)
			q, _ := json.Marshal(expr)
			fmt.Fprintf(&b, "      - record: dashboard:q%d\n        expr: %s\n", n, q)
			n++
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Log(strings.TrimSpace(run(t, dir, pt, "check", "rules", "dashboard.yml")))
}

// AlertMetrics returns the kairos_ metric families the alert rules read.
func AlertMetrics(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "runbook_url") && !strings.Contains(line, "summary") && !strings.Contains(line, "description") {
			exprs.WriteString(line + "\n")
		}
	}
	return names(exprs.String())
}

// TestMetricNames lists the metrics the kit reads (the server-side check
// is cmd/kairos's TestDeployMetricsExist).
func TestMetricNames(t *testing.T) {
	d, a := DashboardMetrics(t), AlertMetrics(t)
	if len(d) < 15 || len(a) < 6 {
		t.Fatalf("dashboard metrics %v, alert metrics %v", d, a)
	}
	t.Logf("dashboard: %s", strings.Join(d, " "))
	t.Logf("alerts: %s", strings.Join(a, " "))
}

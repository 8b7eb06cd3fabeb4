package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/offline"
	"github.com/kairoshq/kairos/signals/tracker/browsertest"

	"github.com/kairoshq/kairos/model"
)

// TestRetrainPanelInBrowser runs `kairos serve` (embedded) with scheduled
// retrains, then three retrains through the server's own runner: the
// shipped parameters (published), a tuned one, and one with deliberately
// bad parameters (one factor, no training sweep), which the guard
// refuses. The dashboard, in headless Chromium (skipped without it, failed
// under CI=true), lists the three with their decision, their pick and
// NDCG@10 of the retrained model, the live one and popularity as the
// server reports them, and the reason of the refusal. It saves a
// screenshot of the panel (KAIROS_RETRAIN_SCREENSHOT, default
// kairos-retrain-e2e.png in the temporary directory; docs/retrain.png
// comes from here).
func TestRetrainPanelInBrowser(t *testing.T) {
	b := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 1000})
	srv := startServer(t, "--retrain-every", "24h", "--retrain-min-users", "10")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Planted clusters, and items seen in groups (for the item
	// neighbours' η).
	evs := append(roundsBatch("r", 3, 15, 30, 14, 3), groupsBatch("nb", 240, 8, 7)...)
	srv.postAll(t, evs)
	waitFor(t, 20*time.Second, "the events to be archived", func() bool { return srv.app.archive.LastSeq() > 0 && srv.app.engine.Online().Len() >= 90 })

	rt := srv.app.retrain
	run := func(tune time.Duration, bad bool, nu float64) *offline.RunResult {
		t.Helper()
		r := *rt.runner
		r.Config.Params = srv.app.engine.Online().Params()
		if nu > 0 { // fixed, not fitted, with the shipped half-life
			r.Config.Params.ItemLambdaExponent, r.Config.FitItemLambda = nu, false
			r.Config.Params.HalfLife, r.Config.FitHalfLife = model.DefaultParams().HalfLife, false
		}
		r.TuneBudget = tune
		if bad {
			// Random factors, without the item neighbours that would
			// rank well without them.
			r.Config.Params.Iterations, r.Config.NoItemNeighbours = 0, true
		}
		res, err := r.Run(ctx, false, false)
		if err != nil {
			t.Fatal(err)
		}
		rt.met.observe(res, nil)
		t.Logf("%s: %s", res.Decision, res.Reason)
		return res
	}
	first := run(0, false, 0.5)
	if first.Decision != offline.DecisionPublished {
		t.Fatalf("the shipped parameters on planted clusters: %s (%s)", first.Decision, first.Reason)
	}
	waitFor(t, 20*time.Second, "the published model to be loaded", func() bool { return srv.app.engine.ModelGeneration() >= 1 })
	run(3*time.Second, false, 0)
	bad := run(0, true, 0)
	if bad.Decision == offline.DecisionPublished {
		t.Fatalf("a model of random factors was published: %s", bad.Reason)
	}

	if err := b.Navigate(ctx, srv.base+"/dashboard"); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, b, "sk_test_0123456789abcdef")
	if _, err := b.WaitFor(ctx, `return document.querySelectorAll('#retrains tbody tr').length === 3`); err != nil {
		t.Fatalf("the retrain panel does not list the three retrains: %v", err)
	}
	var rows []struct {
		Decision, Pick, Why string
		Figures             []string
	}
	if err := b.ExecuteTo(ctx, &rows, `return [].map.call(document.querySelectorAll('#retrains tbody tr'), function (r) {
		var why = r.querySelector('.why');
		return {decision: r.getAttribute('data-decision'), pick: r.querySelector('.pick').textContent, why: why ? why.textContent : '',
			figures: [].map.call(r.querySelectorAll('.figs .m, .figs .v'), function (e) { return e.textContent; })}; })`); err != nil {
		t.Fatal(err)
	}
	sum := srv.secretJSON(t, "GET", "/v1/dashboard/summary?n=10", "", 200)
	b2, _ := json.Marshal(sum["model"])
	var m struct {
		Generation int
		Retrains   []struct {
			Label   string
			Reason  string
			Trials  int
			Figures []struct {
				Model  string
				NDCG10 float64
			}
		}
	}
	if err := json.Unmarshal(b2, &m); err != nil || len(m.Retrains) != 3 || m.Generation < 1 {
		t.Fatalf("summary model %s: %v", b2, err)
	}
	for j, r := range rows { // newest first: bad, tuned, first
		want := m.Retrains[j]
		if r.Decision != want.Label || r.Why != want.Reason {
			t.Errorf("row %d: %q %q, the server says %q %q", j, r.Decision, r.Why, want.Label, want.Reason)
		}
		var figs []string
		for _, f := range want.Figures {
			figs = append(figs, f.Model, strings.TrimRight(strings.TrimRight(formatFloat(f.NDCG10), "0"), "."))
		}
		if len(r.Figures) != len(figs) || len(figs) < 6 {
			t.Errorf("row %d: figures %v, the server's %v (want retrained, live and popularity)", j, r.Figures, figs)
		}
		for k := 0; k < len(figs) && k < len(r.Figures); k += 2 {
			if v, err := strconv.ParseFloat(r.Figures[k+1], 64); r.Figures[k] != figs[k] || err != nil || math.Abs(v-want.Figures[k/2].NDCG10) > 0.00005 {
				t.Errorf("row %d: %s %s on the page, %s %s on the server", j, r.Figures[k], r.Figures[k+1], figs[k], figs[k+1])
			}
		}
	}
	if !strings.HasPrefix(rows[0].Decision, "refused") || !strings.Contains(rows[1].Pick, "tuned: ") || rows[2].Decision != "published" {
		t.Errorf("rows %+v: want the refused bad model, the tuned retrain, the published first", rows)
	}
	if !strings.Contains(rows[2].Pick, "ν=0.5") {
		t.Errorf("the first retrain's pick %q does not show its ν 0.5", rows[2].Pick)
	}
	if c := first.BlendConfirm; c == nil || !c.Kept || !strings.Contains(rows[2].Pick, confirmText(c)) {
		t.Errorf("the first retrain's pick %q does not show its blend confirmed (%+v)", rows[2].Pick, c)
	}
	if eta := first.Blend.Neighbours; !(eta > 0) || !strings.Contains(rows[2].Pick, fmt.Sprintf("η=%v", eta)) {
		t.Errorf("the first retrain's pick %q does not show its item neighbours' η %v (want > 0 on the groups)", rows[2].Pick, eta)
	}
	checkConsole(t, ctx, b, nil)
	shotElement(t, ctx, b, "#p-model", 8, envOr("KAIROS_RETRAIN_SCREENSHOT", filepath.Join(os.TempDir(), "kairos-retrain-e2e.png")))
}

// confirmText is how the dashboard's retrain panel shows the check c of a
// kept blend: on the next events, or on validation when its t there
// spared the further split.
func confirmText(c *eval.BlendConfirmation) string {
	if c.Skipped {
		return fmt.Sprintf("prior confirmed on validation (t +%.2f)", c.T)
	}
	return fmt.Sprintf("prior confirmed (t +%.2f)", c.T)
}

func formatFloat(x float64) string {
	b, _ := json.Marshal(x)
	return string(b)
}

// TestRetrainGuardUsersFlag: `kairos retrain --guard-users N` ranks an
// even spread of N of the held-out tail's visitors, and says how many the
// tail had.
func TestRetrainGuardUsersFlag(t *testing.T) {
	dir := t.TempDir()
	importVisitors(t, filepath.Join(dir, "archive"), 400, 100)
	run := func(flags ...string) retrainJSON {
		t.Helper()
		args := append([]string{"retrain", "--dry-run", "--data-dir", dir, "--redis-url", "", "--amqp-url", "", "--item-neighbours=false"}, flags...)
		code, out, errOut := runCmd(t, args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var res retrainJSON
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); code != 0 || err != nil {
			t.Fatalf("%q: exit %d, result %q (%v), stderr %s", args, code, lines[len(lines)-1], err, errOut)
		}
		return res
	}
	all := run()
	if all.TailUsers <= 12 || all.users("retrained") != all.TailUsers {
		t.Fatalf("default bound: %d tail visitors, %d ranked; want more than 12, all ranked", all.TailUsers, all.users("retrained"))
	}
	bounded := run("--guard-users", "12")
	if bounded.TailUsers != all.TailUsers || bounded.users("retrained") != 12 || bounded.users("popularity") != 12 {
		t.Fatalf("--guard-users 12: %d tail visitors, retrained ranked on %d, popularity on %d; want 12 of %d",
			bounded.TailUsers, bounded.users("retrained"), bounded.users("popularity"), all.TailUsers)
	}
}

// retrainJSON is the part of `kairos retrain`'s result line the tests
// read.
type retrainJSON struct {
	Decision    string `json:"decision"`
	TailUsers   int    `json:"tail_users"`
	Evaluations []struct {
		Model string `json:"model"`
		Users int    `json:"users"`
	} `json:"evaluations"`
}

// users returns the users model was evaluated on (0: not evaluated).
func (r retrainJSON) users(model string) int {
	for _, e := range r.Evaluations {
		if e.Model == model {
			return e.Users
		}
	}
	return 0
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/eval"
	"github.com/kairoshq/kairos/model"
)

// evalLines runs kairos with args and returns its stdout JSON lines.
func evalLines(t *testing.T, args ...string) ([]map[string]any, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("kairos %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		lines = append(lines, m)
	}
	return lines, errb.String()
}

func TestEvalOfflineTunePrintsThePickBeforeTheTestFigures(t *testing.T) {
	state := filepath.Join(t.TempDir(), "pick.json")
	args := []string{"eval", "offline", "--synthetic", "sparse,users=300,items=400,clusters=6", "--factors", "8", "--threads", "2",
		"--tune", "--tune-budget", "0", "--tune-state", state}
	lines, stderr := evalLines(t, args...)
	kinds := []string{}
	for _, l := range lines {
		switch {
		case l["pick"] != nil:
			kinds = append(kinds, "pick")
		case l["compare"] != nil:
			kinds = append(kinds, "compare")
		case l["split"] == "validation":
			if len(kinds) == 0 || kinds[len(kinds)-1] != "trial" {
				kinds = append(kinds, "trial")
			}
		default:
			kinds = append(kinds, l["model"].(string))
		}
	}
	if strings.Join(kinds, " ") != "pop trial pick als compare" {
		t.Fatalf("lines %v, want pop, validation trials, the pick, als, the comparison", kinds)
	}
	pick, als := lines[len(lines)-3], lines[len(lines)-2]
	pp, ap := pick["params"].(map[string]any), als["params"].(map[string]any)
	if pp["lambda"] != ap["lambda"] || pp["factors"] != ap["factors"] || als["blend"] == nil || als["validation"] == nil {
		t.Fatalf("pick %v, test line %v: the test figures are the pick's, with its prior", pick, als)
	}
	if ref, _ := pick["reference_ndcg10"].(float64); ref <= 0 {
		t.Fatalf("pick %v without the defaults' validation figure", pick)
	}
	// The reference is the defaults as the untuned run fits them: the
	// half-life, ν and α choices are made and reported.
	fit, _ := pick["reference_fit"].(map[string]any)
	if fit == nil || fit["half_life_fit"] == nil || fit["item_lambda_fit"] == nil || fit["alpha_fit"] == nil || fit["params"] == nil ||
		!strings.Contains(stderr, "reference: half-life") || !strings.Contains(stderr, "reference: confidence α") {
		t.Fatalf("pick %v: want the reference's fit (half-life, ν, α); stderr %q", pick, stderr)
	}
	// The fit is reported when it ends, before the search's first trial.
	if ref, bar := strings.Index(stderr, "reference: half-life"), strings.Index(stderr, "\rtune "); bar >= 0 && ref > bar {
		t.Fatalf("the reference's fit reported after the search's progress bar began: stderr %q", stderr)
	}
	fp := fit["params"].(map[string]any)
	for _, l := range lines {
		if l["split"] == "validation" && l["confirm"] != true {
			if tp := l["params"].(map[string]any); tp["alpha"] != fp["alpha"] || tp["half_life"] != fp["half_life"] || tp["item_lambda_exponent"] != fp["item_lambda_exponent"] {
				t.Fatalf("first trial %v; want the fitted reference %v", tp, fp)
			}
			break
		}
	}
	// The best configurations raced on the second validation fold too.
	folds := map[float64]int{}
	for _, l := range lines {
		if l["split"] == "validation" && l["confirm"] == true {
			f, _ := l["fold"].(float64)
			folds[f]++
		}
	}
	if folds[1] == 0 || folds[0] == 0 || pick["confirmed"].(float64) < 2 {
		t.Fatalf("race runs by fold %v, pick confirmed %v times; want runs on both folds and a pick scored more than once", folds, pick["confirmed"])
	}
	if !strings.Contains(stderr, "\rtune ") || !strings.Contains(stderr, "best val NDCG@10") {
		t.Errorf("no progress bar on stderr: %q", stderr)
	}
	// A second run starts from the kept pick.
	lines, stderr = evalLines(t, args...)
	if !strings.Contains(stderr, "warm start from the previous pick") {
		t.Fatalf("no warm start: %q", stderr)
	}
	first := lines[1]
	if first["split"] != "validation" || first["params"].(map[string]any)["lambda"] != pp["lambda"] {
		t.Fatalf("first trial %v, want the previous pick %v", first, pp)
	}
}

func TestEvalOfflineRandomHoldoutAndBadFlags(t *testing.T) {
	lines, stderr := evalLines(t, "eval", "offline", "--synthetic", "sparse,users=200,items=300,clusters=4", "--factors", "8", "--holdout", "random", "--blend", "0.3,4")
	if len(lines) != 3 || lines[1]["blend"].(map[string]any)["prior"] != 0.3 || !strings.Contains(stderr, "holdout random") {
		t.Fatalf("lines %v, stderr %q", lines, stderr)
	}
	// PROTOCOL.md's peak RSS is on both result lines, never decreasing.
	popRSS, _ := lines[0]["peak_rss_mb"].(float64)
	alsRSS, _ := lines[1]["peak_rss_mb"].(float64)
	if runtime.GOOS == "linux" && !(popRSS > 1 && alsRSS >= popRSS) {
		t.Errorf("peak_rss_mb: popularity %v, ALS %v; want > 1 MB and not decreasing", lines[0]["peak_rss_mb"], lines[1]["peak_rss_mb"])
	}
	lines, _ = evalLines(t, "eval", "offline", "--synthetic", "sparse,users=200,items=300,clusters=4", "--factors", "8", "--blend", "0.3,4,1.5")
	if b := lines[1]["blend"].(map[string]any); b["prior"] != 0.3 || b["neighbours"] != 1.5 {
		t.Fatalf("--blend 0.3,4,1.5: blend %v", b)
	}
	for _, bad := range [][]string{
		{"--holdout", "oldest"}, {"--blend", "1.5,2"}, {"--blend", "0.2,2,-1"}, {"--blend", "0.2,2,1,4"}, {"--blend", "0.2,2,x"}, {"--tune-method", "bayes"}, {"--tune-budget", "-1s"}, {"--synthetic", "dense"}, {"--tune-clock", "sun"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"eval", "offline", "--synthetic", "sparse,users=50,items=100"}, bad...)
		if code := run(context.Background(), args, &out, &errb); code == 0 || !strings.Contains(errb.String(), strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("%v: exit %d, %q", bad, code, errb.String())
		}
	}
}

func TestEvalOfflineTuneOnTheCPUClock(t *testing.T) {
	// The budget counts CPU time per core; the search prints its pick.
	lines, _ := evalLines(t, "eval", "offline", "--synthetic", "sparse,users=300,items=400,clusters=6", "--factors", "8", "--threads", "2",
		"--tune", "--tune-budget", "2s", "--tune-clock", "cpu", "--tune-state", "off")
	var pick map[string]any
	for _, l := range lines {
		if l["pick"] != nil {
			pick = l
		}
	}
	if pick == nil {
		t.Fatalf("no pick line in %v", lines)
	}
	if s, _ := pick["search_s"].(float64); s <= 0 || pick["budget_s"] != 2.0 || pick["stopped"] == nil {
		t.Fatalf("pick %v: want a search of 2 s on the CPU clock", pick)
	}
}

// TestEvalOfflineRefusesMeaninglessSplits: data without timestamps under
// --holdout latest, and data with no user to evaluate, are errors that
// say why (not figures of zeros or of the largest item ids).
func TestEvalOfflineRefusesMeaninglessSplits(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ data, args, want string }{
		"no time column":       {"user,item\nu1,a\nu1,b\nu2,a\nu2,c\n", "", "--holdout random"},
		"one interaction each": {"user,item,time\nu1,a,1\nu2,b,2\n", "--holdout random", "no user to evaluate"},
		"header only":          {"user,item,time\n", "", "no user to evaluate"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".csv")
		if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"eval", "offline", "--data", path, "--format", "csv", "--model", "pop"}, strings.Fields(tc.args)...)
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want an error naming %q", name, code, errb.String(), tc.want)
		}
	}
	// With --holdout random the timeless data is evaluated.
	path := filepath.Join(dir, "no-time-column.csv")
	if lines, _ := evalLines(t, "eval", "offline", "--data", path, "--format", "csv", "--model", "pop", "--holdout", "random"); len(lines) != 1 {
		t.Fatalf("random holdout: %v", lines)
	}
}

// TestEvalOfflineHeaderlessCSV: a CSV file without a header line is
// refused with a pointer to --columns, and read with it.
func TestEvalOfflineHeaderlessCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ratings.csv")
	data := "A1,i1,5.0,100\nA1,i2,4.0,200\nA2,i1,3.0,100\nA2,i3,5.0,300\nA3,i1,1.0,50\nA3,i2,2.0,60\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"eval", "offline", "--data", path, "--format", "csv", "--model", "pop"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "--columns user,item,rating,time") {
		t.Errorf("without --columns: exit %d, stderr %q, want a pointer to --columns", code, errb.String())
	}
	lines, _ := evalLines(t, "eval", "offline", "--data", path, "--format", "csv", "--columns", "user,item,rating,time", "--model", "pop")
	if len(lines) != 1 || lines[0]["users"] != 3.0 {
		t.Fatalf("with --columns: %v, want popularity over 3 users", lines)
	}
}

// TestEvalOfflineConfirmsTheFittedBlend: the fitted blend of `kairos eval
// offline` is checked on a further validation split and reported as
// "blend_confirm". Where tastes drive the draws it stands without that
// split: it beat the popularity-heavy blend on validation by more than
// eval.ConfirmSkipT. On planted
// popularity-heavy logs the validation split sometimes favours a blend
// that the further split says loses to the popularity-heavy one, which
// then ranks: of seeds 3–7 below, all five were refused when this test
// was written (fold t −0.14 to −0.36); the test wants at least one, and
// every answer consistent.
func TestEvalOfflineConfirmsTheFittedBlend(t *testing.T) {
	lines, _ := evalLines(t, "eval", "offline", "--synthetic", "sparse,users=600,items=800,clusters=4,taste=0.9", "--factors", "8")
	als := lines[1]
	c, ok := als["blend_confirm"].(map[string]any)
	if !ok || c["kept"] != true || c["skipped"] != true || !(c["t"].(float64) >= eval.ConfirmSkipT) || c["users"].(float64) < 500 || als["popularity_fallback"] == true {
		t.Fatalf("taste-driven log: blend %v, confirmation %v, fallback %v; want kept without the further split, validation t ≥ %g", als["blend"], c, als["popularity_fallback"], eval.ConfirmSkipT)
	}
	refused := 0
	for seed := 3; seed <= 7; seed++ {
		lines, _ = evalLines(t, "eval", "offline", "--model", "als", "--synthetic", fmt.Sprintf("sparse,users=1500,items=6000,taste=0.2,seed=%d", seed))
		als = lines[0]
		b := als["blend"].(map[string]any)
		heavy := b["prior"] == 0.99 && b["kappa"] == 128.0 && b["neighbours"] == nil
		c, ok := als["blend_confirm"].(map[string]any)
		switch {
		case !ok && !heavy:
			t.Errorf("seed %d: the fitted blend %v was not checked", seed, b)
		case ok && c["kept"] == false && (!heavy || !(c["t"].(float64) < 0) || als["popularity_fallback"] != true):
			t.Errorf("seed %d: refused (t %v) but ranks with %v, popularity_fallback %v", seed, c["t"], b, als["popularity_fallback"])
		case ok && c["kept"] == true && (heavy || c["t"].(float64) < 0):
			t.Errorf("seed %d: kept %v at t %v", seed, b, c["t"])
		case ok && c["skipped"] == true:
			t.Errorf("seed %d: a popularity-heavy log's blend %v skipped the further split (validation t %v)", seed, b, c["t"])
		case ok && c["kept"] == false:
			refused++
		}
	}
	if refused == 0 {
		t.Error("no fitted blend of the five popularity-heavy logs was refused on the further split")
	}
}

// TestEvalOfflineThin: --thin keeps at most N interactions per user
// before the split (the loaded line counts what is left, the held-out
// users all stay) and refuses fewer than 2.
func TestEvalOfflineThin(t *testing.T) {
	args := []string{"eval", "offline", "--synthetic", "sparse,users=300,items=400,clusters=6,per_user=20", "--model", "pop"}
	_, full := evalLines(t, args...)
	lines, thin := evalLines(t, append(args, "--thin", "4", "--thin-seed", "3")...)
	var users, items, train, fullTrain int
	if _, err := fmt.Sscanf(thin, "loaded %d users, %d items, %d training", &users, &items, &train); err != nil {
		t.Fatalf("stderr %q: %v", thin, err)
	}
	if _, err := fmt.Sscanf(full, "loaded %d users, %d items, %d training", new(int), new(int), &fullTrain); err != nil {
		t.Fatalf("stderr %q: %v", full, err)
	}
	// 300 users with at least 2 interactions each keep 4 at most, one
	// held out: at most 3 each in training.
	if users != 300 || train > 3*300 || train < 300 || fullTrain <= 3*300 {
		t.Fatalf("--thin 4: %d users, %d training interactions (%d without --thin), want 300 users and 300–900", users, train, fullTrain)
	}
	if lines[0]["users"] != 300.0 {
		t.Fatalf("--thin 4: %v, want 300 users evaluated", lines[0])
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(args, "--thin", "1"), &out, &errb); code == 0 || !strings.Contains(errb.String(), "--thin") {
		t.Errorf("--thin 1: exit %d, stderr %q, want an error naming --thin", code, errb.String())
	}
}

// TestEvalOfflineTunedPickIsConfirmedOnAFoldTheSearchNeverSaw: the
// search races its best configurations on the first further fold, so a
// tuned pick is checked against popularity on the second (each user's
// fourth latest interaction), an untuned fit on the first. The confirming
// split is told by its users: a user needs 5 interactions to hold one
// out in the second fold, 4 in the first.
func TestEvalOfflineTunedPickIsConfirmedOnAFoldTheSearchNeverSaw(t *testing.T) {
	ran := 0
	for _, taste := range []string{"0.3", "0.5"} {
		synth := "sparse,users=600,items=400,clusters=4,taste=" + taste
		_, _, folds := syntheticSplits(t, synth)
		first, second := evaluable(folds[0]), evaluable(folds[1])
		if first == second {
			t.Fatalf("taste %s: both folds hold %d users; the test cannot tell them apart", taste, first)
		}
		for _, tc := range []struct {
			args []string
			want int
		}{
			{nil, first},
			{[]string{"--tune", "--tune-budget", "2s", "--tune-state", "off"}, second},
		} {
			lines, _ := evalLines(t, append([]string{"eval", "offline", "--synthetic", synth, "--factors", "8"}, tc.args...)...)
			als := lines[len(lines)-2]
			if tc, ok := als["tuned_check"].(map[string]any); ok && tc["users"] != float64(second) {
				t.Errorf("taste %s: the pick held against the defaults on %v users, want the second fold's %d", taste, tc["users"], second)
			}
			c, _ := als["blend_confirm"].(map[string]any)
			if c == nil || c["skipped"] == true {
				continue // no confirming split ranked: the pick is popularity-heavy, or far ahead
			}
			ran++
			if c["users"] != float64(tc.want) {
				t.Errorf("taste %s %v: confirmed on %v users, want %d (folds: %d, %d)", taste, tc.args, c["users"], tc.want, first, second)
			}
		}
	}
	if ran < 2 {
		t.Fatalf("%d of 4 runs confirmed their blend on a further split, want at least 2", ran)
	}
}

// TestCheckTunedHandsBackTheDefaultsForAWorsePick: a tuned pick that is
// worse than the defaults on the split nothing was chosen on (here a
// crippled one: 1 factor, λ 1000) gives way to them, and the result is
// the defaults' (their parameters, their better figures, the check
// attached, nothing kept as the previous pick).
func TestCheckTunedHandsBackTheDefaultsForAWorsePick(t *testing.T) {
	ctx := context.Background()
	test, val, folds := syntheticSplits(t, "sparse,users=1500,items=1000,clusters=10,taste=0.7")
	check := folds[1]
	good := model.DefaultParams()
	good.Threads = 2
	bad := good
	bad.Factors, bad.Lambda = 1, 1000
	grid := eval.TunedBlendGrid()
	als, err := eval.OfflineBlended(ctx, test, val, &check, bad, grid, time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	pick := searchPick{params: bad, trial: &eval.BlendTrial{}, reference: &good}
	var stderr bytes.Buffer
	got, err := checkTuned(ctx, test, val, &check, &pick, als, grid, time.Second, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	c := got.TunedCheck
	if c == nil || c.Kept || c.Users != evaluable(check) {
		t.Fatalf("check %+v, want the pick refused on the %d users of the check split", c, evaluable(check))
	}
	if pick.params != good || pick.trial != nil || got.Params.(model.Params) != good || !(got.NDCG10 > als.NDCG10) {
		t.Fatalf("after the check: pick %+v (trial %v), result %+v NDCG@10 %.4f (the pick's %.4f); want the defaults' result", pick.params, pick.trial, got.Params, got.NDCG10, als.NDCG10)
	}
	if !strings.Contains(stderr.String(), "the defaults rank") {
		t.Errorf("stderr %q does not say the defaults rank", stderr.String())
	}
}

// syntheticSplits returns the test and validation splits of the planted
// log of --synthetic synth, as `kairos eval offline` makes them, and its
// two further folds (eval.Holdout.Folds).
func syntheticSplits(t *testing.T, synth string) (test, val eval.Split, folds []eval.Split) {
	t.Helper()
	cfg, err := parseSynthetic(synth)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := eval.Sparse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds := eval.Build(recs, eval.WeightOne)
	h, _ := eval.NewHoldout(eval.HoldoutLatest)
	test = h.Split(len(ds.Users), len(ds.Items), ds.Interactions)
	val = h.Validation(test)
	return test, val, h.Folds(test, val, 2)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runKairos runs the kairos command line in-process and returns stdout,
// stderr and the exit code.
func runKairos(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvalABTestCommand(t *testing.T) {
	in := writeTemp(t, "exp.json", `{"metric":"conversion","alpha":0.05,"tuning":5000,"variants":[
		{"name":"A","weight":0.5,"users":1000,"conversions":100},
		{"name":"B","weight":0.5,"users":1000,"conversions":120}]}`)
	out, stderr, code := runKairos(t, "eval", "abtest", "-in", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want one JSON line, got %q", out)
	}
	var r struct {
		Variants []map[string]any `json:"variants"`
		SRMP     float64          `json:"srm_p_value"`
		SRMFlag  bool             `json:"srm_flag"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "users", "rate", "wilson_low", "wilson_high", "chance_to_win", "bandit_weight"} {
		if _, ok := r.Variants[0][k]; !ok {
			t.Errorf("control lacks %q", k)
		}
	}
	for _, k := range []string{"diff", "diff_low", "diff_high", "lift", "lift_low", "lift_high", "z", "p_value", "p_value_holm",
		"seq_low", "seq_high", "seq_p_value", "always_valid_p_value", "expected_loss"} {
		if _, ok := r.Variants[1][k]; !ok {
			t.Errorf("variant lacks %q", k)
		}
	}
	// R: prop.test(c(120, 100), c(1000, 1000), correct = FALSE)$p.value.
	if p := r.Variants[1]["p_value"].(float64); math.Abs(p-0.1529177818639457) > 1e-12 {
		t.Errorf("p_value %v", p)
	}

	for _, c := range []struct{ name, json, want string }{
		{"invalid counts", `{"variants":[{"name":"A","users":1000,"conversions":100},{"name":"B","users":1000,"conversions":1200}]}`,
			"variants[1].conversions: 1200 > users 1000"},
		{"unknown field", `{"variants":[{"name":"A","users":10,"conversion":1}]}`, `unknown field "conversion"`},
		{"not JSON", `users=10`, "read experiment"},
		{"null (jq .input of an error answer)", `null`, "the input is null, not an experiment"},
		{"empty", ``, "the input is empty"},
		{"not an object", `[{"name":"A"}]`, "expected a JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runKairos(t, "eval", "abtest", "-in", writeTemp(t, "bad.json", c.json))
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q, want error containing %q", code, stderr, c.want)
			}
		})
	}
}

func TestEvalOffPolicyCommand(t *testing.T) {
	log := `{"propensity":0.5,"reward":1,"target":0.25}
{"propensity":0.25,"reward":0,"target":0.5}

{"propensity":0.25,"reward":2,"target":0.25}
`
	out, stderr, code := runKairos(t, "eval", "offpolicy", "-in", writeTemp(t, "log.jsonl", log))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var e struct {
		IPS, SNIPS float64
		N          int
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatal(err)
	}
	// w = 0.5, 2, 1; IPS = (0.5·1 + 0 + 1·2)/3, SNIPS = 2.5/3.5.
	if e.N != 3 || math.Abs(e.IPS-2.5/3) > 1e-15 || math.Abs(e.SNIPS-2.5/3.5) > 1e-15 {
		t.Errorf("estimate %+v", e)
	}
	_, stderr, code = runKairos(t, "eval", "offpolicy", "-in", writeTemp(t, "bad.jsonl", `{"propensity":0.5,"reward":1,"target":0.5}
{"propensity":0,"reward":1,"target":0.5}`))
	if code == 0 || !strings.Contains(stderr, "line 2: propensity: 0 not in (0, 1]") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	// A missing field is not 0, an empty log no estimate, an overflow no
	// null; a byte order mark is skipped.
	for name, tc := range map[string]struct{ log, want string }{
		"missing":  {`{"propensity":0.5,"reward":1}`, "line 1: target: missing"},
		"empty":    {"\n", "holds no decision"},
		"overflow": {`{"propensity":0.5,"reward":1e308,"target":1}` + "\n" + `{"propensity":0.5,"reward":1e308,"target":1}`, "overflows"},
	} {
		if _, stderr, code := runKairos(t, "eval", "offpolicy", "-in", writeTemp(t, name+".jsonl", tc.log)); code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr)
		}
	}
	if _, stderr, code := runKairos(t, "eval", "offpolicy", "-in", writeTemp(t, "bom.jsonl", "\ufeff"+`{"propensity":0.5,"reward":1,"target":1}`)); code != 0 {
		t.Errorf("BOM: exit %d, stderr %q", code, stderr)
	}
}

func TestBenchABTestSmall(t *testing.T) {
	// A small, seeded version of `kairos bench abtest`: 1,000 A/A experiments
	// of 4,000 visitors with a look every 100 (40 looks), and 40 bandit runs.
	out, stderr, code := runKairos(t, "bench", "abtest", "-experiments", "1000", "-horizon", "4000", "-ab-horizon", "20000",
		"-bandit-runs", "40", "-bandit-visitors", "4000", "-seed", "11")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	type peeking struct {
		SeqRate   float64 `json:"sequential_reject_rate"`
		NaiveRate float64 `json:"naive_reject_rate"`
		FixedRate float64 `json:"fixed_horizon_reject_rate"`
		SE        float64 `json:"rate_std_err"`
		MeanStop  float64 `json:"sequential_mean_stop"`
	}
	type bandit struct {
		T float64 `json:"thompson_regret"`
		F float64 `json:"fixed_regret"`
	}
	lines := map[string]json.RawMessage{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l struct {
			Sim    string          `json:"sim"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines[l.Sim] = l.Result
	}
	var aa, ab peeking
	var bd bandit
	for name, dst := range map[string]any{"aa": &aa, "ab": &ab, "bandit": &bd} {
		if err := json.Unmarshal(lines[name], dst); err != nil {
			t.Fatalf("%s: %v (output %q)", name, err, out)
		}
	}
	t.Logf("A/A: sequential %.3f, naive %.3f, fixed %.3f; A/B power %.3f, mean stop %.0f; regret thompson %.1f fixed %.1f",
		aa.SeqRate, aa.NaiveRate, aa.FixedRate, ab.SeqRate, ab.MeanStop, bd.T, bd.F)
	// The sequential test keeps its false-positive rate at α under
	// peeking, within 2 Monte Carlo standard errors; the naive z test does
	// not (with 40 looks it is far above 10 %).
	if aa.SeqRate > 0.05+2*aa.SE {
		t.Errorf("sequential A/A false-positive rate %.3f > 5 %% + 2 SE", aa.SeqRate)
	}
	if aa.NaiveRate < 0.10 {
		t.Errorf("naive repeated z test false-positive rate %.3f, expected clearly above 5 %%", aa.NaiveRate)
	}
	if ab.SeqRate <= aa.SeqRate || ab.MeanStop >= 20000 {
		t.Errorf("A/B: power %.3f, mean stop %.0f", ab.SeqRate, ab.MeanStop)
	}
	if !(bd.T < bd.F/2) {
		t.Errorf("Thompson regret %.1f not well below fixed %.1f", bd.T, bd.F)
	}
}

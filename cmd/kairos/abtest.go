package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kairoshq/kairos/eval/abtest"
)

func init() {
	register(command{
		name:    "eval abtest",
		summary: "analyse one A/B experiment's counts (JSON on stdin): tests, intervals, sequential and Bayesian results, SRM",
		run:     runEvalABTest,
	})
	register(command{
		name:    "eval offpolicy",
		summary: "IPS and self-normalised IPS value of a target policy from a decision log (JSON lines on stdin)",
		run:     runEvalOffPolicy,
	})
	register(command{
		name:    "bench abtest",
		summary: "simulate peeking (A/A false positives, A/B power) and Thompson-sampling regret",
		run:     runBenchABTest,
	})
}

// abtestOpen opens path for reading, "-" meaning standard input.
func abtestOpen(path string) (io.ReadCloser, error) {
	if path == "-" || path == "" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(path)
}

// parseInput parses args (no positional ones) and opens the file of
// --in (inPath).
func parseInput(fs *flag.FlagSet, args []string, inPath *string) (io.ReadCloser, error) {
	if err := parseNoArgs(fs, args); err != nil {
		return nil, err
	}
	return abtestOpen(*inPath)
}

func runEvalABTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval abtest", stderr)
	inPath := fs.String("in", "-", "experiment JSON file (- = stdin): "+
		`{"metric":"conversion"|"revenue","alpha":0.05,"tuning":5000,"variants":[{"name":"A","weight":0.5,"users":1000,"conversions":100,"sum":0,"sum_squares":0},…]}`)
	f, err := parseInput(fs, args, inPath)
	if err != nil {
		return err
	}
	defer f.Close()
	in, err := readABTestInput(f)
	if err != nil {
		return err
	}
	r, err := abtest.Analyze(in)
	if err != nil {
		return err
	}
	return writeJSON(stdout, r)
}

func runEvalOffPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval offpolicy", stderr)
	inPath := fs.String("in", "-", `decision log, one JSON object per line (- = stdin): {"propensity":p,"reward":r,"target":q}`)
	f, err := parseInput(fs, args, inPath)
	if err != nil {
		return err
	}
	defer f.Close()
	var o abtest.OffPolicy
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if line%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		if len(b) == 0 {
			continue
		}
		d, err := decodeDecision(b)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := o.Add(d); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read decision log: %w", err)
	}
	if n == 0 {
		return errors.New("the decision log holds no decision")
	}
	e := o.Estimate()
	if math.IsInf(float64(e.IPS), 0) || math.IsNaN(float64(e.IPS)) {
		return errors.New("the estimate overflows: rewards or weights too large for float64")
	}
	return writeJSON(stdout, e)
}

// decodeDecision reads one line of a decision log: every field present
// (a missing one is not taken as 0).
func decodeDecision(b []byte) (abtest.Decision, error) {
	var v struct {
		Propensity, Reward, Target *float64
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return abtest.Decision{}, err
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"propensity", v.Propensity}, {"reward", v.Reward}, {"target", v.Target}} {
		if f.v == nil {
			return abtest.Decision{}, fmt.Errorf("%s: missing", f.name)
		}
	}
	return abtest.Decision{Propensity: *v.Propensity, Reward: *v.Reward, Target: *v.Target}, nil
}

// abtestRates parses a comma-separated list of rates.
func abtestRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("rate %q: %w", f, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func runBenchABTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench abtest", stderr)
	experiments := fs.Int("experiments", 2000, "simulated experiments per peeking scenario")
	horizon := fs.Int("horizon", 10000, "visitors per A/A experiment")
	abHorizon := fs.Int("ab-horizon", 100000, "visitors per A/B experiment")
	peek := fs.Int("peek", 100, "visitors between looks")
	rate := fs.Float64("rate", 0.10, "base conversion rate")
	lift := fs.Float64("lift", 0.10, "true relative lift of B in the A/B scenario")
	alpha := fs.Float64("alpha", abtest.DefaultAlpha, "significance level")
	tuning := fs.Float64("tuning", abtest.DefaultTuning, "sequential tuning parameter N*")
	runs := fs.Int("bandit-runs", 200, "bandit runs")
	visitors := fs.Int("bandit-visitors", 10000, "visitors per bandit run")
	rates := fs.String("bandit-rates", "0.10,0.12", "true conversion rates of the bandit arms (2 to 4; the highest is the best arm)")
	every := fs.Int("bandit-every", 100, "visitors between Thompson re-weightings")
	floor := fs.Float64("floor", abtest.DefaultFloor, "Thompson weight floor")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	br, err := abtestRates(*rates)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	type line struct {
		Bench   string  `json:"bench"`
		Sim     string  `json:"sim"`
		Seconds float64 `json:"seconds"`
		Note    string  `json:"note"`
		Result  any     `json:"result"`
	}
	emit := func(sim string, start time.Time, res any, note string) error {
		return enc.Encode(line{Bench: "abtest", Sim: sim, Seconds: time.Since(start).Seconds(), Note: note, Result: res})
	}
	for i, sc := range []struct {
		name    string
		horizon int
		lift    float64
		note    string
	}{
		{"aa", *horizon, 0, "A/A: every rejection is a false positive; sequential_reject_rate must stay <= alpha, naive_reject_rate is the peeking mistake"},
		{"ab", *abHorizon, *lift, "A/B with a real lift: reject rates are power; sequential_mean_stop is the average visitors used"},
	} {
		start := time.Now()
		fmt.Fprintf(stderr, "bench abtest: %s: %d experiments of %d visitors, a look every %d\n", sc.name, *experiments, sc.horizon, *peek)
		res, err := abtest.SimulatePeeking(ctx, abtest.PeekingConfig{
			Experiments: *experiments, Horizon: sc.horizon, PeekEvery: *peek, BaseRate: *rate, Lift: sc.lift,
			Alpha: *alpha, Tuning: *tuning, Seed: *seed + uint64(i),
		})
		if err != nil {
			return err
		}
		if err := emit(sc.name, start, res, sc.note); err != nil {
			return err
		}
	}
	start := time.Now()
	fmt.Fprintf(stderr, "bench abtest: bandit: %d runs of %d visitors, rates %v\n", *runs, *visitors, br)
	res, err := abtest.SimulateBandit(ctx, abtest.BanditConfig{
		Runs: *runs, Visitors: *visitors, Rates: br, UpdateEvery: *every, Floor: *floor, Seed: *seed + 2,
	})
	if err != nil {
		return err
	}
	return emit("bandit", start, res, "regret = expected conversions lost against always showing the best arm")
}

// readABTestInput reads one experiment object, telling an empty input, a
// null (what `jq .input` makes of an error answer) and a value that is
// not an object apart from a malformed experiment.
func readABTestInput(r io.Reader) (abtest.Input, error) {
	var in abtest.Input
	var raw json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return in, errors.New("read experiment: the input is empty: expected one JSON object with metric and variants")
		}
		return in, fmt.Errorf("read experiment: %w", err)
	}
	switch t := bytes.TrimSpace(raw); {
	case bytes.Equal(t, []byte("null")):
		return in, errors.New("read experiment: the input is null, not an experiment (did the results request fail? `jq .input` prints null for an error answer)")
	case len(t) == 0 || t[0] != '{':
		return in, fmt.Errorf("read experiment: expected a JSON object with metric and variants, got %.40s", t)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, fmt.Errorf("read experiment: %w", err)
	}
	return in, nil
}

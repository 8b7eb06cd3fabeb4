package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/kairoshq/kairos/eval"
)

func init() {
	register(command{
		name:    "eval stream",
		summary: "prequential (test-then-learn) evaluation: static vs real-time fold-in vs popularity",
		run:     runEvalStream,
	})
}

func runEvalStream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval stream", stderr)
	var ef evalFlags
	ef.register(fs)
	warmup := fs.Float64("warmup", 0.5, "share of interactions (by time) to train on before streaming")
	modes := fs.String("modes", "static,foldin,pop", "comma-separated modes: static, foldin, pop (all-time popularity), trending (the engine's 24-hour trending; trending=720h for another half-life)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ef.check(); err != nil {
		return err
	}
	if !(*warmup > 0 && *warmup < 1) {
		return fmt.Errorf("--warmup %v: want a share in (0, 1)", *warmup)
	}
	df, p := ef.datasetFlags, ef.params
	ds, unit, err := df.load()
	if err != nil {
		return err
	}
	if len(ds.Interactions) < 2 {
		return fmt.Errorf("%d interactions: nothing to stream after a warm-up", len(ds.Interactions))
	}
	fmt.Fprintf(stderr, "loaded %d users, %d items, %d interactions; warm-up %.0f%%\n", len(ds.Users), len(ds.Items), len(ds.Interactions), *warmup*100)
	res, err := eval.Prequential(ctx, ds, *warmup, p, unit, strings.Split(*modes, ","))
	if err != nil {
		return err
	}
	return writeJSONLines(stdout, res)
}

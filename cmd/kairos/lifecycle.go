package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"
)

// A component is one long-running part of `kairos serve` (the HTTP
// server, the engine, a reload loop, the profiler). Run runs until ctx is
// done, then stops (finishing what it must) and returns nil; an error, or
// a return before ctx is done, ends the whole server.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// lifecycle runs components in one errgroup and stops them in stages:
// every component of a stage returns before the next stage's context is
// cancelled. All components start together (no stage waits for another to
// start); the order only applies to stopping.
//
// The server stops when the parent context is done (SIGINT/SIGTERM) or a
// component fails; either cancels stage 0, and each later stage is
// cancelled once the previous one has fully returned. The first error (a
// component's, wrapped with its name) is logged and returned.
type lifecycle struct {
	log    *slog.Logger
	stages [][]component
}

// stage appends a stage of components (stopped after those added before).
// Nil components (features switched off) are skipped.
func (l *lifecycle) stage(cs ...component) {
	var s []component
	for _, c := range cs {
		if c.run != nil {
			s = append(s, c)
		}
	}
	l.stages = append(l.stages, s)
}

// errStopped is a component's error when it returned nil before being
// asked to stop.
var errStopped = errors.New("stopped unexpectedly")

// Run starts every component and returns when all have returned.
func (l *lifecycle) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	prevDone := gctx.Done() // stage 0 stops with the group
	for _, s := range l.stages {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		wg.Add(len(s))
		for _, c := range s {
			g.Go(func() error {
				defer wg.Done()
				return l.runOne(ctx, sctx, c)
			})
		}
		// The stage stops once the previous one is done; it is done when
		// stopped and every component of it has returned.
		done := make(chan struct{})
		prev := prevDone
		g.Go(func() error {
			<-prev
			cancel()
			wg.Wait()
			close(done)
			return nil
		})
		prevDone = done
	}
	return g.Wait()
}

// runOne runs c with ctx and names its error.
func (l *lifecycle) runOne(parent, ctx context.Context, c component) error {
	err := c.run(ctx)
	switch {
	case err == nil && ctx.Err() == nil:
		err = errStopped
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		err = nil
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", c.name, err)
	l.log.LogAttrs(context.WithoutCancel(parent), slog.LevelError, "component failed", slog.String("component", c.name), slog.Any("err", err))
	return err
}

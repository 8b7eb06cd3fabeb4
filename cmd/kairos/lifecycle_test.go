package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
)

// stopLog records the order components stop in.
type stopLog struct {
	mu    sync.Mutex
	order []string
}

func (s *stopLog) add(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = append(s.order, name)
}

// waiter is a component that runs until asked to stop, checking that
// the components it must outlive have stopped first.
func (s *stopLog) waiter(t *testing.T, name string, after ...string) component {
	return component{name, func(ctx context.Context) error {
		<-ctx.Done()
		s.mu.Lock()
		for _, a := range after {
			if !slices.Contains(s.order, a) {
				t.Errorf("%s stopped before %s", name, a)
			}
		}
		s.mu.Unlock()
		s.add(name)
		return nil
	}}
}

// TestLifecycleStopsInStages checks that a lifecycle stops its stages in
// order, each after the previous one has returned, whether it ends by
// its context or by a failing component, and returns the failure named
// after its component.
func TestLifecycleStopsInStages(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		failing bool
	}{{"cancelled", false}, {"failing component", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var log stopLog
			l := &lifecycle{log: slog.New(slog.DiscardHandler)}
			l.stage(log.waiter(t, "http"))
			l.stage(component{}) // a feature switched off
			stage1 := []component{log.waiter(t, "engine", "http"), log.waiter(t, "retrain", "http")}
			started := make(chan struct{})
			if tc.failing {
				stage1 = append(stage1, component{"pprof", func(ctx context.Context) error {
					<-started
					return boom
				}})
			}
			l.stage(stage1...)
			l.stage()
			l.stage(log.waiter(t, "promo", "http", "engine", "retrain"), log.waiter(t, "experiments", "http", "engine", "retrain"))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			if tc.failing {
				close(started)
			} else {
				cancel()
			}
			err := <-done
			if tc.failing && (!errors.Is(err, boom) || err.Error() != "pprof: boom") {
				t.Errorf("Run = %v, want pprof: boom", err)
			}
			if !tc.failing && err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if len(log.order) != 5 {
				t.Errorf("stopped %v, want all five", log.order)
			}
		})
	}
}

// TestLifecycleUnexpectedStop checks that a component returning nil
// before being asked to stop ends the server with an error naming it.
func TestLifecycleUnexpectedStop(t *testing.T) {
	var log stopLog
	l := &lifecycle{log: slog.New(slog.DiscardHandler)}
	l.stage(log.waiter(t, "http"))
	l.stage(component{"engine", func(context.Context) error { return nil }})
	err := l.Run(t.Context())
	if !errors.Is(err, errStopped) || !strings.HasPrefix(err.Error(), "engine: ") {
		t.Fatalf("Run = %v, want engine: %v", err, errStopped)
	}
	if !slices.Equal(log.order, []string{"http"}) {
		t.Errorf("stopped %v, want [http]", log.order)
	}
}

// TestServeStages pins the stop order of kairos serve's components.
func TestServeStages(t *testing.T) {
	cfg, err := parseServeConfig([]string{"--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", "",
		"--secret-key", "sk_test_0123456789abcdef", "--publishable-key", "pk_test_0123456789abcdef",
		"--retrain-every", "1h", "--pprof-addr", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(t.Context(), cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var got [][]string
	for _, s := range a.lifecycle(nil).stages {
		var names []string
		for _, c := range s {
			names = append(names, c.name)
		}
		got = append(got, names)
	}
	want := [][]string{{"http"}, {"engine", "retrain", "pprof"}, {"promo", "experiments"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("stages %v, want %v", got, want)
	}
}

// TestServeBusyPprofAddress starts kairos serve with the profiler on a
// busy address: the server, already serving, must stop with the
// profiler's listen error, logged and returned.
func TestServeBusyPprofAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	code, _, stderr := runCmd(t, "serve", "--addr", "127.0.0.1:0", "--pprof-addr", addr, "--data-dir", t.TempDir(), "--amqp-url", "", "--redis-url", "",
		"--secret-key", "sk_test_0123456789abcdef", "--publishable-key", "pk_test_0123456789abcdef", "--log-level", "error")
	want := "pprof: listen: listen tcp " + addr
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("serve with a busy profiler address: exit %d, stderr %q; want 1 and %q… address already in use", code, stderr, want)
	}
	if !strings.Contains(stderr, `"component failed"`) && !strings.Contains(stderr, "component failed") {
		t.Errorf("the failure is not logged: %q", stderr)
	}
}

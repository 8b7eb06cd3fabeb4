package batchwrite

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestWriter(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := New(Config{
		Timeout: time.Minute, Logger: slog.New(slog.DiscardHandler), Failed: "not written",
		Deltas: prometheus.CounterOpts{Name: "d_total", Help: "d"}, Errors: prometheus.CounterOpts{Name: "e_total", Help: "e"},
		Skipped: prometheus.CounterOpts{Name: "s_total", Help: "s"}, Write: prometheus.HistogramOpts{Name: "w_seconds", Help: "w"},
		Registerer: reg,
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the write runs although the batch's context is cancelled
	var sawErr error
	w.Write(ctx, 3, func(wctx context.Context) error { sawErr = wctx.Err(); return nil })
	if sawErr != nil {
		t.Fatalf("write context: %v, want live", sawErr)
	}
	w.Write(ctx, 5, func(context.Context) error { return errors.New("down") })
	w.Skip(0)
	w.Skip(2)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if h := m.GetHistogram(); h != nil {
			got[mf.GetName()] = float64(h.GetSampleCount())
		} else {
			got[mf.GetName()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"d_total": 3, "e_total": 1, "s_total": 2, "w_seconds": 2}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
}

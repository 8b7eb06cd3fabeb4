package offline

import (
	"fmt"
	"io"
	"time"
)

// progress writes a one-line progress display (carriage returns) to a
// terminal or log; a nil writer disables it.
type progress struct {
	w     io.Writer
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

// read reports the number of events read so far (at most 4 times a second).
func (p *progress) read(n int) {
	if p.w == nil || time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "\rreading archive: %d events (%.0f/s)   ", n, float64(n)/max(el, 1e-9))
}

// iteration reports a training sweep with an ETA.
func (p *progress) iteration(what string, it, total int, start time.Time) {
	if p.w == nil {
		return
	}
	el := time.Since(start)
	eta := time.Duration(float64(el) / float64(it) * float64(total-it))
	fmt.Fprintf(p.w, "\r%s: iteration %d/%d, ETA %s        ", what, it, total, eta.Round(100*time.Millisecond))
	if it == total {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) done() {
	if p.w != nil {
		fmt.Fprintf(p.w, "retrain done in %s\n", time.Since(p.start).Round(time.Millisecond))
	}
}

// line writes a line of its own.
func (p *progress) line(s string) {
	if p.w != nil {
		fmt.Fprintln(p.w, s)
	}
}

// Command testfmt turns the JSON stream of `go test -json` (stdin) into one
// line per package as soon as that package finishes, the output of every
// failed test and build, a note every minute naming the packages still
// running, and a closing summary. scripts/test.sh runs it; it exits 1 when
// any package failed or when the stream held no package.
//
//	go test -json ./... | go run ./scripts/testfmt -summary /tmp/summary.txt
//
// `go test` alone prints a package's line only after every package listed
// before it has finished, so one slow package hides the progress of the
// others; with -json it streams, and this program prints what a person
// needs from it. Standard library only: nothing to install.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	summaryPath := flag.String("summary", "", "also write the closing summary lines to this file")
	every := flag.Duration("heartbeat", time.Minute, "name the packages still running this often (0: never)")
	since := flag.Int64("since", 0, "Unix time (seconds) that the [+time] stamps count from (0: now), e.g. the start of scripts/test.sh")
	flag.Parse()
	start := time.Now()
	if *since > 0 {
		start = time.Unix(*since, 0)
	}
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr, *summaryPath, *every, start))
}

// run formats the stream in and returns the exit code; the stamps count
// from start.
func run(in io.Reader, stdout, stderr io.Writer, summaryPath string, every time.Duration, start time.Time) int {
	r := newReport(stdout, time.Now)
	r.start = start
	stop := r.heartbeat(every)
	err := r.read(in)
	stop()
	summary := r.summary()
	fmt.Fprint(stdout, summary)
	if summaryPath != "" {
		if werr := os.WriteFile(summaryPath, []byte(summary), 0o644); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "testfmt: %v\n", err)
		return 1
	}
	if !r.ok() {
		return 1
	}
	return 0
}

// event is one line of `go test -json` (cmd/test2json), build events
// included.
type event struct {
	Time        time.Time
	Action      string
	Package     string
	ImportPath  string // build-output and build-fail events
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

// pkg is what is known of one package's run.
type pkg struct {
	started time.Time
	output  []string            // package-level output
	tests   map[string][]string // output per test, framing lines removed
	failed  []string            // failed tests, in the order they failed
	running []string            // tests started and not ended, in start order
	counts  counts              // top-level tests
}

// counts are tests (or packages) by outcome.
type counts struct{ passed, failed, skipped int }

// report accumulates the stream and prints as packages finish.
type report struct {
	mu    sync.Mutex
	w     io.Writer
	now   func() time.Time
	start time.Time
	pkgs  map[string]*pkg
	build map[string][]string // build output by import path
	// packages by outcome; noTests counts packages without test files.
	packages counts
	noTests  int
	tests    counts
}

func newReport(w io.Writer, now func() time.Time) *report {
	return &report{w: w, now: now, start: now(), pkgs: map[string]*pkg{}, build: map[string][]string{}}
}

// read consumes the stream until EOF.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // a test may print long lines
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Not an event (e.g. a go command error on stdout): show it.
			r.mu.Lock()
			fmt.Fprintf(r.w, "%s\n", line)
			r.mu.Unlock()
			continue
		}
		r.handle(ev)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the go test stream: %w", err)
	}
	return nil
}

func (r *report) handle(ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Action {
	case "build-output":
		r.build[ev.ImportPath] = append(r.build[ev.ImportPath], ev.Output)
		return
	case "build-fail":
		return // reported with the package whose FailedBuild names it
	}
	p := r.pkg(ev.Package)
	if ev.Test != "" {
		r.testEvent(p, ev)
		return
	}
	switch ev.Action {
	case "start":
		p.started = r.now()
	case "output":
		p.output = append(p.output, ev.Output)
	case "pass", "fail", "skip":
		r.finish(ev, p)
	}
}

func (r *report) pkg(name string) *pkg {
	p, ok := r.pkgs[name]
	if !ok {
		p = &pkg{tests: map[string][]string{}}
		r.pkgs[name] = p
	}
	return p
}

func (r *report) testEvent(p *pkg, ev event) {
	switch ev.Action {
	case "run":
		p.running = append(p.running, ev.Test)
	case "output":
		if !framing(ev.Output) {
			p.tests[ev.Test] = append(p.tests[ev.Test], ev.Output)
		}
	case "pass", "fail", "skip":
		p.running = slices.DeleteFunc(p.running, func(name string) bool { return name == ev.Test })
		if ev.Action == "fail" {
			p.failed = append(p.failed, ev.Test)
		}
		if strings.Contains(ev.Test, "/") {
			return // subtests are not counted
		}
		switch ev.Action {
		case "pass":
			p.counts.passed++
		case "fail":
			p.counts.failed++
		case "skip":
			p.counts.skipped++
		}
	}
}

// framing tells the lines that -json's verbose mode adds around every
// test; a failing test is shown without them, as plain `go test` does.
func framing(s string) bool {
	for _, prefix := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// finish prints a package's line, and on failure what went wrong.
func (r *report) finish(ev event, p *pkg) {
	defer delete(r.pkgs, ev.Package)
	r.tests.passed += p.counts.passed
	r.tests.failed += p.counts.failed
	r.tests.skipped += p.counts.skipped
	at := r.stamp()
	switch {
	case ev.Action == "skip" || ev.Action == "pass" && noTestFiles(p.output):
		r.noTests++ // "[no test files]": nothing to say per package
	case ev.Action == "pass":
		r.packages.passed++
		fmt.Fprintf(r.w, "%s ok    %-54s %7.1fs  %s\n", at, ev.Package, ev.Elapsed, p.counts.describe())
	default:
		r.packages.failed++
		fmt.Fprintf(r.w, "%s FAIL  %-54s %7.1fs  %s\n", at, ev.Package, ev.Elapsed, p.describe())
		r.printFailure(ev, p)
	}
}

func noTestFiles(out []string) bool {
	return slices.ContainsFunc(out, func(s string) bool { return strings.Contains(s, "[no test files]") })
}

// printFailure prints the build output of a failed build, the output of
// each failed test, that of each test the binary died in (a fatal runtime
// error such as a concurrent map write, a signal, os.Exit: test2json
// gives such a test no end, and the reason is its last output line) and
// the package-level output (timeouts).
func (r *report) printFailure(ev event, p *pkg) {
	var b strings.Builder
	if ev.FailedBuild != "" {
		for _, l := range r.build[ev.FailedBuild] {
			b.WriteString(l)
		}
	}
	for _, t := range p.failed {
		for _, l := range p.tests[t] {
			b.WriteString(l)
		}
	}
	for _, t := range p.running {
		fmt.Fprintf(&b, "--- DID NOT FINISH: %s (the test binary ended while it ran)\n", t)
		for _, l := range p.tests[t] {
			b.WriteString(l)
		}
	}
	for _, l := range p.output {
		b.WriteString(l)
	}
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if l != "" {
			fmt.Fprintf(r.w, "      | %s", l)
		}
	}
	if !strings.HasSuffix(b.String(), "\n") && b.Len() > 0 {
		fmt.Fprintln(r.w)
	}
}

// describe is the package's counts, with the top-level tests the binary
// ended in (see printFailure).
func (p *pkg) describe() string {
	unfinished := 0
	for _, name := range p.running {
		if !strings.Contains(name, "/") { // subtests are not counted
			unfinished++
		}
	}
	s := p.counts.describe()
	if unfinished > 0 {
		s += fmt.Sprintf(", %d did not finish", unfinished)
	}
	return s
}

func (c counts) describe() string {
	s := fmt.Sprintf("%d passed", c.passed)
	if c.failed > 0 {
		s += fmt.Sprintf(", %d failed", c.failed)
	}
	if c.skipped > 0 {
		s += fmt.Sprintf(", %d skipped", c.skipped)
	}
	return s
}

// stamp is the time since the start, as [+1m05s].
func (r *report) stamp() string {
	return "[+" + clock(r.now().Sub(r.start)) + "]"
}

// clock formats d as 1m05s (or 12s under a minute).
func clock(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 60 {
		return fmt.Sprintf("%ds", s)
	}
	return fmt.Sprintf("%dm%02ds", s/60, s%60)
}

// heartbeat prints the packages still running every period, until the
// returned function is called.
func (r *report) heartbeat(every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.printRunning()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *report) printRunning() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var running []string
	for name, p := range r.pkgs {
		if !p.started.IsZero() {
			running = append(running, fmt.Sprintf("%s (%s)", name, clock(r.now().Sub(p.started))))
		}
	}
	if len(running) == 0 {
		return
	}
	slices.Sort(running)
	fmt.Fprintf(r.w, "%s still running: %s\n", r.stamp(), strings.Join(running, ", "))
}

// ok tells whether every package passed and at least one package ran.
func (r *report) ok() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packages.failed == 0 && r.packages.passed+r.noTests > 0
}

// summary is the closing lines; the last is "tests: N passed, N failed,
// N skipped", the line CI reads.
func (r *report) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	if r.packages.passed+r.packages.failed+r.noTests == 0 {
		b.WriteString("packages: none ran (is the package pattern right?)\n")
	}
	fmt.Fprintf(&b, "packages: %d passed, %d failed (%d without test files)\n",
		r.packages.passed, r.packages.failed, r.noTests)
	fmt.Fprintf(&b, "tests: %d passed, %d failed, %d skipped\n", r.tests.passed, r.tests.failed, r.tests.skipped)
	return b.String()
}

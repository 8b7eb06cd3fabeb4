// Package rabbitmqtest raises broker resource alarms for tests, on the
// RabbitMQ node of the test environment (the local one, driven with
// rabbitmqctl):
//
//	restore := rabbitmqtest.MemoryAlarm(t, 4*time.Second)
//	defer restore()
//	// publishing connections are blocked (connection.blocked) until the
//	// window ends, then unblocked
//
// The broker is shared by every test of the machine, so the alarm lifts
// itself: the watermark is set to almost nothing and restored by one
// process on the broker node after the window, whatever happens to the
// test process. The returned function and the test's cleanup restore it
// too (idempotently), as a second line of defence.
package rabbitmqtest

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lowWatermark is the memory high watermark of the alarm: a fraction of
// the RAM that every running broker exceeds.
const lowWatermark = "0.0000001"

// defaultWatermark is RabbitMQ's default, restored when the current value
// cannot be read.
const defaultWatermark = "0.4"

// watermarkTerm matches the Erlang terms the watermark may be restored to
// (a fraction or {absolute, Bytes}).
var watermarkTerm = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\{absolute,\s*[0-9]+\})$`)

// MemoryAlarm sets the memory high watermark of the local RabbitMQ node so
// low that the node raises a memory alarm, and has the node restore the
// previous watermark after window, so that the alarm lifts. It returns once
// the alarm is raised; the returned function restores the watermark at
// once (idempotent; it also runs at the test's cleanup).
//
// While the alarm lasts the broker blocks every connection that publishes
// (it sends connection.blocked on its next publish and reads nothing more
// from it), on the whole node: keep window short, other tests share it.
//
// Alarms of several test processes (packages run in parallel) take turns:
// MemoryAlarm waits for a lock file in the temporary directory, which
// restore releases.
//
// The test is skipped when rabbitmqctl is not installed or KAIROS_AMQP_URL
// names a broker on another host; under CI=true that is a failure.
func MemoryAlarm(tb testing.TB, window time.Duration) (restore func()) {
	tb.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		skipOrFail(tb, "rabbitmqctl is not installed: cannot raise a memory alarm")
	}
	if u := os.Getenv("KAIROS_AMQP_URL"); u != "" && !loopback(u) {
		skipOrFail(tb, "KAIROS_AMQP_URL is not a local broker: rabbitmqctl cannot raise its memory alarm")
	}
	unlock := lockAlarm(tb)
	// One call (rabbitmqctl takes seconds to start): read the watermark,
	// and spawn the process on the node that lowers it, waits and puts it
	// back. A watermark already that low is another alarm's (one whose
	// node was restarted before it restored it): the default goes back
	// then.
	ms := strconv.FormatInt(window.Milliseconds(), 10)
	orig, err := eval("Cur = vm_memory_monitor:get_vm_memory_high_watermark(), " +
		"Orig = case Cur of F when is_number(F), F >= 0.01 -> F; {absolute, N} when N >= 104857600 -> Cur; _ -> " + defaultWatermark + " end, " +
		"spawn(fun() -> vm_memory_monitor:set_vm_memory_high_watermark(" + lowWatermark + "), " +
		"timer:sleep(" + ms + "), vm_memory_monitor:set_vm_memory_high_watermark(Orig) end), Orig.")
	if err != nil {
		unlock()
		skipOrFail(tb, "rabbitmqctl cannot set the memory watermark: "+err.Error())
	}
	if !watermarkTerm.MatchString(orig) {
		tb.Logf("memory watermark %q not understood: restoring %s", orig, defaultWatermark)
		orig = defaultWatermark
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			defer unlock()
			if _, err := eval("vm_memory_monitor:set_vm_memory_high_watermark(" + orig + ")."); err != nil {
				tb.Errorf("restoring the memory watermark %s: %v (run: rabbitmqctl set_vm_memory_high_watermark 0.4)", orig, err)
			}
		})
	}
	tb.Cleanup(restore)
	return restore
}

// eval evaluates an Erlang expression on the broker node and returns its
// printed result.
func eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "eval", expr).CombinedOutput()
	if err != nil {
		return "", &evalError{expr: expr, out: strings.TrimSpace(string(out)), err: err}
	}
	return strings.TrimSpace(string(out)), nil
}

type evalError struct {
	expr, out string
	err       error
}

func (e *evalError) Error() string {
	return "rabbitmqctl eval " + e.expr + ": " + e.err.Error() + ": " + e.out
}

func (e *evalError) Unwrap() error { return e.err }

func skipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + " (CI=true)")
	}
	tb.Skip(msg)
}

// loopback reports whether the AMQP URL names a broker on this host.
func loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// DeliveryLimit sets a policy on the local RabbitMQ node that limits the
// deliveries of every quorum queue whose name starts with prefix to limit
// (the quorum queues' delivery-limit: a message returned to its queue
// more often is dropped, as with RabbitMQ 4.0–4.2's default of 20), and
// clears it at the test's cleanup. The policy is named after prefix, so a
// policy a killed test left behind matches only its own queues.
//
// The test is skipped when rabbitmqctl is not installed or KAIROS_AMQP_URL
// names a broker on another host; under CI=true that is a failure.
func DeliveryLimit(tb testing.TB, prefix string, limit int) {
	tb.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		skipOrFail(tb, "rabbitmqctl is not installed: cannot set a delivery-limit policy")
	}
	if u := os.Getenv("KAIROS_AMQP_URL"); u != "" && !loopback(u) {
		skipOrFail(tb, "KAIROS_AMQP_URL is not a local broker: rabbitmqctl cannot set its policies")
	}
	name := prefix + "-delivery-limit"
	def := `{"delivery-limit":` + strconv.Itoa(limit) + `}`
	if out, err := ctl("set_policy", "--apply-to", "queues", name, "^"+regexp.QuoteMeta(prefix)+`\.`, def); err != nil {
		tb.Fatalf("rabbitmqctl set_policy %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() {
		if out, err := ctl("clear_policy", name); err != nil {
			tb.Errorf("rabbitmqctl clear_policy %s: %v: %s", name, err, out)
		}
	})
}

// ctl runs rabbitmqctl quietly with args.
func ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-q"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

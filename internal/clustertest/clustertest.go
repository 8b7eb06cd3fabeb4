package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Clusters is a handle on the running local clusters.
type Clusters struct {
	// AMQPURLs are the AMQP URLs of the three RabbitMQ nodes, node 1 first.
	AMQPURLs []string
	// RedisURL is the Redis Cluster in go-redis's cluster form
	// (redis://127.0.0.1:7001?addr=127.0.0.1:7002&...), for
	// redis.ParseClusterURL.
	RedisURL string

	script string
}

// RedisNodes and RabbitNodes are how many nodes each cluster has; nodes are
// numbered from 1. Redis node n listens on port 7000+n, RabbitMQ node n
// (kairos-c<n>@localhost) on 5680+n.
const (
	RedisNodes  = 6
	RabbitNodes = 3
)

var (
	once    sync.Once
	shared  *Clusters
	initErr error
)

// Get returns the local clusters, starting them with scripts/clusters.sh
// when KAIROS_CLUSTER_TESTS=1. Without it the test is skipped; when they
// cannot be started the test is skipped too, or fails under CI=true.
func Get(tb testing.TB) *Clusters {
	tb.Helper()
	if os.Getenv("KAIROS_CLUSTER_TESTS") != "1" {
		tb.Skip("local clusters not enabled: set KAIROS_CLUSTER_TESTS=1 (starts scripts/clusters.sh)")
	}
	once.Do(func() { shared, initErr = start() })
	if initErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("local clusters under CI=true: %v", initErr)
		}
		tb.Skipf("local clusters: %v", initErr)
	}
	return shared
}

// start runs `clusters.sh up` and reads `clusters.sh env`
// (lines `export NAME='value'`).
func start() (*Clusters, error) {
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	c := &Clusters{script: script}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.run(ctx, "up"); err != nil {
		return nil, err
	}
	out, err := c.run(ctx, "env")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		// export NAME='value'
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "export "), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, "'")
		switch k {
		case "KAIROS_CLUSTER_AMQP_URLS":
			c.AMQPURLs = strings.Split(v, ",")
		case "KAIROS_CLUSTER_REDIS_URL":
			c.RedisURL = v
		}
	}
	if len(c.AMQPURLs) != RabbitNodes || c.RedisURL == "" {
		return nil, fmt.Errorf("clusters.sh env: unexpected output %q", out)
	}
	return c, nil
}

// findScript walks up from the working directory to the module root.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find scripts/clusters.sh: %w", err)
	}
	for {
		p := filepath.Join(dir, "scripts", "clusters.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("find scripts/clusters.sh: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find scripts/clusters.sh: no go.mod above the working directory")
		}
		dir = parent
	}
}

// run runs clusters.sh with args and returns its standard output.
func (c *Clusters) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("clusters.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (c *Clusters) mustRun(tb testing.TB, timeout time.Duration, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := c.run(ctx, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// PID returns the PID of node n of kind ("redis" or "rabbit").
func (c *Clusters) PID(tb testing.TB, kind string, n int) int {
	tb.Helper()
	out := c.mustRun(tb, 10*time.Second, "pid", kind, strconv.Itoa(n))
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		tb.Fatalf("pid of %s node %d: %q: %v", kind, n, out, err)
	}
	return pid
}

// kill sends SIGKILL to node n of kind and waits until the process is gone.
func (c *Clusters) kill(tb testing.TB, kind string, n int) {
	tb.Helper()
	pid := c.PID(tb, kind, n)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatalf("kill -9 %s node %d (pid %d): %v", kind, n, pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			tb.Fatalf("%s node %d (pid %d) still alive 10 s after SIGKILL", kind, n, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KillRedis kills Redis node n (port 7000+n) with SIGKILL.
func (c *Clusters) KillRedis(tb testing.TB, n int) { tb.Helper(); c.kill(tb, "redis", n) }

// StartRedis starts Redis node n again with its data (nodes.conf, AOF).
func (c *Clusters) StartRedis(tb testing.TB, n int) {
	tb.Helper()
	c.mustRun(tb, time.Minute, "start", "redis", strconv.Itoa(n))
}

// KillRabbit kills RabbitMQ node n (kairos-c<n>@localhost) with SIGKILL.
func (c *Clusters) KillRabbit(tb testing.TB, n int) { tb.Helper(); c.kill(tb, "rabbit", n) }

// StartRabbit starts RabbitMQ node n again and waits until it has booted.
func (c *Clusters) StartRabbit(tb testing.TB, n int) {
	tb.Helper()
	c.mustRun(tb, 3*time.Minute, "start", "rabbit", strconv.Itoa(n))
}

// Rabbitmqctl runs rabbitmqctl against RabbitMQ node n and returns its output.
func (c *Clusters) Rabbitmqctl(tb testing.TB, n int, args ...string) string {
	tb.Helper()
	return c.mustRun(tb, time.Minute, append([]string{"ctl", strconv.Itoa(n)}, args...)...)
}

// WaitHealthy waits until both clusters are healthy (3 RabbitMQ nodes
// running; every Redis node with cluster_state:ok, 16384 slots, 3 masters
// with a replica each), failing the test after timeout.
func (c *Clusters) WaitHealthy(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	secs := int(timeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	c.mustRun(tb, timeout+30*time.Second, "wait", strconv.Itoa(secs))
}

// RedisNode returns the node number of a Redis address ("127.0.0.1:7003" → 3).
func RedisNode(addr string) (int, error) {
	_, port, ok := strings.Cut(addr, ":")
	p, err := strconv.Atoi(port)
	if !ok || err != nil || p < 7001 || p > 7000+RedisNodes {
		return 0, fmt.Errorf("%q is not a node of the local Redis Cluster", addr)
	}
	return p - 7000, nil
}

// RabbitNode returns the node number of a RabbitMQ node name
// ("kairos-c2@localhost" → 2).
func RabbitNode(name string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(strings.TrimSpace(name), "kairos-c%d@localhost", &n); err != nil || n < 1 || n > RabbitNodes {
		return 0, fmt.Errorf("%q is not a node of the local RabbitMQ cluster", name)
	}
	return n, nil
}

// LongestGap returns the longest interval between consecutive times: the
// stall of a load whose acknowledgements happened at ts.
func LongestGap(ts []time.Time) time.Duration {
	var g time.Duration
	for i := 1; i < len(ts); i++ {
		g = max(g, ts[i].Sub(ts[i-1]))
	}
	return g
}

// WaitFor polls cond every 20 ms and fails the test with what after
// timeout.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

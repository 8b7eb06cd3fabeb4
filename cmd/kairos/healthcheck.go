package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func init() {
	register(command{
		name:    "healthcheck",
		summary: "probe a running server's /readyz (or /healthz with --live): exit 0 when it answers 200, 1 otherwise",
		run:     runHealthcheck,
	})
}

// healthcheckConfig is the configuration of `kairos healthcheck`, the
// container health probe (the image has no curl).
type healthcheckConfig struct {
	// URL is the probed URL, from --url or built from --addr and --live.
	URL     string
	Timeout time.Duration
}

func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseHealthcheckConfig(args, stderr)
	if err != nil {
		return err
	}
	body, err := probe(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", cfg.URL, body)
	return nil
}

// parseHealthcheckConfig parses the flags; --addr defaults to $KAIROS_ADDR
// like `kairos serve`, so a container probes the address it serves on.
func parseHealthcheckConfig(args []string, stderr io.Writer) (healthcheckConfig, error) {
	var c healthcheckConfig
	fs := newFlagSet("healthcheck", stderr)
	addr := fs.String("addr", envOr("KAIROS_ADDR", "127.0.0.1:8080"), "address of the server, as given to kairos serve --addr; a wildcard host (0.0.0.0, ::, empty) probes loopback ($KAIROS_ADDR)")
	rawURL := fs.String("url", "", "probe this URL instead (overrides --addr and --live)")
	live := fs.Bool("live", false, "probe /healthz (the process is up) instead of /readyz (the broker and the store can serve)")
	fs.DurationVar(&c.Timeout, "timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Timeout <= 0 {
		return c, fmt.Errorf("--timeout %v must be > 0", c.Timeout)
	}
	if *rawURL != "" {
		u, err := url.Parse(*rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("--url %q: want an absolute http(s) URL", *rawURL)
		}
		c.URL = u.String()
		return c, nil
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return c, fmt.Errorf("--addr %q: want host:port: %w", *addr, err)
	}
	if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		host = "127.0.0.1"
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	c.URL = "http://" + net.JoinHostPort(host, port) + path
	return c, nil
}

// probe GETs cfg.URL within cfg.Timeout and returns the body of a 200, or
// an error naming the URL and what went wrong.
func probe(ctx context.Context, cfg healthcheckConfig) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cfg.URL, err)
	}
	// No proxy: the probe is for the server next to it.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("%s: no answer within %v", cfg.URL, cfg.Timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named once, below
		}
		return "", fmt.Errorf("%s: %w", cfg.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return "", fmt.Errorf("%s: read: %w", cfg.URL, err)
	}
	body := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s %s", cfg.URL, resp.Status, body)
	}
	return body, nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The `kairos tenant …` commands manage the tenants of a running
// multi-tenant server through its admin API (deletion needs the server:
// it unloads the tenant and purges its data from every store).
func init() {
	register(command{name: "tenant create", summary: "create a tenant on a multi-tenant server; prints its keys (shown once)", run: runTenantCreate})
	register(command{name: "tenant list", summary: "list the tenants of a multi-tenant server", run: tenantSimple("GET", "")})
	register(command{name: "tenant get", summary: "show one tenant: kairos tenant get <id>", run: tenantSimple("GET", "{id}")})
	register(command{name: "tenant suspend", summary: "suspend a tenant (its keys get 403, its data stays): kairos tenant suspend <id>", run: tenantSimple("POST", "{id}/suspend")})
	register(command{name: "tenant resume", summary: "resume a suspended tenant: kairos tenant resume <id>", run: tenantSimple("POST", "{id}/resume")})
	register(command{name: "tenant rotate", summary: "give a tenant new keys (the old ones stay valid for --grace, default the server's --tenant-key-grace): kairos tenant rotate [--grace 1h] <id>", run: runTenantRotate})
	register(command{name: "tenant delete", summary: "delete a tenant and all its data: kairos tenant delete <id>", run: tenantSimple("DELETE", "{id}")})
}

// tenantClient holds the flags every tenant command shares.
type tenantClient struct {
	url, key string
}

func (c *tenantClient) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", envOr("KAIROS_URL", "http://"+envOr("KAIROS_ADDR", "127.0.0.1:8080")), "base URL of the server ($KAIROS_URL, else http://$KAIROS_ADDR)")
	fs.StringVar(&c.key, "admin-key", envOr("KAIROS_ADMIN_KEY", ""), "the server's admin key ($KAIROS_ADMIN_KEY)")
}

// do sends the request and copies the JSON answer to stdout; a non-2xx
// answer is an error carrying the server's message.
func (c *tenantClient) do(ctx context.Context, method, path string, body any, stdout io.Writer) error {
	if c.key == "" {
		return errors.New("no admin key: set --admin-key or $KAIROS_ADMIN_KEY")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.url, "/")+"/v1/tenants"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (%d %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("%s %s: %s", method, req.URL.Path, resp.Status)
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	_, err = stdout.Write(b)
	return err
}

// tenantSimple is a command taking a tenant id (path has {id}) or none.
func tenantSimple(method, path string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet("tenant", stderr)
		var c tenantClient
		c.bind(fs)
		ids, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		p := ""
		if strings.Contains(path, "{id}") {
			if len(ids) != 1 {
				return fmt.Errorf("want one tenant id, got %q", ids)
			}
			p = "/" + strings.Replace(path, "{id}", url.PathEscape(ids[0]), 1)
		} else if len(ids) > 0 {
			return fmt.Errorf("unexpected arguments %q", ids)
		}
		if err := c.do(ctx, method, p, nil, stdout); err != nil {
			return err
		}
		if method == http.MethodDelete {
			fmt.Fprintf(stderr, "tenant %s deleted with all its data\n", ids[0])
		}
		return nil
	}
}

func runTenantCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenant create", stderr)
	var c tenantClient
	c.bind(fs)
	var spec struct {
		ID             string   `json:"id,omitempty"`
		Name           string   `json:"name,omitempty"`
		AllowedOrigins []string `json:"allowed_origins,omitempty"`
		Quotas         struct {
			RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
			EventsPerSecond   float64 `json:"events_per_second,omitempty"`
			EventsPerDay      int64   `json:"events_per_day,omitempty"`
			Items             int     `json:"items,omitempty"`
			Visitors          int64   `json:"visitors,omitempty"`
		} `json:"quotas"`
	}
	var origins string
	fs.StringVar(&spec.ID, "id", "", "tenant id: 1-40 lowercase letters, digits, '-', '_' (empty: generated)")
	fs.StringVar(&spec.Name, "name", "", "display name")
	fs.StringVar(&origins, "allowed-origins", "", "origins allowed to use the publishable key, comma-separated")
	fs.Float64Var(&spec.Quotas.RequestsPerSecond, "requests-per-second", 0, "quota: requests per second, all keys together (0: none)")
	fs.Float64Var(&spec.Quotas.EventsPerSecond, "events-per-second", 0, "quota: events per second, all event requests together (0: none)")
	fs.Int64Var(&spec.Quotas.EventsPerDay, "events-per-day", 0, "quota: events accepted per UTC day (0: none)")
	fs.IntVar(&spec.Quotas.Items, "items", 0, "quota: items in the tenant's model (0: none)")
	fs.Int64Var(&spec.Quotas.Visitors, "visitors", 0, "quota: distinct visitors (0: none)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	spec.AllowedOrigins = splitList(origins)
	return c.do(ctx, http.MethodPost, "", spec, stdout)
}

func runTenantRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenant rotate", stderr)
	var c tenantClient
	c.bind(fs)
	grace := fs.Duration("grace", -1, "how long the old keys stay valid (0: they stop at once; unset: the server's --tenant-key-grace)")
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return fmt.Errorf("want one tenant id, got %q", ids)
	}
	if flagSet(fs, "grace") && (*grace < 0 || *grace%time.Second != 0) {
		return fmt.Errorf("--grace %v: want a whole number of seconds >= 0", *grace)
	}
	var body any
	if *grace >= 0 {
		body = map[string]int64{"grace_seconds": int64(grace.Seconds())}
	}
	return c.do(ctx, http.MethodPost, "/"+url.PathEscape(ids[0])+"/keys", body, stdout)
}

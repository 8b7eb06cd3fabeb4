package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/internal/redisconn"
	"github.com/kairoshq/kairos/signals/rabbitmq/rabbitmqtest"
	"github.com/kairoshq/kairos/tenant"
)

// adminMetrics scrapes the deployment's /metrics with the admin key.
func (s *tenantTestServer) adminMetrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := uncheckedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// TestTenantsSharedPartitions: with RabbitMQ, every tenant's events go
// through one set of partition queues (routing key <tenant>/<visitor>),
// and no tenant has queues of its own. A tenant that cannot apply its
// events (its stored state is corrupt: its server does not load) holds
// up no other tenant on the same partition: its events go round the
// retry queue while the other's are applied, and once it is repaired its
// events take effect, once each.
func TestTenantsSharedPartitions(t *testing.T) {
	requireServices(t)
	ns := tenantsTestNamespace(t, "a", "b")
	// One partition: a's and b's events queue behind each other.
	s := startTenants(t, "--amqp-url", amqpURL(), "--redis-url", redisURL(), "--namespace", ns,
		"--tenant-partitions", "1", "--tenant-retry-delay", "300ms")
	a, b := s.createTenant(t, "a"), s.createTenant(t, "b")

	// Break a before it ever loads: its stored model generation does not
	// decode, so its server fails to load.
	ctx := context.Background()
	st, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL(), Prefix: tenantNamespace(ns, "a")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutBlob(ctx, "engine/model", []byte("{broken")); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// A server-side producer publishes both tenants' events, interleaved,
	// to the shared exchange.
	conn, ch := rabbitmqtest.ConfirmChannel(t, amqpURL())
	sets := map[string][]string{"a": {"i1", "i2", "i3"}, "b": {"i4", "i5", "i6"}}
	evs := map[string][]map[string]any{"a": tenantEvents("a", sets["a"]), "b": tenantEvents("b", sets["b"])}
	for i := range evs["a"] {
		for _, id := range []string{"a", "b"} {
			ev := evs[id][i]
			body, _ := json.Marshal(ev)
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, sharedBusPrefix(ns)+".events", tenant.RouteKey(id, ev["visitor"].(string)), true, false,
				amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				t.Fatalf("publish not confirmed: %v", err)
			}
		}
	}

	// b is served while a is broken.
	waitFor(t, 30*time.Second, "b's recommendations while a is broken", func() bool {
		return slices.Equal(s.recs(t, b, "p"), sets["b"])
	})
	s.do(t, "GET", "/v1/recommendations?visitor=p", a.sk, nil, http.StatusServiceUnavailable)
	// b's recommendations follow its last commit; the dispatcher counts a
	// batch's events (applied, retried) only once every tenant of the
	// batch is done and a's are sent back: wait for the counters.
	var m string
	waitFor(t, 10*time.Second, "a's events retried and b's counted applied", func() bool {
		m = s.adminMetrics(t)
		return metricValue(m, `kairos_tenant_consumed_events_total{outcome="retried",tenant="a"}`) > 0 &&
			metricValue(m, `kairos_tenant_consumed_events_total{outcome="applied",tenant="b"}`) >= float64(len(evs["b"]))
	})
	if v := metricValue(m, `kairos_tenant_consumed_events_total{outcome="retried",tenant="a"}`); !(v > 0) {
		t.Errorf("a's events retried: %v, want > 0", v)
	}
	if v := metricValue(m, `kairos_tenant_consumed_events_total{outcome="applied",tenant="b"}`); v != float64(len(evs["b"])) {
		t.Errorf("b's events applied: %v, want %d (each once)", v, len(evs["b"]))
	}

	// Repair a: its retried events take effect.
	rc, err := redisconn.New(redisURL(), redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// The whole keyspace, page by page: the database may hold other
	// tests' keys.
	var keys []string
	for cursor := uint64(0); ; {
		page, next, err := rc.Scan(ctx, cursor, tenantNamespace(ns, "a")+"*blob:engine/model", 1000).Result()
		if err != nil {
			t.Fatalf("scan for the corrupt blob: %v", err)
		}
		keys, cursor = append(keys, page...), next
		if cursor == 0 {
			break
		}
	}
	if len(keys) != 1 {
		t.Fatalf("the corrupt blob: %v", keys)
	}
	if err := rc.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a's recommendations once repaired", func() bool {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/v1/recommendations?n=4&visitor=p", nil)
		req.Header.Set("Authorization", "Bearer "+a.sk)
		resp, err := uncheckedClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var v struct {
			Items []struct{ Item string } `json:"items"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
			return false
		}
		var got []string
		for _, it := range v.Items {
			got = append(got, it.Item)
		}
		slices.Sort(got)
		return slices.Equal(got, sets["a"])
	})
	waitFor(t, 10*time.Second, "every event of a applied", func() bool {
		v := metricValue(s.adminMetrics(t), `kairos_tenant_consumed_events_total{outcome="applied",tenant="a"}`)
		return v >= float64(len(evs["a"]))
	})
	// Each event took effect once (a's engine, on its own metrics).
	req, _ := http.NewRequest(http.MethodGet, s.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+a.sk)
	resp, err := uncheckedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	am, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v := metricValue(string(am), "kairos_engine_events_applied_total "); v != float64(len(evs["a"])) {
		t.Errorf("a's engine applied %v events, want %d", v, len(evs["a"]))
	}

	// One set of partition queues, none of a tenant's own.
	qch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qch.QueueDeclarePassive(sharedBusPrefix(ns)+".p.0", true, false, false, false, nil); err != nil {
		t.Errorf("the shared partition queue: %v", err)
	}
	for _, id := range []string{"a", "b"} {
		q := tenantNamespace(ns, id) + ".p.0"
		if qch.IsClosed() {
			if qch, err = conn.Channel(); err != nil {
				t.Fatal(err)
			}
		}
		_, err := qch.QueueDeclarePassive(q, true, false, false, false, nil)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
			t.Errorf("tenant %s has a queue of its own, %s (%v)", id, q, err)
		}
	}
}

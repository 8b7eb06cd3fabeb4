package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals/rabbitmq/rabbitmqtest"
)

// alarmAnswer is one POST /v1/events of TestMemoryAlarmServe.
type alarmAnswer struct {
	ids          []string
	status       int
	retryAfter   string
	message      string
	whileBlocked bool // /readyz still reported the block right after
	err          error
}

// readyz returns the status and body of GET /readyz (0 when it fails).
func (s *testServer) readyz() (int, string) {
	resp, err := httpClient.Get(s.base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// brokerBlocked reports whether /readyz says the broker blocks the
// publish connection.
func (s *testServer) brokerBlocked() bool {
	code, msg := s.readyz()
	return code == http.StatusServiceUnavailable && strings.Contains(msg, "the broker blocks the publish connection (resource alarm")
}

// postBatch posts events and returns the answer without judging it.
func (s *testServer) postBatch(evs []map[string]any) alarmAnswer {
	a := alarmAnswer{}
	for _, e := range evs {
		a.ids = append(a.ids, e["id"].(string))
	}
	b, _ := json.Marshal(evs)
	req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/events", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer pk_test_0123456789abcdef")
	resp, err := httpClient.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.Unmarshal(body, &out)
	a.status, a.retryAfter, a.message = resp.StatusCode, resp.Header.Get("Retry-After"), out.Error.Message
	return a
}

func alarmBatch(prefix string, n int) []map[string]any {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"id": fmt.Sprintf("%s-%d", prefix, i), "type": "view",
			"visitor": prefix + "-v", "item": fmt.Sprintf("item-%d", i%7)}
	}
	return evs
}

// alarmMarks returns the de-duplication marks of alarmBatch's event ids:
// each under its batch's visitor ("<prefix>-v" for "<prefix>-<i>").
func alarmMarks(ids []string) []engine.EventRef {
	refs := make([]engine.EventRef, len(ids))
	for i, id := range ids {
		refs[i] = engine.EventRef{Visitor: id[:strings.LastIndexByte(id, '-')] + "-v", ID: id}
	}
	return refs
}

// TestMemoryAlarmServe runs kairos serve on RabbitMQ and Redis through a
// real broker memory alarm (a low watermark the broker restores by itself
// after a few seconds; the test's cleanup and a defer restore it too)
// while clients post events: /readyz says the broker blocks the publish
// connection; the requests in flight when it blocks and those sent
// during the block are answered 503 with Retry-After while it lasts (none
// waits for the alarm to end); afterwards events are accepted again, and
// every accepted event, before, during and after, is applied.
func TestMemoryAlarmServe(t *testing.T) {
	srv := startServices(t)
	if a := srv.postBatch(alarmBatch("before", 5)); a.status != http.StatusOK {
		t.Fatalf("before the alarm: %d %s %v", a.status, a.message, a.err)
	}

	stop := make(chan struct{})
	var (
		mu      sync.Mutex
		answers []alarmAnswer
		clients sync.WaitGroup
	)
	for c := range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				a := srv.postBatch(alarmBatch(fmt.Sprintf("c%d-%d", c, n), 3))
				if a.status == http.StatusServiceUnavailable {
					a.whileBlocked = srv.brokerBlocked()
				}
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	restore := rabbitmqtest.MemoryAlarm(t, 4*time.Second)
	defer restore()
	waitFor(t, 30*time.Second, "/readyz to say the broker blocks the publish connection", func() bool { return srv.brokerBlocked() })
	during := srv.postBatch(alarmBatch("during", 2))
	blocked := srv.brokerBlocked()
	if during.status != http.StatusServiceUnavailable || during.retryAfter == "" || !strings.Contains(during.message, "outcome unknown") || !blocked {
		t.Errorf("POST /v1/events during the alarm: %d, Retry-After %q, %q (answered while blocked: %v); want 503 with Retry-After before the alarm ends",
			during.status, during.retryAfter, during.message, blocked)
	}

	waitFor(t, 60*time.Second, "/readyz to be ready after the alarm", func() bool { code, _ := srv.readyz(); return code == http.StatusOK })
	close(stop)
	done := make(chan struct{})
	go func() { clients.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("a POST /v1/events still hangs a minute after the alarm")
	}
	after := srv.postBatch(alarmBatch("after", 5))
	if after.status != http.StatusOK {
		t.Fatalf("after the alarm: %d %s %v", after.status, after.message, after.err)
	}

	var accepted []string
	refusedWhileBlocked := 0
	for _, a := range append(answers, after) {
		switch {
		case a.err != nil:
			t.Errorf("POST /v1/events: %v", a.err)
		case a.status == http.StatusOK:
			accepted = append(accepted, a.ids...)
		case a.status == http.StatusServiceUnavailable:
			if a.retryAfter == "" {
				t.Errorf("503 without Retry-After: %q", a.message)
			}
			if a.whileBlocked {
				refusedWhileBlocked++
			}
		default:
			t.Errorf("POST /v1/events: %d %q", a.status, a.message)
		}
	}
	if refusedWhileBlocked == 0 {
		t.Error("no client request was answered 503 while the broker blocked the connection")
	}
	t.Logf("%d events accepted around the alarm, %d requests answered 503 during it", len(accepted), refusedWhileBlocked)
	waitFor(t, 60*time.Second, "every accepted event to be applied", func() bool {
		seen, err := srv.app.store.Seen(context.Background(), alarmMarks(accepted))
		if err != nil {
			t.Fatal(err)
		}
		for _, ok := range seen {
			if !ok {
				return false
			}
		}
		return true
	})
}

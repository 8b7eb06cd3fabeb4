package rabbitmq

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/signals/bustest"
)

// proxiedURL returns url with its host and port replaced by those of p.
func proxiedURL(t *testing.T, url string, p *proxy) string {
	t.Helper()
	u, err := amqp.ParseURI(url)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(p.addr())
	u.Host = "127.0.0.1"
	u.Port, _ = strconv.Atoi(port)
	return u.String()
}

// brokerAddr is the host:port of url.
func brokerAddr(t *testing.T, url string) string {
	t.Helper()
	u, err := amqp.ParseURI(url)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// TestDialFirstReachable: with the first URL of the list refusing
// connections, Dial connects to the second.
func TestDialFirstReachable(t *testing.T) {
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "amqp://guest:guest@" + ln.Addr().String() + "/"
	ln.Close()
	real := cfg.URL
	cfg.URL = dead + " , " + real
	a := newAdmin(t, real)
	b := newTestBus(t, cfg, a)
	if got := b.pub.urlIndex(); got != 1 {
		t.Errorf("publish connection on URL %d, want 1 (the first refuses)", got)
	}
	if err := b.Publish(context.Background(), bustest.Events("fo", 1, 3, time.Now())); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverToNextURL: two proxies to the broker stand for two nodes;
// when the first goes down under confirmed publishing and consuming, the
// Bus moves to the second, and no confirmed event is lost.
func TestFailoverToNextURL(t *testing.T) {
	cfg := testConfig(t)
	a := newAdmin(t, cfg.URL)
	p1 := newProxy(t, brokerAddr(t, cfg.URL))
	p2 := newProxy(t, brokerAddr(t, cfg.URL))
	cfg.URL = proxiedURL(t, cfg.URL, p1) + "," + proxiedURL(t, cfg.URL, p2)
	b := newTestBus(t, cfg, a)
	if got := b.pub.urlIndex(); got != 0 {
		t.Fatalf("publish connection on URL %d, want 0", got)
	}
	testReconnect(t, b, func() { p1.setDown(true) })
	for _, l := range []*link{b.pub, b.con} {
		if got := l.urlIndex(); got != 1 {
			t.Errorf("%s connection on URL %d after the first went down, want 1", l.name, got)
		}
	}
}

func TestSplitURLs(t *testing.T) {
	got := splitURLs(" amqp://a:5672/ ,amqp://b:5672/")
	if len(got) != 2 || got[0] != "amqp://a:5672/" || got[1] != "amqp://b:5672/" {
		t.Errorf("splitURLs = %q", got)
	}
	err := Config{URL: "amqp://a:5672/,"}.Defaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "URL 2 of 2") {
		t.Errorf("Validate of a list with an empty URL = %v, want an error naming URL 2 of 2", err)
	}
	if r := redactURL("amqp://u:secret@a:5672/,amqp://u:secret@b:5672/"); strings.Contains(r, "secret") || strings.Count(r, ",") != 1 {
		t.Errorf("redactURL of a list = %q", r)
	}
}

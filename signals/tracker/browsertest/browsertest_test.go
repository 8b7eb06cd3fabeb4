package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals/tracker/browsertest"
)

const page = `<!doctype html><html><head><title>bt</title></head>
<body style="margin:0;height:3000px">
<button id="b" style="position:absolute;left:100px;top:100px;width:200px;height:100px">press</button>
<script>
window.seen = [];
for (const t of ['pointermove', 'click', 'mouseout', 'wheel']) {
  document.addEventListener(t, e => seen.push({type: t, x: e.clientX, y: e.clientY, trusted: e.isTrusted,
    target: e.target && e.target.id || '', related: e.relatedTarget ? 1 : 0}), {passive: true});
}
</script></body></html>`

func server(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type seenEvent struct {
	Type    string  `json:"type"`
	X       float64 `json:"x"`
	Y       float64 `json:"y"`
	Trusted bool    `json:"trusted"`
	Target  string  `json:"target"`
	Related int     `json:"related"`
}

func TestBrowser(t *testing.T) {
	b := browsertest.Start(t, browsertest.Options{Width: 800, Height: 600})
	srv := server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, srv.URL+"/x"); err != nil {
		t.Fatal(err)
	}
	if u, err := b.CurrentURL(ctx); err != nil || u != srv.URL+"/x" {
		t.Fatalf("CurrentURL = %q, %v", u, err)
	}

	t.Run("execute", func(t *testing.T) {
		var got struct {
			Title string `json:"title"`
			Sum   int    `json:"sum"`
		}
		if err := b.ExecuteTo(ctx, &got, `return {title: document.title, sum: arguments[0] + arguments[1]}`, 2, 3); err != nil {
			t.Fatal(err)
		}
		if got.Title != "bt" || got.Sum != 5 {
			t.Errorf("got %+v", got)
		}
		v, err := b.ExecuteAsync(ctx, `const done = arguments[arguments.length-1]; setTimeout(() => done(arguments[0] * 2), 10)`, 21)
		if err != nil || string(v) != "42" {
			t.Errorf("async = %s, %v", v, err)
		}
		_, err = b.Execute(ctx, `throw new Error("boom")`)
		if !browsertest.IsCode(err, "javascript error") {
			t.Errorf("throwing script: err = %v, want code javascript error", err)
		}
	})

	t.Run("elements and pointer", func(t *testing.T) {
		el, err := b.FindElement(ctx, "#b")
		if err != nil {
			t.Fatal(err)
		}
		if txt, err := el.Text(ctx); err != nil || txt != "press" {
			t.Errorf("Text = %q, %v", txt, err)
		}
		if r, err := el.Rect(ctx); err != nil || r.X != 100 || r.Width != 200 {
			t.Errorf("Rect = %+v, %v", r, err)
		}
		if _, ok, err := el.Attribute(ctx, "data-missing"); err != nil || ok {
			t.Errorf("missing attribute: ok=%v err=%v", ok, err)
		}
		_, err = b.FindElement(ctx, "#nope")
		if !browsertest.IsCode(err, "no such element") {
			t.Errorf("FindElement(#nope) err = %v", err)
		}
		// An element passed as a script argument is its DOM node.
		var id string
		if err := b.ExecuteTo(ctx, &id, `return arguments[0].id`, el); err != nil || id != "b" {
			t.Errorf("element argument: %q, %v", id, err)
		}
		if err := b.Perform(ctx, browsertest.Mouse().MoveToElement(el, 0, 0, 0).Pause(50*time.Millisecond).Click().MoveTo(600, 500, 0)); err != nil {
			t.Fatal(err)
		}
		var seen []seenEvent
		if err := b.ExecuteTo(ctx, &seen, `return seen.splice(0)`); err != nil {
			t.Fatal(err)
		}
		var moves, clicks int
		for _, e := range seen {
			if !e.Trusted {
				t.Errorf("untrusted event %+v", e)
			}
			switch e.Type {
			case "pointermove":
				moves++
			case "click":
				clicks++
				if e.Target != "b" || e.X != 200 || e.Y != 150 {
					t.Errorf("click %+v, want on #b at (200,150)", e)
				}
			}
		}
		if moves < 2 || clicks != 1 {
			t.Errorf("moves=%d clicks=%d in %+v", moves, clicks, seen)
		}
		if err := b.ReleaseActions(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("leave through the top", func(t *testing.T) {
		if err := b.Perform(ctx, browsertest.Mouse().MoveTo(400, 20, 0)); err != nil {
			t.Fatal(err)
		}
		if err := b.MouseMoveCDP(ctx, 400, -5); err != nil {
			t.Fatal(err)
		}
		v, err := b.WaitFor(ctx, `return seen.find(e => e.type == 'mouseout' && !e.related && e.y < 0)`)
		if err != nil {
			t.Fatal(err)
		}
		var e seenEvent
		if err := json.Unmarshal(v, &e); err != nil || !e.Trusted || e.Y != -5 {
			t.Errorf("mouseout %s (%v), want trusted at y=-5", v, err)
		}
		_, _ = b.Execute(ctx, `seen.length = 0`)
	})

	t.Run("tabs and visibility", func(t *testing.T) {
		if _, err := b.Execute(ctx, `window.vis = []; document.addEventListener('visibilitychange', () => vis.push(document.visibilityState))`); err != nil {
			t.Fatal(err)
		}
		h0, err := b.WindowHandle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h1, err := b.NewTab(ctx)
		if err != nil || h1 == "" || h1 == h0 {
			t.Fatalf("NewTab = %q, %v", h1, err)
		}
		if err := b.SwitchTo(ctx, h1); err != nil {
			t.Fatal(err)
		}
		if err := b.CloseWindow(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.SwitchTo(ctx, h0); err != nil {
			t.Fatal(err)
		}
		v, err := b.WaitFor(ctx, `return vis.length >= 2 && vis.join()`)
		if err != nil || string(v) != `"hidden,visible"` {
			t.Errorf("visibility changes %s, %v; want hidden then visible", v, err)
		}
	})

	t.Run("wheel", func(t *testing.T) {
		if err := b.Perform(ctx, browsertest.Wheel().Scroll(400, 300, 0, 500, 0)); err != nil {
			t.Fatal(err)
		}
		v, err := b.WaitFor(ctx, `return window.scrollY >= 500 && window.scrollY`)
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != "500" {
			t.Errorf("scrollY = %s, want 500", v)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		png, err := b.Screenshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("screenshot is not a PNG: % x", png[:8])
		}
	})

	t.Run("cdp and logs", func(t *testing.T) {
		v, err := b.CDP(ctx, "Runtime.evaluate", map[string]any{"expression": "6*7", "returnByValue": true})
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Result struct {
				Value int `json:"value"`
			} `json:"result"`
		}
		if err := json.Unmarshal(v, &r); err != nil || r.Result.Value != 42 {
			t.Errorf("Runtime.evaluate = %s, %v", v, err)
		}
		if _, err := b.Logs(ctx); err != nil { // drain
			t.Fatal(err)
		}
		if _, err := b.Execute(ctx, `console.error("marker-123"); setTimeout(() => { throw new Error("uncaught-456") }, 0)`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		logs, err := b.Logs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, l := range logs {
			if l.Level == "SEVERE" {
				all = append(all, l.Message)
			}
		}
		joined := strings.Join(all, "\n")
		if !strings.Contains(joined, "marker-123") || !strings.Contains(joined, "uncaught-456") {
			t.Errorf("SEVERE logs %q lack the console error and the uncaught exception", all)
		}
	})
}

func TestStartWithoutBinaries(t *testing.T) {
	t.Setenv("KAIROS_CHROMEDRIVER", "/nonexistent/chromedriver")
	_, _, err := browsertest.Find()
	if err == nil {
		t.Fatal("Find with a missing driver succeeded")
	}
	_, err = browsertest.New(context.Background(), browsertest.Options{})
	if err == nil || !strings.Contains(err.Error(), "chromedriver") {
		t.Fatalf("New = %v, want ErrUnavailable naming chromedriver", err)
	}
}

package browsertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrUnavailable means Chromium or chromedriver is not installed (Start
// then skips the test, or fails it when CI=true).
var ErrUnavailable = errors.New("browsertest: chromium or chromedriver not found")

// Options configure a Browser. The zero value is a 1280x800 headless
// Chromium with the binaries found by Find.
type Options struct {
	// Chromium is the browser binary; "" means Find's choice.
	Chromium string
	// Driver is the chromedriver binary; "" means Find's choice.
	Driver string
	// Width and Height are the viewport size in CSS pixels (default
	// 1280x800); the window is made large enough for it.
	Width, Height int
	// Args are extra Chromium command-line switches.
	Args []string
	// Prefs are Chromium preferences, e.g. {"enable_do_not_track": true}.
	Prefs map[string]any
	// Capabilities are merged into the session's alwaysMatch capabilities
	// (e.g. "goog:chromeOptions" keys are not merged: use Args and Prefs).
	Capabilities map[string]any
	// StartTimeout bounds starting the driver and the session (default 30 s).
	StartTimeout time.Duration
}

// Find returns the Chromium and chromedriver binaries: $KAIROS_CHROMIUM or
// the first of chromium, chromium-browser, google-chrome in PATH, and
// $KAIROS_CHROMEDRIVER or chromedriver. The error matches ErrUnavailable.
func Find() (chromium, driver string, err error) {
	look := func(env string, names ...string) string {
		if p := os.Getenv(env); p != "" {
			if q, err := exec.LookPath(p); err == nil {
				return q
			}
			return ""
		}
		for _, n := range names {
			if q, err := exec.LookPath(n); err == nil {
				return q
			}
		}
		return ""
	}
	chromium = look("KAIROS_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
	driver = look("KAIROS_CHROMEDRIVER", "chromedriver")
	if chromium == "" || driver == "" {
		var missing []string
		if chromium == "" {
			missing = append(missing, "chromium")
		}
		if driver == "" {
			missing = append(missing, "chromedriver")
		}
		return "", "", fmt.Errorf("%w: missing %s (apt-get install -y chromium chromium-driver)",
			ErrUnavailable, strings.Join(missing, " and "))
	}
	return chromium, driver, nil
}

// Start launches a Browser for a test and closes it in tb.Cleanup. When
// Chromium or chromedriver is missing it skips the test, except when the
// environment has CI=true: then it fails. Any other start error fails.
func Start(tb testing.TB, opts Options) *Browser {
	tb.Helper()
	b, err := New(context.Background(), opts)
	if errors.Is(err, ErrUnavailable) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("browser needed under CI=true: %v", err)
		}
		tb.Skipf("skipping browser test: %v", err)
	}
	if err != nil {
		tb.Fatalf("start browser: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Logf("close browser: %v", err)
		}
	})
	return b
}

// Browser is one chromedriver process with one Chromium session. Its
// methods are safe for concurrent use, but WebDriver executes commands one
// at a time.
type Browser struct {
	base    string // http://127.0.0.1:port
	session string // /session/<id>
	client  *http.Client
	cmd     *exec.Cmd
	profile string
	log     *capped

	closeOnce sync.Once
	closeErr  error
}

// New starts chromedriver and a Chromium session; ctx bounds the start
// (with Options.StartTimeout, default 30 s). Close releases everything.
// Tests use Start instead.
func New(ctx context.Context, opts Options) (*Browser, error) {
	chromium, driver := opts.Chromium, opts.Driver
	if chromium == "" || driver == "" {
		c, d, err := Find()
		if err != nil {
			return nil, err
		}
		if chromium == "" {
			chromium = c
		}
		if driver == "" {
			driver = d
		}
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	profile, err := os.MkdirTemp("", "browsertest-profile-")
	if err != nil {
		return nil, fmt.Errorf("browsertest: profile dir: %w", err)
	}
	b := &Browser{client: &http.Client{}, profile: profile, log: &capped{max: 64 << 10}}
	if err := b.startDriver(ctx, driver); err != nil {
		_ = os.RemoveAll(profile)
		return nil, err
	}
	if err := b.newSession(ctx, chromium, opts); err != nil {
		b.stopDriver()
		_ = os.RemoveAll(profile)
		return nil, err
	}
	return b, nil
}

func (b *Browser) startDriver(ctx context.Context, driver string) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("browsertest: free port: %w", err)
		}
		cmd := exec.Command(driver, "--port="+strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = b.log, b.log
		setProcessGroup(cmd)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("browsertest: start %s: %w", driver, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		b.cmd = cmd
		b.base = "http://127.0.0.1:" + strconv.Itoa(port)
		lastErr = b.waitReady(ctx, exited)
		if lastErr == nil {
			return nil
		}
		b.stopDriver()
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("browsertest: chromedriver did not start: %w (output: %s)", lastErr, b.log.String())
}

func (b *Browser) waitReady(ctx context.Context, exited <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		err := b.do(ctx, http.MethodGet, b.base+"/status", nil, &st)
		if err == nil && st.Ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for /status: %w", ctx.Err())
		case <-exited:
			return errors.New("chromedriver exited")
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Browser) newSession(ctx context.Context, chromium string, opts Options) error {
	w, h := opts.Width, opts.Height
	if w <= 0 {
		w = 1280
	}
	if h <= 0 {
		h = 800
	}
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--mute-audio",
		"--user-data-dir=" + b.profile,
		fmt.Sprintf("--window-size=%d,%d", w, h),
	}
	args = append(args, opts.Args...)
	chrome := map[string]any{"binary": chromium, "args": args}
	if len(opts.Prefs) > 0 {
		chrome["prefs"] = opts.Prefs
	}
	always := map[string]any{
		"browserName":        "chrome",
		"goog:chromeOptions": chrome,
		"goog:loggingPrefs":  map[string]string{"browser": "ALL"},
	}
	for k, v := range opts.Capabilities {
		if k != "goog:chromeOptions" {
			always[k] = v
		}
	}
	var resp struct {
		SessionID string `json:"sessionId"`
	}
	req := map[string]any{"capabilities": map[string]any{"alwaysMatch": always}}
	if err := b.do(ctx, http.MethodPost, b.base+"/session", req, &resp); err != nil {
		return fmt.Errorf("browsertest: new session: %w (driver output: %s)", err, b.log.String())
	}
	if resp.SessionID == "" {
		return errors.New("browsertest: new session: no session id in the answer")
	}
	b.session = b.base + "/session/" + resp.SessionID
	if err := b.SetViewport(ctx, w, h); err != nil {
		return fmt.Errorf("browsertest: %w", err)
	}
	return nil
}

// SetViewport resizes the window so that the page viewport (innerWidth x
// innerHeight) is w x h CSS pixels.
func (b *Browser) SetViewport(ctx context.Context, w, h int) error {
	for i := 0; i < 3; i++ {
		var m [4]int
		if err := b.ExecuteTo(ctx, &m, `return [innerWidth, innerHeight, outerWidth, outerHeight]`); err != nil {
			return fmt.Errorf("set viewport: %w", err)
		}
		if m[0] == w && m[1] == h {
			return nil
		}
		rect := map[string]int{"width": w + m[2] - m[0], "height": h + m[3] - m[1]}
		if err := b.cmdf(ctx, http.MethodPost, "/window/rect", rect, nil); err != nil {
			return fmt.Errorf("set viewport: %w", err)
		}
	}
	return fmt.Errorf("set viewport: could not make it %dx%d", w, h)
}

// EmulateMobile makes the current tab a w x h touch screen through the
// Chrome DevTools Protocol: Emulation.setDeviceMetricsOverride with mobile
// on (a mobile viewport, device scale factor 2) and
// Emulation.setTouchEmulationEnabled (navigator.maxTouchPoints 5, touch
// events). It lasts across navigations of the tab.
func (b *Browser) EmulateMobile(ctx context.Context, w, h int) error {
	if _, err := b.CDP(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": w, "height": h, "deviceScaleFactor": 2, "mobile": true}); err != nil {
		return fmt.Errorf("emulate mobile: %w", err)
	}
	if _, err := b.CDP(ctx, "Emulation.setTouchEmulationEnabled", map[string]any{
		"enabled": true, "maxTouchPoints": 5}); err != nil {
		return fmt.Errorf("emulate mobile: %w", err)
	}
	return nil
}

// Close ends the session (Chromium quits), stops chromedriver and removes
// the profile directory. It is idempotent.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		if b.session != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := b.do(ctx, http.MethodDelete, b.session, nil, nil); err != nil {
				b.closeErr = fmt.Errorf("browsertest: delete session: %w", err)
			}
			cancel()
		}
		b.stopDriver()
		// Chromium may still be flushing its profile for a moment.
		for i := 0; i < 20; i++ {
			if err := os.RemoveAll(b.profile); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return b.closeErr
}

func (b *Browser) stopDriver() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	killProcessGroup(b.cmd)
	b.cmd = nil
}

// DriverLog returns the last 64 KiB of chromedriver's output (for
// diagnosing a failed start).
func (b *Browser) DriverLog() string { return b.log.String() }

// Error is an error answered by the WebDriver server.
type Error struct {
	Status  int    // HTTP status
	Code    string // WebDriver error code, e.g. "no such element", "javascript error"
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("webdriver: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// IsCode reports whether err is an *Error with the WebDriver code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// do sends one JSON command and decodes the "value" member of the answer
// into out (when out is non-nil).
func (b *Browser) do(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, url, err)
		}
		body = bytes.NewReader(buf)
	} else if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: HTTP %d, not JSON: %.200s", method, url, resp.StatusCode, raw)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(env.Value, &e)
		return &Error{Status: resp.StatusCode, Code: e.Error, Message: e.Message}
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = env.Value
			return nil
		}
		if err := json.Unmarshal(env.Value, out); err != nil {
			return fmt.Errorf("%s %s: decode value: %w", method, url, err)
		}
	}
	return nil
}

func (b *Browser) cmdf(ctx context.Context, method, path string, in, out any) error {
	return b.do(ctx, method, b.session+path, in, out)
}

// Navigate loads url and waits for its load event.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	return b.cmdf(ctx, http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// CurrentURL returns the URL of the current page.
func (b *Browser) CurrentURL(ctx context.Context) (string, error) {
	var u string
	err := b.cmdf(ctx, http.MethodGet, "/url", nil, &u)
	return u, err
}

// Refresh reloads the current page.
func (b *Browser) Refresh(ctx context.Context) error {
	return b.cmdf(ctx, http.MethodPost, "/refresh", nil, nil)
}

// Execute runs the function body script in the page with args (available
// as `arguments`; an Element argument becomes its DOM node) and returns its
// JSON result (a DOM node comes back as an Element reference).
func (b *Browser) Execute(ctx context.Context, script string, args ...any) (json.RawMessage, error) {
	var v json.RawMessage
	err := b.cmdf(ctx, http.MethodPost, "/execute/sync", execBody(script, args), &v)
	return v, err
}

// ExecuteTo runs script like Execute and decodes its result into dst.
func (b *Browser) ExecuteTo(ctx context.Context, dst any, script string, args ...any) error {
	v, err := b.Execute(ctx, script, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("browsertest: decode script result %.200s: %w", v, err)
	}
	return nil
}

// ExecuteAsync runs script with a callback appended to args
// (arguments[arguments.length-1]); its argument is the result. The
// session's script timeout (30 s by default) bounds it.
func (b *Browser) ExecuteAsync(ctx context.Context, script string, args ...any) (json.RawMessage, error) {
	var v json.RawMessage
	err := b.cmdf(ctx, http.MethodPost, "/execute/async", execBody(script, args), &v)
	return v, err
}

func execBody(script string, args []any) map[string]any {
	if args == nil {
		args = []any{}
	}
	return map[string]any{"script": script, "args": args}
}

// WaitFor runs script every 25 ms until it returns a truthy value (not
// null, false, 0 or ""), and returns that value; ctx bounds the wait. A
// script error ends the wait at once.
func (b *Browser) WaitFor(ctx context.Context, script string, args ...any) (json.RawMessage, error) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last json.RawMessage
	for {
		v, err := b.Execute(ctx, script, args...)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("browsertest: wait for %.80q: %w", script, ctx.Err())
			}
			return nil, err
		}
		last = v
		switch strings.TrimSpace(string(v)) {
		case "", "null", "false", "0", `""`:
		default:
			return v, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("browsertest: wait for %.80q (last result %s): %w", script, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// Screenshot returns a PNG of the viewport.
func (b *Browser) Screenshot(ctx context.Context) ([]byte, error) {
	var s string
	if err := b.cmdf(ctx, http.MethodGet, "/screenshot", nil, &s); err != nil {
		return nil, err
	}
	png, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("browsertest: decode screenshot: %w", err)
	}
	return png, nil
}

// CDP sends a Chrome DevTools Protocol command (e.g.
// "Input.dispatchMouseEvent") with params and returns its result.
func (b *Browser) CDP(ctx context.Context, cmd string, params any) (json.RawMessage, error) {
	if params == nil {
		params = map[string]any{}
	}
	var v json.RawMessage
	err := b.cmdf(ctx, http.MethodPost, "/goog/cdp/execute", map[string]any{"cmd": cmd, "params": params}, &v)
	return v, err
}

// LogEntry is one browser console message.
type LogEntry struct {
	Level     string `json:"level"` // "SEVERE" (errors, uncaught exceptions), "WARNING", "INFO", ...
	Message   string `json:"message"`
	Source    string `json:"source"` // "javascript", "network", "console-api", ...
	Timestamp int64  `json:"timestamp"`
}

// Logs returns (and clears) the browser console messages gathered since
// the last call.
func (b *Browser) Logs(ctx context.Context) ([]LogEntry, error) {
	var l []LogEntry
	err := b.cmdf(ctx, http.MethodPost, "/se/log", map[string]string{"type": "browser"}, &l)
	return l, err
}

// ClearSiteData deletes the cookies, localStorage, sessionStorage and cache
// of origin (e.g. "http://127.0.0.1:8080"), through CDP.
func (b *Browser) ClearSiteData(ctx context.Context, origin string) error {
	if _, err := b.CDP(ctx, "Storage.clearDataForOrigin", map[string]any{
		"origin": origin, "storageTypes": "cookies,local_storage,session_storage,cache_storage",
	}); err != nil {
		return err
	}
	_, err := b.CDP(ctx, "Network.clearBrowserCookies", nil)
	return err
}

// capped is an io.Writer keeping the last max bytes.
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b = append(c.b, p...)
	if len(c.b) > c.max {
		c.b = append(c.b[:0], c.b[len(c.b)-c.max:]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(string(c.b))
}

// WindowHandle returns the handle of the current window (tab).
func (b *Browser) WindowHandle(ctx context.Context) (string, error) {
	var h string
	err := b.cmdf(ctx, http.MethodGet, "/window", nil, &h)
	return h, err
}

// NewTab opens a new tab and returns its handle; the current window does
// not change (use SwitchTo). Bringing another tab to the front hides the
// page of the previous one (visibilityState "hidden").
func (b *Browser) NewTab(ctx context.Context) (string, error) {
	var r struct {
		Handle string `json:"handle"`
	}
	err := b.cmdf(ctx, http.MethodPost, "/window/new", map[string]string{"type": "tab"}, &r)
	return r.Handle, err
}

// SwitchTo makes the window (tab) with handle current and brings it to
// the front.
func (b *Browser) SwitchTo(ctx context.Context, handle string) error {
	return b.cmdf(ctx, http.MethodPost, "/window", map[string]string{"handle": handle}, nil)
}

// CloseWindow closes the current window (tab); switch to another one
// afterwards.
func (b *Browser) CloseWindow(ctx context.Context) error {
	return b.cmdf(ctx, http.MethodDelete, "/window", nil, nil)
}

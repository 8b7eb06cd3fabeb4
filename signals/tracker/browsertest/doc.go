// Package browsertest drives a real headless Chromium from Go tests through
// a tiny W3C WebDriver client (plain net/http JSON calls to chromedriver),
// with no third-party module. The tracker tests use it, and so can every
// end-to-end test that needs a browser (the demo shop, the dashboard).
//
// # Requirements
//
// Debian's chromium and chromium-driver packages (scripts/services.sh
// installs them): `apt-get install -y chromium chromium-driver`. The
// binaries are looked up as $KAIROS_CHROMIUM (else chromium,
// chromium-browser, google-chrome in PATH) and $KAIROS_CHROMEDRIVER (else
// chromedriver). Start skips the test when either is missing, except when
// the environment has CI=true: then the test fails.
//
// # Use
//
//	b := browsertest.Start(t, browsertest.Options{})  // closed by t.Cleanup
//	ctx := context.Background()
//	if err := b.Navigate(ctx, srv.URL+"/page"); err != nil { t.Fatal(err) }
//	item, err := b.FindElement(ctx, `[data-kairos-item="42"]`)
//	// rest the mouse 2 s on the item, then move away
//	err = b.Perform(ctx, browsertest.Mouse().MoveToElement(item, 0, 0, 0).
//		Pause(2*time.Second).MoveTo(5, 5, 0))
//	var title string
//	err = b.ExecuteTo(ctx, &title, `return document.title`)
//	v, err := b.WaitFor(ctx, `return document.querySelector(arguments[0])`, ".done")
//	png, err := b.Screenshot(ctx)
//
// Each Start launches its own chromedriver (on a free loopback port) and
// one Chromium session with a fresh --user-data-dir, started with
// --headless --no-sandbox --disable-gpu --disable-background-networking
// and the viewport size of Options (1280x800 by default; the window is sized
// so that innerWidth x innerHeight match); Close (run by t.Cleanup) ends the session,
// the driver and its browser, and removes the profile directory. Starting
// takes about a second, so tests usually share one Browser between
// subtests and clear cookies and storage between them (ClearSiteData).
//
// # Calls
//
// Every call takes a context (its deadline bounds the HTTP call to the
// driver) and returns the driver's error as *Error, which carries the
// WebDriver error code ("no such element", "javascript error", ...).
// Execute and ExecuteAsync run a function body with `arguments`, as the
// W3C spec defines; an Element can be passed as an argument and is
// returned for DOM nodes. Perform sends W3C input actions built with
// Mouse, Wheel and Keyboard (pointer moves, pauses, button presses, wheel
// scrolls, keys), dispatched by Chromium as trusted events. CDP sends a
// MouseMoveCDP moves the mouse to any point, also outside the viewport
// (leaving through the top fires a trusted mouseout with relatedTarget
// null). NewTab, SwitchTo and CloseWindow open and switch tabs: the page of
// a tab sent to the back becomes hidden (visibilitychange), as for a
// person. CDP sends any
// Chrome DevTools Protocol command through chromedriver (for example
// Input.dispatchMouseEvent to move the pointer outside the viewport, which
// W3C actions refuse, or Emulation.setUserAgentOverride). Logs returns the
// browser console (level SEVERE for errors and uncaught exceptions).
package browsertest

package browsertest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals/tracker/browsertest"
)

// A test that rests the mouse on an element for 2 s and reads what the
// page recorded. (Compiled, not run: it needs Chromium.)
func Example() {
	var t *testing.T // the test's *testing.T
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<div id="item" style="width:200px;height:100px"
			onmouseenter="this.dataset.in = performance.now()"
			onmouseleave="document.title = Math.round(performance.now() - this.dataset.in)">item</div>`)
	}))
	defer srv.Close()

	b := browsertest.Start(t, browsertest.Options{Width: 800, Height: 600})
	ctx := context.Background()
	if err := b.Navigate(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	item, err := b.FindElement(ctx, "#item")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Perform(ctx, browsertest.Mouse().
		MoveToElement(item, 0, 0, 0).Pause(2*time.Second).MoveTo(700, 500, 0)); err != nil {
		t.Fatal(err)
	}
	var ms string
	if err := b.ExecuteTo(ctx, &ms, `return document.title`); err != nil {
		t.Fatal(err)
	}
	t.Logf("rested %s ms", ms)
}

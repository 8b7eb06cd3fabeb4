package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/engine"
)

func TestItemsCRUD(t *testing.T) {
	h := newHarness(t, nil)
	type step struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   Code   // for errors
		msg    string // error message fragment
		check  func(t *testing.T, body string)
	}
	item := func(t *testing.T, body string) engine.Item {
		t.Helper()
		var it engine.Item
		if err := jsonUnmarshal(body, &it); err != nil {
			t.Fatalf("item: %v: %s", err, body)
		}
		return it
	}
	steps := []step{
		{"create", "POST", "/v1/items", `{"id":"sku-1","title":"Red shoe","category":"shoes","tags":["red"],"attributes":{"size":"42"}}`, 201, "", "", func(t *testing.T, b string) {
			it := item(t, b)
			if it.ID != "sku-1" || it.Title != "Red shoe" || !it.Active || it.Created.IsZero() || it.Attrs["size"] != "42" {
				t.Errorf("created %+v (active must default to true)", it)
			}
		}},
		{"create again", "POST", "/v1/items", `{"id":"sku-1"}`, 409, CodeConflict, `item "sku-1" already exists: use PUT`, nil},
		{"create inactive", "POST", "/v1/items", `{"id":"sku-2","active":false}`, 201, "", "", func(t *testing.T, b string) {
			if item(t, b).Active {
				t.Errorf("active:false ignored")
			}
		}},
		{"create without id", "POST", "/v1/items", `{"title":"x"}`, 400, CodeInvalid, "id: missing", nil},
		{"engine validation", "POST", "/v1/items", `{"id":"sku-9","title":"` + strings.Repeat("t", 101) + `"}`, 400, CodeInvalid, "title: longer than 100 bytes", nil},
		{"malformed JSON", "POST", "/v1/items", `{"id":`, 400, CodeInvalid, "malformed JSON", nil},
		{"syntax error", "POST", "/v1/items", `{"id" "x"}`, 400, CodeInvalid, "malformed JSON at byte 6", nil},
		{"empty body", "POST", "/v1/items", ``, 400, CodeInvalid, "empty body", nil},
		{"two objects", "POST", "/v1/items", `{"id":"a"} {"id":"b"}`, 400, CodeInvalid, "data after the item object", nil},
		{"unknown field", "POST", "/v1/items", `{"id":"a","colour":"red"}`, 400, CodeInvalid, `unknown field "colour"`, nil},
		{"wrong type", "POST", "/v1/items", `{"id":"a","title":7}`, 400, CodeInvalid, "title: must be a string, got number", nil},
		{"wrong type of active", "POST", "/v1/items", `{"id":"a","active":"yes"}`, 400, CodeInvalid, "active: must be a boolean, got string", nil},
		{"not an object", "POST", "/v1/items", `[1]`, 400, CodeInvalid, "want a JSON object, got array", nil},
		{"too large", "POST", "/v1/items", `{"id":"a","title":"` + strings.Repeat("x", 70<<10) + `"}`, 413, CodeTooLarge, "65536 bytes (64 KiB)", nil},

		{"get", "GET", "/v1/items/sku-1", "", 200, "", "", func(t *testing.T, b string) {
			if it := item(t, b); it.Title != "Red shoe" {
				t.Errorf("got %+v", it)
			}
		}},
		{"get unknown", "GET", "/v1/items/nope", "", 404, CodeNotFound, "not found", nil},
		{"replace, with the fields GET returned", "PUT", "/v1/items/sku-1", `{"id":"sku-1","title":"Blue shoe","active":true,"created":"2020-01-01T00:00:00Z","updated":"x"}`, 200, "", "", func(t *testing.T, b string) {
			it := item(t, b)
			if it.Title != "Blue shoe" || it.Created.Year() == 2020 || !it.Updated.After(it.Created) {
				t.Errorf("replaced %+v (created/updated belong to the engine)", it)
			}
		}},
		{"upsert new, id from the path", "PUT", "/v1/items/sku%2F3", `{"title":"slash"}`, 201, "", "", func(t *testing.T, b string) {
			if it := item(t, b); it.ID != "sku/3" {
				t.Errorf("id %q, want sku/3", it.ID)
			}
		}},
		{"get escaped id", "GET", "/v1/items/sku%2F3", "", 200, "", "", nil},
		{"id mismatch", "PUT", "/v1/items/sku-1", `{"id":"sku-2"}`, 400, CodeInvalid, `id: "sku-2" in the body differs from "sku-1" in the path`, nil},

		{"list", "GET", "/v1/items?limit=2", "", 200, "", "", func(t *testing.T, b string) {
			var p ItemsPage
			if err := jsonUnmarshal(b, &p); err != nil || len(p.Items) != 2 || p.Items[0].ID != "sku-1" || p.Next != "sku-2" {
				t.Errorf("page %+v (%v)", p, err)
			}
		}},
		{"list next page", "GET", "/v1/items?limit=2&after=sku-2", "", 200, "", "", func(t *testing.T, b string) {
			var p ItemsPage
			if err := jsonUnmarshal(b, &p); err != nil || len(p.Items) != 1 || p.Items[0].ID != "sku/3" || p.Next != "" {
				t.Errorf("page %+v (%v)", p, err)
			}
			if strings.Contains(b, `"next"`) {
				t.Errorf("last page has next: %s", b)
			}
		}},
		{"list bad limit", "GET", "/v1/items?limit=5000", "", 400, CodeInvalid, "limit: 5000 is not in [1, 1000]", nil},

		{"delete", "DELETE", "/v1/items/sku-1", "", 204, "", "", func(t *testing.T, b string) {
			if b != "" {
				t.Errorf("body %q", b)
			}
		}},
		{"delete again", "DELETE", "/v1/items/sku-1", "", 404, CodeNotFound, "not found", nil},
		{"list after delete", "GET", "/v1/items", "", 200, "", "", func(t *testing.T, b string) {
			var p ItemsPage
			if err := jsonUnmarshal(b, &p); err != nil || len(p.Items) != 2 {
				t.Errorf("page %+v (%v)", p, err)
			}
		}},
		{"method not allowed", "PATCH", "/v1/items/sku-2", "{}", 405, CodeMethodNotAllowed, "method not allowed", nil},
		{"no such route", "GET", "/v2/items", "", 404, CodeNotFound, "no such route", nil},
	}
	for _, st := range steps {
		// Steps depend on each other: stop at the first failure.
		ok := t.Run(st.name, func(t *testing.T) {
			w := h.secret(st.method, st.path, st.body)
			if st.code != "" {
				wantError(t, w, st.status, st.code, st.msg)
				return
			}
			if w.Code != st.status {
				t.Fatalf("status %d, want %d: %s", w.Code, st.status, w.Body)
			}
			if st.check != nil {
				st.check(t, w.Body.String())
			}
			if st.name == "create" && w.Header().Get("Location") != "/v1/items/sku-1" {
				t.Errorf("Location %q", w.Header().Get("Location"))
			}
		})
		if !ok {
			t.FailNow()
		}
	}
	if n := len(h.cat.items); n != 2 {
		t.Errorf("%d items in the catalog at the end, want 2: %v", n, fmt.Sprint(h.cat.items))
	}
}

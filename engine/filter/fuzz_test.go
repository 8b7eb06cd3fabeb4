package filter

import (
	"testing"
	"time"
)

// FuzzCompile feeds untrusted expression texts (query parameters) to the
// compiler and evaluates what compiles: never a panic, and a rejected
// text is always an error with a message.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`"sale" in tags`, `category == page.category ? 2 : 1`, `attributes.size == "42"`,
		`created > now - duration("720h")`, `any(tags, # startsWith "s")`, `id matches "^a"`,
		`1..10`, `all(tags, {any(tags, {true})})`, `((((`, `len(tags) > 2 && active`, `segment == "device:mobile"`,
	} {
		f.Add(s)
	}
	env := &Env{ID: "a", Category: "c", Tags: []string{"s", "t"}, Attributes: map[string]string{"size": "42"},
		Created: time.Unix(0, 0), Active: true, Context: Context{Now: time.Unix(3600, 0), Page: Page{ID: "p"}}}
	f.Fuzz(func(t *testing.T, src string) {
		for _, kind := range []Kind{Bool, Number} {
			x, err := Compile("filter", src, kind)
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("%q: empty error", src)
				}
				continue
			}
			if kind == Bool {
				x.Eval(nil, env)
			} else {
				x.Value(nil, env)
			}
		}
	})
}

func TestViewsBudget(t *testing.T) {
	cat := &fakeCatalog{}
	for i := range 640 {
		cat.set(i, "x")
	}
	one := (&View{Keep: make([]uint64, 10), Rows: make([]int32, 0)}).bytes()
	vs := NewViews(3 * one)
	for i := range 5 {
		vs.Get(cat, mustCompile(t, `id == "`+string(rune('a'+i))+`"`, Bool), nil, &Context{})
	}
	vs.mu.Lock()
	n, used := vs.ll.Len(), vs.used
	vs.mu.Unlock()
	if n > 3 || used > 3*one+64 {
		t.Fatalf("%d views, %d bytes kept with a budget of %d", n, used, 3*one)
	}
}

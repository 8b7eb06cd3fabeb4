package filter

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/internal/errs"
)

func mustCompile(t *testing.T, src string, kind Kind) *Expr {
	t.Helper()
	x, err := Compile("filter", src, kind)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return x
}

func TestEval(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	env := &Env{ID: "sku-1", Category: "shoes", Tags: []string{"sale", "red"}, Attributes: map[string]string{"brand": "acme"},
		Created: now.Add(-48 * time.Hour), Active: true, Context: Context{Segment: "device:mobile", Device: "mobile", Now: now,
			Page: Page{ID: "p", Category: "shoes"}}}
	for _, c := range []struct {
		src  string
		want bool
	}{
		{`category == "shoes"`, true},
		{`"sale" in tags && attributes.brand == "acme"`, true},
		{`attributes["missing"] == "x"`, false},
		{`category == page.category`, true},
		{`segment == "device:mobile" and active`, true},
		{`created > now - duration("24h")`, false},
		{`any(tags, # startsWith "re")`, true},
		{`id matches "^sku-[0-9]+$"`, true},
	} {
		if got := mustCompile(t, c.src, Bool).Eval(nil, env); got != c.want {
			t.Errorf("%s = %v, want %v", c.src, got, c.want)
		}
	}
	for _, c := range []struct {
		src  string
		want float64
	}{
		{`"sale" in tags ? 2 : 1`, 2},
		{`1.5`, 1.5},
		{`category == "hats" ? 3 : 0.5`, 0.5},
		{`1/0`, math.MaxFloat32}, // an infinite boost lifts the most
		{`-1/0`, 0},
		{`0/0`, 0},
		{`int("x")`, 0}, // an evaluation error drops the item
	} {
		if got := mustCompile(t, c.src, Number).Value(nil, env); got != c.want {
			t.Errorf("%s = %v, want %v", c.src, got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		src, want string
		kind      Kind
	}{
		{`category == `, "line 1, column", Bool},
		{`categroy == "x"`, "unknown name categroy", Bool},
		{`category`, "expected bool", Bool},
		{`"x"`, "", Number},
		{`all(1..100000, {true})`, "range operator", Bool},
		{`all(tags, {any(tags, {true})})`, "predicate inside another", Bool},
		{`now() > created`, "", Bool},
		{`repeat("x", 100) == ""`, "", Bool},
		{"", "empty", Bool},
		{strings.Repeat("a", MaxSourceBytes+1), "bytes", Bool},
	} {
		_, err := Compile("filter", c.src, c.kind)
		if err == nil {
			t.Errorf("%q compiled", shorten(c.src))
			continue
		}
		if !errors.Is(err, errs.Invalid) {
			t.Errorf("%q: %v is not invalid", shorten(c.src), err)
		}
		msg, _ := errs.Message(err)
		if !strings.HasPrefix(msg, "filter: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%q: message %q, want filter: …%s…", shorten(c.src), msg, c.want)
		}
	}
}

func shorten(s string) string { return s[:min(len(s), 40)] }

func TestCompilerCache(t *testing.T) {
	c := NewCompiler(2)
	a1, _ := c.Compile("filter", `active`, Bool)
	a2, _ := c.Compile("filter", `active`, Bool)
	if a1 != a2 {
		t.Fatal("the same expression compiled twice")
	}
	if _, err := c.Compile("boost", `bad +`, Number); err == nil {
		t.Fatal("bad expression compiled")
	}
	_, err := c.Compile("filter", `bad +`, Number)
	if msg, _ := errs.Message(err); !strings.HasPrefix(msg, "filter: ") {
		t.Fatalf("cached error %q not renamed for the parameter", msg)
	}
	c.Compile("filter", `!active`, Bool)
	c.Compile("filter", `id == "x"`, Bool)
	if h, m, n := c.Stats(); n != 2 || h != 2 || m != 4 {
		t.Fatalf("hits %d misses %d size %d, want 2, 4, 2 (bounded)", h, m, n)
	}
	if a3, _ := c.Compile("filter", `active`, Bool); a3 == a1 {
		t.Fatal("the least recently used entry was not evicted")
	}
}

func TestContextKey(t *testing.T) {
	x := mustCompile(t, `category == page.category`, Bool)
	y := mustCompile(t, `category == "a"`, Bool)
	c1 := &Context{Page: Page{ID: "p1"}, Device: "mobile"}
	c2 := &Context{Page: Page{ID: "p2"}, Device: "mobile"}
	if x.ContextKey(c1) != x.ContextKey(c2) {
		t.Fatal("a filter reading page.category: two keys for two pages of one category")
	}
	c3 := &Context{Page: Page{ID: "p1", Category: "shoes"}}
	if x.ContextKey(c1) == x.ContextKey(c3) {
		t.Fatal("a filter reading page.category: one key for two categories")
	}
	whole := mustCompile(t, `page.id != id && len(page.tags) > 0`, Bool)
	if whole.ContextKey(c1) == whole.ContextKey(c2) {
		t.Fatal("a filter reading page.id: same key for two pages")
	}
	if k1, k2 := whole.ContextKey(&Context{Page: Page{ID: "p", Tags: []string{"a"}}}), whole.ContextKey(&Context{Page: Page{ID: "p", Tags: []string{"b"}}}); k1 == k2 {
		t.Fatal("a filter reading page.tags: same key for two tag lists (a changed page item)")
	}
	if y.UsesContext() || y.ContextKey(c1) != "" {
		t.Fatal("context-free filter has a context key")
	}
}

// fakeCatalog is a Catalog of items by row with a change log.
type fakeCatalog struct {
	cats []string
	ver  uint64
	log  []int32 // changed rows after version 0
}

func (c *fakeCatalog) Version() uint64 { return c.ver }
func (c *fakeCatalog) Rows() int       { return len(c.cats) }
func (c *fakeCatalog) ChangedSince(v uint64) ([]int32, bool) {
	return c.log[v:], true
}
func (c *fakeCatalog) Fill(row int, env *Env) { env.ID, env.Category = "", c.cats[row] }
func (c *fakeCatalog) set(row int, cat string) {
	for row >= len(c.cats) {
		c.cats = append(c.cats, "")
	}
	c.cats[row] = cat
	c.ver++
	c.log = append(c.log, int32(row))
}

func TestViewsIncremental(t *testing.T) {
	cat := &fakeCatalog{}
	for i := range 1000 {
		cat.set(i, map[bool]string{true: "sale", false: "x"}[i%100 == 0])
	}
	vs := NewViews(1 << 20)
	f := mustCompile(t, `category == "sale"`, Bool)
	b := mustCompile(t, `category == "sale" ? 3 : 1`, Number)
	ctx := &Context{}
	v := vs.Get(cat, f, b, ctx)
	if v.Count != 10 || len(v.Rows) != 10 || v.Boost[100] != 3 || v.Boost[1] != 1 {
		t.Fatalf("view: count %d rows %d boosts %v %v", v.Count, len(v.Rows), v.Boost[100], v.Boost[1])
	}
	before := vs.Evals()
	if again := vs.Get(cat, f, b, ctx); again != v || vs.Evals() != before {
		t.Fatal("an unchanged catalog re-evaluated the view")
	}
	cat.set(5, "sale")
	cat.set(1000, "sale")
	v2 := vs.Get(cat, f, b, ctx)
	if got := vs.Evals() - before; got != 2 {
		t.Fatalf("%d evaluations after 2 changes, want 2", got)
	}
	if v2.Count != 12 || !v2.Has(5) || !v2.Has(1000) || v.Has(5) {
		t.Fatalf("updated view count %d (old view changed: %v)", v2.Count, v.Has(5))
	}
	// A boost ≤ 0 drops the row.
	z := vs.Get(cat, nil, mustCompile(t, `category == "sale" ? 1 : 0`, Number), ctx)
	if z.Count != 12 {
		t.Fatalf("zero boosts kept %d rows, want 12", z.Count)
	}
}

func TestNamedStore(t *testing.T) {
	ctx := context.Background()
	mem := storagetest.NewMem(nil)
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := NewStore(mem, NewCompiler(16), StoreConfig{Now: clock, Refresh: time.Second})
	b := NewStore(mem, NewCompiler(16), StoreConfig{Now: clock, Refresh: time.Second}) // another replica
	if _, _, err := a.Put(ctx, Named{Name: "sale", Filter: `"sale" in`}); !errors.Is(err, errs.Invalid) {
		t.Fatalf("bad filter stored: %v", err)
	}
	if _, _, err := a.Put(ctx, Named{Name: "bad name!", Filter: `active`}); !errors.Is(err, errs.Invalid) {
		t.Fatalf("bad name stored: %v", err)
	}
	if _, _, err := a.Put(ctx, Named{Name: "sale", Filter: `active`, Share: 1.5}); !errors.Is(err, errs.Invalid) {
		t.Fatalf("share 1.5 stored: %v", err)
	}
	n, created, err := a.Put(ctx, Named{Name: "sale", Filter: `"sale" in tags`, Share: 0.2})
	if err != nil || !created || n.Created != now {
		t.Fatalf("put: %+v %v %v", n, created, err)
	}
	if c, err := b.Lookup(ctx, "sale"); err != nil || c.FilterExpr == nil || c.Share != 0.2 {
		t.Fatalf("other replica: %+v %v", c, err)
	}
	if _, created, _ := a.Put(ctx, Named{Name: "sale", Boost: `2`}); created {
		t.Fatal("replace reported created")
	}
	if l, _ := a.List(ctx); len(l) != 1 || l[0].Boost != "2" || l[0].Filter != "" {
		t.Fatalf("list %+v", l)
	}
	// The other replica sees the change once its refresh is due.
	now = now.Add(2 * time.Second)
	if c, _ := b.Lookup(ctx, "sale"); c.BoostExpr == nil || c.FilterExpr != nil {
		t.Fatalf("other replica did not reload: %+v", c)
	}
	if err := a.Delete(ctx, "sale"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup(ctx, "sale"); !errors.Is(err, errs.NotFound) {
		t.Fatalf("deleted filter found: %v", err)
	}
	if _, err := a.Get(ctx, "sale"); !errors.Is(err, errs.NotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := a.Delete(ctx, "sale"); !errors.Is(err, errs.NotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

// TestViewsConcurrent reads views from several goroutines while the
// catalog changes between reads (under a lock, as the engine's catalog
// mutex does): run with -race.
func TestViewsConcurrent(t *testing.T) {
	cat := &fakeCatalog{}
	for i := range 2000 {
		cat.set(i, "x")
	}
	var mu sync.RWMutex
	vs := NewViews(1 << 20)
	f := mustCompile(t, `category == "sale"`, Bool)
	b := mustCompile(t, `category == "sale" ? 2 : 1`, Number)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if g == 0 && i%10 == 0 {
					mu.Lock()
					cat.set(i, "sale")
					mu.Unlock()
					continue
				}
				mu.RLock()
				v := vs.Get(cat, f, b, &Context{})
				want := 0
				for _, c := range cat.cats {
					if c == "sale" {
						want++
					}
				}
				mu.RUnlock()
				if v.Count != want {
					t.Errorf("view counts %d, catalog has %d", v.Count, want)
					return
				}
				for _, r := range v.Qualifying() {
					_ = v.Boost[r] + v.LogBoost[r]
				}
			}
		})
	}
	wg.Wait()
}

// lockedCatalog is a fakeCatalog behind a RWMutex that counts the rows
// Fill evaluates per hold of the read lock.
type lockedCatalog struct {
	fakeCatalog
	mu      sync.RWMutex
	held    atomic.Int64 // rows filled during the current read hold
	maxHeld atomic.Int64
	readers atomic.Int64
}

func (c *lockedCatalog) rlock() func() {
	c.mu.RLock()
	c.readers.Add(1)
	return func() {
		if c.readers.Add(-1) == 0 {
			c.held.Store(0)
		}
		c.mu.RUnlock()
	}
}

func (c *lockedCatalog) Fill(row int, env *Env) {
	if n := c.held.Add(1); n > c.maxHeld.Load() {
		c.maxHeld.Store(n)
	}
	c.fakeCatalog.Fill(row, env)
}

// Prepare computes a new view in chunks of PrepareChunk rows per hold of
// the catalog's lock, while writers change rows; the next Get brings it
// up to date: the same rows as a view computed whole at the end.
func TestViewsPrepareChunksUnderConcurrentWrites(t *testing.T) {
	cat := &lockedCatalog{}
	const rows = 10 * PrepareChunk
	for i := range rows {
		cat.set(i, map[bool]string{true: "sale", false: "x"}[i%7 == 0])
	}
	vs := NewViews(1 << 24)
	f := mustCompile(t, `category == "sale"`, Bool)
	ctx := &Context{}
	stop := make(chan struct{})
	var writes sync.WaitGroup
	writes.Add(1)
	go func() {
		defer writes.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				return
			default:
			}
			cat.mu.Lock()
			cat.set(rng.IntN(rows+100), map[bool]string{true: "sale", false: "x"}[rng.IntN(2) == 0])
			cat.held.Store(0)
			cat.mu.Unlock()
		}
	}()
	vs.Prepare(cat, cat.rlock, f, nil, ctx)
	close(stop)
	writes.Wait()
	held := cat.maxHeld.Load()
	if held > PrepareChunk {
		t.Errorf("Prepare evaluated %d rows in one hold of the lock, want at most %d", held, PrepareChunk)
	}
	unlock := cat.rlock()
	got := vs.Get(cat, f, nil, ctx).Qualifying()
	unlock()
	want, _ := NewViews(1<<24).compute(cat, f, nil, ctx, nil, cat.Version(), cat.Rows())
	if !slices.Equal(got, want.Qualifying()) {
		t.Fatalf("after Prepare and Get: %d qualifying rows, a whole evaluation %d", len(got), len(want.Qualifying()))
	}
	t.Logf("%d rows, %d writes during Prepare, most rows per lock hold %d", cat.Rows(), cat.Version()-rows, held)
}

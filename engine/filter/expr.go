package filter

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/kairoshq/kairos/internal/errs"
)

// Kind is what an expression evaluates to.
type Kind uint8

// The kinds of expressions.
const (
	// Bool is a filter: true keeps the item.
	Bool Kind = iota
	// Number is a boost: a multiplier of the item's score.
	Number
)

func (k Kind) String() string {
	if k == Number {
		return "boost"
	}
	return "filter"
}

// Limits of an expression.
const (
	// MaxSourceBytes is the longest expression accepted.
	MaxSourceBytes = 2048
	// MaxNodes is the largest syntax tree accepted.
	MaxNodes uint = 200
)

// Env is what an expression reads: the item (or offer) and the request's
// context. Field names are the expression's names (tag expr).
type Env struct {
	ID         string            `expr:"id"`
	Category   string            `expr:"category"`
	Tags       []string          `expr:"tags"`
	Attributes map[string]string `expr:"attributes"`
	Created    time.Time         `expr:"created"`
	Active     bool              `expr:"active"`
	// Offers: their slot, promoted items and categories (for an item,
	// Categories is its one category and Slot and Items are empty).
	Slot       string   `expr:"slot"`
	Categories []string `expr:"categories"`
	Items      []string `expr:"items"`

	Context
}

// Context is the request's part of Env: what an expression may read of
// the request. An expression that reads none of it is evaluated once per
// item version, whatever the request; one that reads some is evaluated
// once per item version and distinct value of what it reads.
type Context struct {
	// Segment is the request's most specific trending segment
	// ("campaign:spring", "referrer:example.com", "device:mobile"; "" for
	// none).
	Segment string `expr:"segment"`
	// Campaign, Referrer (the host) and Device are the request's context.
	Campaign string `expr:"campaign"`
	Referrer string `expr:"referrer"`
	Device   string `expr:"device"`
	// Page is the catalog entry of the page's item (item=), empty without.
	Page Page `expr:"page"`
	// Now is the request's time, truncated to the minute (the builtin
	// now() is disabled: it would make every evaluation unique).
	Now time.Time `expr:"now"`
}

// Page is the page item of a request's context.
type Page struct {
	ID         string            `expr:"id"`
	Category   string            `expr:"category"`
	Tags       []string          `expr:"tags"`
	Attributes map[string]string `expr:"attributes"`
}

// The context variables, as bits of Expr.uses: the page item's fields
// are told apart, so that an expression reading page.category is
// evaluated once per category, not once per page item.
const (
	useSegment = 1 << iota
	useCampaign
	useReferrer
	useDevice
	useNow
	usePageID
	usePageCategory
	usePageTags
	usePageAttrs
	usePage = usePageID | usePageCategory | usePageTags | usePageAttrs
)

var contextVars = map[string]uint16{
	"segment": useSegment, "campaign": useCampaign, "referrer": useReferrer,
	"device": useDevice, "now": useNow,
}

var pageFields = map[string]uint16{
	"id": usePageID, "category": usePageCategory, "tags": usePageTags, "attributes": usePageAttrs,
}

// Expr is a compiled expression; safe for concurrent use.
type Expr struct {
	src  string
	kind Kind
	prog *vm.Program
	uses uint16 // context variables read
}

// Source returns the expression's text.
func (x *Expr) Source() string { return x.src }

// Kind returns what the expression evaluates to.
func (x *Expr) Kind() Kind { return x.kind }

// UsesContext reports whether the expression reads the request's context.
func (x *Expr) UsesContext() bool { return x.uses != 0 }

// ContextKey returns the values of the context variables x reads, as a
// cache key ("" when it reads none).
func (x *Expr) ContextKey(c *Context) string {
	if x == nil || x.uses == 0 {
		return ""
	}
	var b strings.Builder
	add := func(bit uint16, v string) {
		if x.uses&bit != 0 {
			b.WriteString(v)
		}
		b.WriteByte(0)
	}
	add(useSegment, c.Segment)
	add(useCampaign, c.Campaign)
	add(useReferrer, c.Referrer)
	add(useDevice, c.Device)
	add(useNow, c.Now.UTC().Format(time.RFC3339))
	add(usePageID, c.Page.ID)
	add(usePageCategory, c.Page.Category)
	if x.uses&usePageTags != 0 {
		for _, t := range c.Page.Tags {
			b.WriteString(t)
			b.WriteByte(1)
		}
	}
	b.WriteByte(0)
	if x.uses&usePageAttrs != 0 {
		keys := make([]string, 0, len(c.Page.Attributes))
		for k := range c.Page.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString(k)
			b.WriteByte(2)
			b.WriteString(c.Page.Attributes[k])
			b.WriteByte(1)
		}
	}
	return b.String()
}

// Eval evaluates a Bool expression on env with the machine m (one per
// goroutine; nil allocates one). An evaluation error (e.g. a nil value
// compared with an operator that needs a number) counts as false.
func (x *Expr) Eval(m *vm.VM, env *Env) bool {
	out, err := run(m, x.prog, env)
	b, ok := out.(bool)
	return err == nil && ok && b
}

// Value evaluates a Number expression on env; an error, NaN or -Inf
// counts as 0 (for a boost: the item is dropped), +Inf as the largest
// float32 (the strongest lift).
func (x *Expr) Value(m *vm.VM, env *Env) float64 {
	out, err := run(m, x.prog, env)
	if err != nil {
		return 0
	}
	var v float64
	switch n := out.(type) {
	case float64:
		v = n
	case int:
		v = float64(n)
	case int64:
		v = float64(n)
	default:
		return 0
	}
	switch {
	case math.IsInf(v, 1):
		return math.MaxFloat32 // the views keep boosts as float32
	case math.IsNaN(v) || math.IsInf(v, -1):
		return 0
	}
	return v
}

func run(m *vm.VM, p *vm.Program, env *Env) (out any, err error) {
	if m == nil {
		m = &vm.VM{}
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("filter: evaluation panicked: %v", r)
		}
	}()
	return m.Run(p, env)
}

// Compile compiles src as an expression of kind. A syntax or type error
// is an errs.Invalid naming the position (line:column) and the problem;
// param is the parameter the expression came in (filter, boost), named
// first.
//
// # Cost bound
//
// Expressions are bounded at compile time, as CEL's cost estimate
// bounds its programs: at most MaxSourceBytes and MaxNodes, no range
// operator (1..n), no predicate (all, any, filter, map, …) inside
// another, and no builtins that build unbounded values (repeat) or read
// the clock (now(): use the variable now). A predicate iterates over a
// tag or attribute list (at most 64 entries, engine's catalog limits), so
// one evaluation runs at most a few thousand VM steps; the VM's memory
// budget bounds the rest.
func Compile(param, src string, kind Kind) (*Expr, error) {
	return compile(param, src, kind, MaxNodes)
}

func compile(param, src string, kind Kind, maxNodes uint) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errs.New(errs.Invalid, "%s: empty expression", param)
	}
	if len(src) > 2*MaxSourceBytes+16 || (maxNodes == MaxNodes && len(src) > MaxSourceBytes) {
		return nil, errs.New(errs.Invalid, "%s: %d bytes, at most %d", param, len(src), MaxSourceBytes)
	}
	opts := []expr.Option{
		expr.Env(Env{}), expr.MaxNodes(maxNodes),
		expr.DisableBuiltin("now"), expr.DisableBuiltin("repeat"),
		expr.DisableBuiltin("timezone"), expr.DisableBuiltin("fromJSON"), expr.DisableBuiltin("toJSON"),
	}
	if kind == Bool {
		opts = append(opts, expr.AsBool())
	} else {
		opts = append(opts, expr.AsFloat64())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, compileError(param, err)
	}
	x := &Expr{src: src, kind: kind, prog: prog}
	node := prog.Node()
	c := &checker{x: x}
	ast.Walk(&node, c)
	if c.err != nil {
		return nil, errs.New(errs.Invalid, "%s: %s", param, c.err.Error())
	}
	if c.pageIdents > c.pageMembers {
		x.uses |= usePage // page used whole (e.g. passed to a builtin)
	}
	return x, nil
}

// compileError turns expr's error into an errs.Invalid with the position.
func compileError(param string, err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		msg := fe.Message
		if fe.Line > 0 {
			return errs.New(errs.Invalid, "%s: %s at line %d, column %d", param, msg, fe.Line, fe.Column+1)
		}
		return errs.New(errs.Invalid, "%s: %s", param, msg)
	}
	return errs.New(errs.Invalid, "%s: %s", param, firstLine(err.Error()))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// checker walks a compiled tree: it records the context variables read
// and rejects what the cost bound forbids.
type checker struct {
	x   *Expr
	err error
	// pageIdents counts the uses of page, pageMembers those that read
	// one of its fields (page.category).
	pageIdents, pageMembers int
}

func (c *checker) Visit(node *ast.Node) {
	if c.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		c.x.uses |= contextVars[n.Value]
		if n.Value == "page" {
			c.pageIdents++
		}
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "page" {
			if p, ok := n.Property.(*ast.StringNode); ok && pageFields[p.Value] != 0 {
				c.x.uses |= pageFields[p.Value]
				c.pageMembers++
			}
		}
	case *ast.BinaryNode:
		if n.Operator == ".." {
			c.err = positioned(c.x.src, n.Location(), "the range operator .. is not allowed (cost bound)")
		}
	case *ast.BuiltinNode:
		for _, a := range n.Arguments {
			if hasPredicate(a) && containsNestedPredicate(a) {
				c.err = positioned(c.x.src, n.Location(), "a predicate inside another is not allowed (cost bound)")
			}
		}
	}
}

func hasPredicate(n ast.Node) bool {
	_, ok := n.(*ast.PredicateNode)
	return ok
}

// containsNestedPredicate reports whether predicate p holds another.
func containsNestedPredicate(p ast.Node) bool {
	found := false
	inner := p.(*ast.PredicateNode).Node
	ast.Walk(&inner, visitFunc(func(n *ast.Node) {
		if _, ok := (*n).(*ast.PredicateNode); ok {
			found = true
		}
	}))
	return found
}

type visitFunc func(*ast.Node)

func (f visitFunc) Visit(n *ast.Node) { f(n) }

// positioned formats msg with the line and column of loc in src.
func positioned(src string, loc file.Location, msg string) error {
	line, col := 1, 1
	for i, r := range []rune(src) {
		if i == loc.From {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("%s at line %d, column %d", msg, line, col)
}

// combined caches the expressions made by And and Times.
var combined = NewCompiler(256)

// And returns the filter a && b (compiled once per distinct pair; both
// are already valid).
func And(a, b *Expr) *Expr {
	x, err := combined.compile("filter", "("+a.src+") && ("+b.src+")", Bool, 2*MaxNodes+8)
	if err != nil {
		return a // cannot happen for valid a and b; keep the base filter
	}
	return x
}

// Times returns the boost a * b.
func Times(a, b *Expr) *Expr {
	x, err := combined.compile("boost", "("+a.src+") * ("+b.src+")", Number, 2*MaxNodes+8)
	if err != nil {
		return a
	}
	return x
}

// Compiler compiles expressions once per distinct text: a bounded LRU
// cache of compiled expressions, safe for concurrent use.
type Compiler struct {
	mu   sync.Mutex
	size int
	ll   *list.List // of *entry, most recent first
	m    map[cacheKey]*list.Element
	// Hits and Misses count lookups (read under mu; for tests and metrics).
	hits, misses int
}

type cacheKey struct {
	kind Kind
	src  string
}

type entry struct {
	key cacheKey
	x   *Expr
	err error
}

// NewCompiler returns a compiler caching up to size expressions (and
// compile errors, so that a bad expression repeated is not recompiled).
func NewCompiler(size int) *Compiler {
	return &Compiler{size: max(1, size), ll: list.New(), m: map[cacheKey]*list.Element{}}
}

// Compile returns the compiled src (see the package function Compile),
// from the cache when it was compiled before.
func (c *Compiler) Compile(param, src string, kind Kind) (*Expr, error) {
	return c.compile(param, src, kind, MaxNodes)
}

func (c *Compiler) compile(param, src string, kind Kind, maxNodes uint) (*Expr, error) {
	k := cacheKey{kind, src}
	c.mu.Lock()
	if el, ok := c.m[k]; ok {
		c.ll.MoveToFront(el)
		c.hits++
		e := el.Value.(*entry)
		c.mu.Unlock()
		if e.err != nil {
			return nil, rename(e.err, param)
		}
		return e.x, nil
	}
	c.misses++
	c.mu.Unlock()
	x, err := compile(param, src, kind, maxNodes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok {
		c.m[k] = c.ll.PushFront(&entry{key: k, x: x, err: err})
		for c.ll.Len() > c.size {
			old := c.ll.Back()
			c.ll.Remove(old)
			delete(c.m, old.Value.(*entry).key)
		}
	}
	return x, err
}

// rename re-labels a cached compile error with the parameter of this
// request (the same text may come in filter= and in a stored filter).
func rename(err error, param string) error {
	msg, _ := errs.Message(err)
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return errs.New(errs.Invalid, "%s: %s", param, msg)
}

// Stats returns the cache's hits, misses and size.
func (c *Compiler) Stats() (hits, misses, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, c.ll.Len()
}

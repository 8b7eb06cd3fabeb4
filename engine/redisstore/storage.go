package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
	"github.com/kairoshq/kairos/internal/redisconn"
)

// The storage primitives (storage.Backend): versioned documents, maps
// changed by atomic transactions, and bounded logs. See the package
// documentation for their keys and scripts.

// Interface guard.
var _ storage.Backend = (*Store)(nil)

// Keys of the primitives. A collection name is put in a hash tag, so that
// the three keys of a collection are in one Redis Cluster slot.
func (s *Store) docsKey(coll string) string    { return s.p + "d:{" + coll + "}" }
func (s *Store) docIDsKey(coll string) string  { return s.p + "d:{" + coll + "}:ids" }
func (s *Store) docsVerKey(coll string) string { return s.p + "d:{" + coll + "}:v" }
func (s *Store) mapKey(key string) string      { return s.p + "m:" + key }
func (s *Store) logKey(key string) string      { return s.p + "l:" + key }

// swrap is wrap for the primitives: a cancelled or expired context is
// also errs.Unavailable (as in storagetest.Mem), the context's error
// staying in the chain; a server error of no other kind (WRONGTYPE: a
// key under the prefix written by someone else; a script error) is
// errs.Internal.
func swrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redisstore: %s: %w: %w", op, errs.Unavailable, err)
	}
	err = wrap(op, err)
	if !errors.Is(err, errs.Unavailable) && !errors.Is(err, errs.NotFound) {
		return fmt.Errorf("%w: %w", errs.Internal, err)
	}
	return err
}

// storageScripts are the scripts of the primitives, loaded by Open (Run
// sends EVALSHA, and EVAL when the server lost its script cache).
var storageScripts = []*redis.Script{docPutScript, docDeleteScript, docsScript, applyScript, logAppendScript, lazyScript}

// docPutScript stores document ARGV[2] as ARGV[1] in the hash KEYS[1],
// adds the id to the index KEYS[2] and increments the version KEYS[3];
// ARGV[3] is the mode: u (upsert), c (create: 0 when the document
// exists), r (replace: -1 when it does not).
var docPutScript = redis.NewScript(`
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if ARGV[3] == 'c' and exists then return 0 end
if ARGV[3] == 'r' and not exists then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not exists then redis.call('ZADD', KEYS[2], 0, ARGV[1]) end
redis.call('INCR', KEYS[3])
return 1
`)

// docDeleteScript removes document ARGV[1] from the hash KEYS[1] and the
// index KEYS[2] and increments the version KEYS[3], or returns 0 when
// there is no such document.
var docDeleteScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
`)

// docsScript returns up to ARGV[2] documents of the hash KEYS[1] whose
// ids follow ARGV[1] (a ZRANGE BYLEX bound) in the index KEYS[2], as
// id, JSON, id, JSON, …: one consistent page in one round trip.
var docsScript = redis.NewScript(docsScriptSrc)

const docsScriptSrc = `
local ids = redis.call('ZRANGE', KEYS[2], ARGV[1], '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
local docs = redis.call('HMGET', KEYS[1], unpack(ids))
local out = {}
for i = 1, #ids do
  if docs[i] then
    out[#out + 1] = ids[i]
    out[#out + 1] = docs[i]
  end
end
return out
`

// docsPage is the most documents one docsScript call returns (Docs with
// a larger or no limit pages): it bounds the time the server spends in
// one script and the arguments of its HMGET.
const docsPage = 1000

func putMode(m storage.PutMode) (string, error) {
	switch m {
	case storage.Upsert:
		return "u", nil
	case storage.Create:
		return "c", nil
	case storage.Replace:
		return "r", nil
	}
	return "", fmt.Errorf("%w: unknown put mode %d", errs.Invalid, m)
}

// PutDoc implements storage.Documents with docPutScript (one round trip).
func (s *Store) PutDoc(ctx context.Context, coll, id string, doc []byte, mode storage.PutMode) error {
	if err := ctx.Err(); err != nil {
		return swrap("put doc", err)
	}
	m, err := putMode(mode)
	if err != nil {
		return fmt.Errorf("redisstore: put doc %s %q: %w", coll, id, err)
	}
	n, err := docPutScript.Run(ctx, s.rdb, []string{s.docsKey(coll), s.docIDsKey(coll), s.docsVerKey(coll)}, id, doc, m).Int()
	if err != nil {
		return swrap("put doc", err)
	}
	switch n {
	case 0:
		return fmt.Errorf("redisstore: create doc %s %q: %w: it exists", coll, id, errs.Conflict)
	case -1:
		return fmt.Errorf("redisstore: replace doc %s %q: %w", coll, id, errs.NotFound)
	}
	return nil
}

// Doc implements storage.Documents (HGET).
func (s *Store) Doc(ctx context.Context, coll, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, swrap("doc", err)
	}
	b, err := s.rdb.HGet(ctx, s.docsKey(coll), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: doc %s %q: %w", coll, id, errs.NotFound)
	}
	return b, swrap("doc", err)
}

// DeleteDoc implements storage.Documents with docDeleteScript.
func (s *Store) DeleteDoc(ctx context.Context, coll, id string) error {
	if err := ctx.Err(); err != nil {
		return swrap("delete doc", err)
	}
	n, err := docDeleteScript.Run(ctx, s.rdb, []string{s.docsKey(coll), s.docIDsKey(coll), s.docsVerKey(coll)}, id).Int()
	if err != nil {
		return swrap("delete doc", err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: delete doc %s %q: %w", coll, id, errs.NotFound)
	}
	return nil
}

// Docs implements storage.Documents: docsScript, once per docsPage
// documents (O(log n + limit) for a collection of n documents).
func (s *Store) Docs(ctx context.Context, coll, after string, limit int) ([]storage.Doc, error) {
	keys := []string{s.docsKey(coll), s.docIDsKey(coll)}
	var out []storage.Doc
	for {
		if err := ctx.Err(); err != nil {
			return nil, swrap("docs", err)
		}
		page := docsPage
		if limit > 0 {
			page = min(page, limit-len(out))
		}
		// "(" + after: ids greater than after (with after "", every id
		// but the empty one, as in storagetest.Mem).
		vals, err := docsScript.Run(ctx, s.rdb, keys, "("+after, page).StringSlice()
		if err != nil {
			return nil, swrap("docs", err)
		}
		for i := 0; i+1 < len(vals); i += 2 {
			out = append(out, storage.Doc{ID: vals[i], JSON: []byte(vals[i+1])})
		}
		// The scripts keep the index and the hash in step, so a page
		// shorter than asked is the last.
		if len(vals) == 0 || len(vals)/2 < page || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		after = out[len(out)-1].ID
	}
}

// DocsVersion implements storage.Documents (GET of the version counter).
func (s *Store) DocsVersion(ctx context.Context, coll string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, swrap("docs version", err)
	}
	v, err := s.rdb.Get(ctx, s.docsVerKey(coll)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, swrap("docs version", err)
}

// Fields implements storage.Maps (HMGET).
func (s *Store) Fields(ctx context.Context, key string, fields []string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, swrap("fields", err)
	}
	out := make(map[string]string, len(fields))
	if len(fields) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.mapKey(key), fields...).Result()
	if err != nil {
		return nil, swrap("fields", err)
	}
	for i, v := range vals {
		if v, ok := v.(string); ok {
			out[fields[i]] = v
		}
	}
	return out, nil
}

// Maps implements storage.Maps: one pipeline of HGETALLs.
func (s *Store) Maps(ctx context.Context, keys []string) ([]map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, swrap("maps", err)
	}
	out := make([]map[string]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, s.mapKey(k))
		}
		return nil
	})
	if err != nil {
		return nil, swrap("maps", err)
	}
	for i, c := range cmds {
		if m := c.Val(); len(m) > 0 {
			out[i] = m
		}
	}
	return out, nil
}

// applyScript applies a storage.Txn atomically. KEYS are the maps' keys;
// ARGV[1] and ARGV[2] are the numbers of conditions and ops, followed by
// 4 arguments per condition (key index, a = absent or e = equals, field,
// value) and 4 per op (kind s, i, f, d or x; key index; field; value,
// increment or expiry time in Unix ms).
//
// It checks every condition (HGET), returning {'conflict', i} for the
// first that fails; it replies {'wrongtype', i, type} when KEYS[i] is
// not a hash (a key under the prefix written by someone else), before
// anything is written, since a command failing half-way through a
// script does not undo the commands before it; then it reads the fields
// that ops increment (one
// HMGET per map) and runs the ops on this staged copy, returning {'invalid', i, why} for the first increment of a
// field that does not hold a number Redis accepts (or that would
// overflow); only then does it apply them (HSET, HINCRBY, HINCRBYFLOAT,
// HDEL, and PEXPIREAT of each key's last expiry time at the end), so a
// failed condition or an invalid op applies nothing.
var applyScript = redis.NewScript(`
local nc, no = tonumber(ARGV[1]), tonumber(ARGV[2])
local a = 3
for i = 1, nc do
  local cur = redis.call('HGET', KEYS[tonumber(ARGV[a])], ARGV[a + 2])
  if ARGV[a + 1] == 'a' then
    if cur then return {'conflict', i} end
  elseif cur ~= ARGV[a + 3] then
    return {'conflict', i}
  end
  a = a + 4
end
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'hash' and t ~= 'none' then return {'wrongtype', i, t} end
end
local LIM = 9.2233720368547758e18
local function isint(s)
  if s == '0' then return true end
  return #s <= 20 and string.find(s, '^%-?[1-9]%d*$') ~= nil and math.abs(tonumber(s)) < LIM
end
local function isfloat(s)
  if string.find(s, '^%s') or string.find(s, '%s$') then return false end
  local x = tonumber(s)
  return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge
end
local first = a
local need, order = {}, {}
for i = 1, no do
  local kind, ki = ARGV[a], ARGV[a + 1]
  if kind == 'i' or kind == 'f' then
    if not need[ki] then
      need[ki] = {}
      order[#order + 1] = ki
    end
    table.insert(need[ki], ARGV[a + 2])
  end
  a = a + 4
end
local staged = {}
for _, ki in ipairs(order) do
  local fs = need[ki]
  for from = 1, #fs, 1000 do
    local to = math.min(from + 999, #fs)
    local vals = redis.call('HMGET', KEYS[tonumber(ki)], unpack(fs, from, to))
    for j = from, to do staged[ki .. ' ' .. fs[j]] = vals[j - from + 1] end
  end
end
local function get(ki, f)
  local id = ki .. ' ' .. f
  return staged[id] or false, id
end
a = first
for i = 1, no do
  local kind, ki, f, arg = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  a = a + 4
  if kind == 's' then
    staged[ki .. ' ' .. f] = arg
  elseif kind == 'd' then
    staged[ki .. ' ' .. f] = false
  elseif kind == 'i' or kind == 'f' then
    local v, id = get(ki, f)
    local int = kind == 'i'
    local x = 0
    if type(v) == 'table' then
      x = v.n
    elseif v then
      if int and not isint(v) then return {'invalid', i, 'not an integer'} end
      if not int and not isfloat(v) then return {'invalid', i, 'not a number'} end
      x = tonumber(v)
    end
    if int and math.floor(x) ~= x then return {'invalid', i, 'not an integer'} end
    x = x + tonumber(arg)
    if int and (x >= LIM or x <= -LIM) then return {'invalid', i, 'integer overflow'} end
    if x ~= x or x == math.huge or x == -math.huge then return {'invalid', i, 'not a finite number'} end
    staged[id] = {n = x}
  elseif kind ~= 'x' then
    return {'invalid', i, 'unknown op'}
  end
end
a = first
local exp, eorder = {}, {}
for i = 1, no do
  local kind, k, f, arg = ARGV[a], KEYS[tonumber(ARGV[a + 1])], ARGV[a + 2], ARGV[a + 3]
  a = a + 4
  if kind == 's' then
    redis.call('HSET', k, f, arg)
  elseif kind == 'i' then
    redis.call('HINCRBY', k, f, arg)
  elseif kind == 'f' then
    redis.call('HINCRBYFLOAT', k, f, arg)
  elseif kind == 'd' then
    redis.call('HDEL', k, f)
  else
    if not exp[k] then eorder[#eorder + 1] = k end
    exp[k] = arg
  end
end
for _, k in ipairs(eorder) do redis.call('PEXPIREAT', k, exp[k]) end
return 'ok'
`)

// lazyIncrements reports whether t is a Lazy Txn of increments and
// expiries only (no condition, set or delete): the shape of the derived
// counters' batches, which applyLazyIncrements writes without a script.
func lazyIncrements(t storage.Txn) bool {
	if !t.Lazy || len(t.If) > 0 {
		return false
	}
	for _, op := range t.Ops {
		switch op.Kind {
		case storage.OpIncr, storage.OpIncrFloat, storage.OpExpire:
		default:
			return false
		}
	}
	return true
}

// applyLazyIncrements writes a Lazy Txn of increments as one MULTI/EXEC
// of HINCRBY, HINCRBYFLOAT and PEXPIREAT (atomic: no other client's
// command in between), without applyScript's reading and checking of
// every field first — a third of its Redis CPU for a counters' batch.
// As storage.Txn.Lazy allows, an increment of a field that does not hold
// a number is reported Invalid while the other ops are applied.
func (s *Store) applyLazyIncrements(ctx context.Context, t storage.Txn) error {
	if s.cluster {
		return s.applyLazyBySlot(ctx, t)
	}
	expiry := map[string]time.Time{}
	var order []string
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, op := range t.Ops {
			k := s.mapKey(op.Key)
			switch op.Kind {
			case storage.OpIncr:
				p.HIncrBy(ctx, k, op.Field, op.Int)
			case storage.OpIncrFloat:
				if math.IsNaN(op.Float) || math.IsInf(op.Float, 0) {
					return fmt.Errorf("op %d: %w: increment %v of field %q of %q is not finite", i, errs.Invalid, op.Float, op.Field, op.Key)
				}
				p.HIncrByFloat(ctx, k, op.Field, op.Float)
			case storage.OpExpire:
				if _, ok := expiry[k]; !ok {
					order = append(order, k)
				}
				expiry[k] = op.At
			}
		}
		for _, k := range order {
			p.PExpireAt(ctx, k, expiry[k])
		}
		return nil
	})
	var rerr redis.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errs.Invalid):
		return fmt.Errorf("redisstore: apply: %w", err)
	case errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "WRONGTYPE"):
		return fmt.Errorf("redisstore: apply: %w: %v", errs.Internal, err)
	case errors.As(err, &rerr):
		return fmt.Errorf("redisstore: apply: %w: %v", errs.Invalid, err)
	}
	return swrap("apply", err)
}

// sameSlot returns an errs.Invalid error naming keys when they are not
// all in one Redis Cluster slot (on a cluster only: one server takes any
// keys). A Txn's keys must share a hash tag to be applied atomically
// there ("{visitor-42}:caps" and "{visitor-42}:cool").
func (s *Store) sameSlot(op string, keys []string) error {
	if !s.cluster || len(keys) < 2 {
		return nil
	}
	slot := redisconn.KeySlot(keys[0])
	for _, k := range keys[1:] {
		if redisconn.KeySlot(k) != slot {
			return fmt.Errorf("redisstore: %s: %w: on a Redis Cluster the keys of one transaction must share a hash tag (one slot), and %q (slot %d) and %q (slot %d) do not (keys: %s)",
				op, errs.Invalid, keys[0], slot, k, redisconn.KeySlot(k), strings.Join(keys, ", "))
		}
	}
	return nil
}

// lazyScript applies, in one slot, the increments and expiries of a Lazy
// Txn: ARGV holds 4 arguments per op (kind i, f or x; key index; field;
// increment or expiry time in Unix ms). A failed increment (not a
// number) stops it there, the ops before staying applied, as Lazy
// allows.
var lazyScript = redis.NewScript(`
for a = 1, #ARGV, 4 do
  local kind, k = ARGV[a], KEYS[tonumber(ARGV[a + 1])]
  if kind == 'i' then
    redis.call('HINCRBY', k, ARGV[a + 2], ARGV[a + 3])
  elseif kind == 'f' then
    redis.call('HINCRBYFLOAT', k, ARGV[a + 2], ARGV[a + 3])
  else
    redis.call('PEXPIREAT', k, ARGV[a + 3])
  end
end
return 'ok'
`)

// applyLazyBySlot writes a Lazy Txn of increments on a cluster: its ops
// grouped by slot, one lazyScript call per slot (atomic there), all in
// one pipeline (one round trip per master, in parallel). Each slot's ops
// are atomic; the Txn as a whole is not (its keys are the counters of
// different items or pages, written by increments only).
func (s *Store) applyLazyBySlot(ctx context.Context, t storage.Txn) error {
	type group struct {
		keys  []string
		index map[string]int
		args  []any
		exp   map[int]int64 // key index → expiry (Unix ms), the last op's
	}
	bySlot := map[int]*group{}
	var order []*group
	for i, op := range t.Ops {
		k := s.mapKey(op.Key)
		sl := redisconn.KeySlot(k)
		g := bySlot[sl]
		if g == nil {
			g = &group{index: map[string]int{}, exp: map[int]int64{}}
			bySlot[sl] = g
			order = append(order, g)
		}
		ki, ok := g.index[k]
		if !ok {
			g.keys = append(g.keys, k)
			ki = len(g.keys)
			g.index[k] = ki
		}
		switch op.Kind {
		case storage.OpIncr:
			g.args = append(g.args, "i", ki, op.Field, op.Int)
		case storage.OpIncrFloat:
			if math.IsNaN(op.Float) || math.IsInf(op.Float, 0) {
				return fmt.Errorf("redisstore: apply: op %d: %w: increment %v of field %q of %q is not finite", i, errs.Invalid, op.Float, op.Field, op.Key)
			}
			g.args = append(g.args, "f", ki, op.Field, strconv.FormatFloat(op.Float, 'g', -1, 64))
		case storage.OpExpire:
			g.exp[ki] = op.At.UnixMilli()
		}
	}
	// Expiries last, once per key, as on one server: an expiry set before
	// the increment that creates its key would be lost.
	for _, g := range order {
		for ki := 1; ki <= len(g.keys); ki++ {
			if at, ok := g.exp[ki]; ok {
				g.args = append(g.args, "x", ki, "", at)
			}
		}
	}
	cmds := make([]*redis.Cmd, len(order))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, g := range order {
			cmds[i] = lazyScript.EvalSha(ctx, p, g.keys, g.args...)
		}
		return nil
	})
	if err != nil && anyNoScript(cmds) {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, g := range order {
				if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
					cmds[i] = lazyScript.Eval(ctx, p, g.keys, g.args...)
				}
			}
			return nil
		})
		if err == nil {
			for _, c := range cmds {
				if err = c.Err(); err != nil {
					break
				}
			}
		}
	}
	var rerr redis.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rerr) && strings.Contains(rerr.Error(), "WRONGTYPE"):
		return fmt.Errorf("redisstore: apply: %w: %v", errs.Internal, err)
	case errors.As(err, &rerr) && !transientRefusal(err):
		return fmt.Errorf("redisstore: apply: %w: %v", errs.Invalid, err)
	}
	return swrap("apply", err)
}

// Apply implements storage.Maps with applyScript: one EVALSHA whatever
// the size of t, atomic (Redis runs a script whole, with no other
// client's command in between).
func (s *Store) Apply(ctx context.Context, t storage.Txn) error {
	if err := ctx.Err(); err != nil {
		return swrap("apply", err)
	}
	if len(t.Ops) == 0 && len(t.If) == 0 {
		return nil
	}
	if lazyIncrements(t) {
		return s.applyLazyIncrements(ctx, t)
	}
	var keys []string
	index := map[string]string{}
	keyIndex := func(k string) string {
		i, ok := index[k]
		if !ok {
			keys = append(keys, s.mapKey(k))
			i = strconv.Itoa(len(keys))
			index[k] = i
		}
		return i
	}
	args := make([]any, 0, 2+4*(len(t.If)+len(t.Ops)))
	args = append(args, len(t.If), len(t.Ops))
	for _, c := range t.If {
		flag := "e"
		if c.Absent {
			flag = "a"
		}
		args = append(args, keyIndex(c.Key), flag, c.Field, c.Value)
	}
	for i, op := range t.Ops {
		var kind, arg string
		switch op.Kind {
		case storage.OpSet:
			kind, arg = "s", op.Value
		case storage.OpIncr:
			kind, arg = "i", strconv.FormatInt(op.Int, 10)
		case storage.OpIncrFloat:
			if math.IsNaN(op.Float) || math.IsInf(op.Float, 0) {
				return fmt.Errorf("redisstore: apply: op %d: %w: increment %v of field %q of %q is not finite", i, errs.Invalid, op.Float, op.Field, op.Key)
			}
			kind, arg = "f", strconv.FormatFloat(op.Float, 'g', -1, 64)
		case storage.OpDel:
			kind = "d"
		case storage.OpExpire:
			kind, arg = "x", strconv.FormatInt(op.At.UnixMilli(), 10)
		default:
			return fmt.Errorf("redisstore: apply: op %d: %w: unknown op kind %d", i, errs.Invalid, op.Kind)
		}
		args = append(args, kind, keyIndex(op.Key), op.Field, arg)
	}
	if err := s.sameSlot("apply", keys); err != nil {
		return err
	}
	res, err := applyScript.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return swrap("apply", err)
	}
	if r, ok := res.([]any); ok && len(r) >= 2 {
		i, _ := r[1].(int64)
		switch {
		case r[0] == "conflict" && i >= 1 && int(i) <= len(t.If):
			c := t.If[i-1]
			return fmt.Errorf("redisstore: apply: condition on %s %s: %w", c.Key, c.Field, errs.Conflict)
		case r[0] == "wrongtype" && len(r) == 3 && i >= 1 && int(i) <= len(keys):
			return fmt.Errorf("redisstore: apply: %w: key %s holds a %v, not a map", errs.Internal, keys[i-1], r[2])
		case r[0] == "invalid" && len(r) == 3 && i >= 1 && int(i) <= len(t.Ops):
			op := t.Ops[i-1]
			return fmt.Errorf("redisstore: apply: op %d: %w: field %q of %q: %v", i-1, errs.Invalid, op.Field, op.Key, r[2])
		}
	}
	if res != "ok" {
		return fmt.Errorf("redisstore: apply: %w: unexpected reply %v", errs.Internal, res)
	}
	return nil
}

// Delete implements storage.Maps: one pipeline of UNLINKs (one per Redis
// key, so that it works when the keys are in different cluster slots),
// of each key's map and log.
func (s *Store) Delete(ctx context.Context, keys []string) error {
	if err := ctx.Err(); err != nil {
		return swrap("delete", err)
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, s.mapKey(k))
			p.Unlink(ctx, s.logKey(k))
		}
		return nil
	})
	return swrap("delete", err)
}

// seqDigits is the width of a log entry's sequence number in its member:
// the decimal digits of the largest uint64.
const seqDigits = 20

func padSeq(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// logAppendScript appends ARGV[2] to the log KEYS[1] (a sorted set of
// score 0 whose members are the 20-digit zero-padded sequence number
// followed by the data, so that lexical order is sequence order) with
// the sequence number max(last + 1, ARGV[1]) (ARGV[1] is max(minSeq, 1),
// padded; compared byte by byte, not with Lua's locale-dependent string
// comparison), keeps the ARGV[3] newest entries, sets the TTL to ARGV[4] ms
// (0: none) and returns the padded sequence number. The arithmetic is on
// decimal strings: exact for every uint64, where Lua's numbers (and
// sorted-set scores) are doubles, exact only below 2^53.
var logAppendScript = redis.NewScript(`
local function inc(s)
  for i = #s, 1, -1 do
    local d = string.byte(s, i) - 48
    if d < 9 then return string.sub(s, 1, i - 1) .. string.char(49 + d) .. string.rep('0', #s - i) end
  end
  return nil
end
local function less(x, y)
  for i = 1, 20 do
    local a, b = string.byte(x, i), string.byte(y, i)
    if a ~= b then return a < b end
  end
  return false
end
local seq = ARGV[1]
local last = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
if last then
  local n = inc(string.sub(last, 1, 20))
  if not n then return redis.error_reply('ERR log sequence overflow') end
  if less(seq, n) then seq = n end
end
redis.call('ZADD', KEYS[1], 0, seq .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
if ARGV[4] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return seq
`)

// Append implements storage.Logs with logAppendScript (one round trip).
func (s *Store) Append(ctx context.Context, key string, minSeq uint64, data []byte, keep int, ttl time.Duration) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, swrap("append", err)
	}
	if keep < 1 {
		return 0, fmt.Errorf("redisstore: append to %q: %w: keep %d < 1", key, errs.Invalid, keep)
	}
	ms := int64(0)
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	res, err := logAppendScript.Run(ctx, s.rdb, []string{s.logKey(key)}, padSeq(max(minSeq, 1)), data, keep, ms).Text()
	if err != nil {
		return 0, swrap("append", err)
	}
	seq, err := strconv.ParseUint(res, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: append to %q: %w: sequence number %q: %w", key, errs.Internal, res, err)
	}
	return seq, nil
}

// Entries implements storage.Logs (ZRANGE … BYLEX LIMIT: O(log n +
// limit)).
func (s *Store) Entries(ctx context.Context, key string, after uint64, limit int) ([]storage.LogEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, swrap("entries", err)
	}
	if after == math.MaxUint64 {
		return nil, nil
	}
	args := redis.ZRangeArgs{Key: s.logKey(key), Start: "[" + padSeq(after+1), Stop: "+", ByLex: true}
	if limit > 0 {
		args.Count = int64(limit)
	}
	members, err := s.rdb.ZRangeArgs(ctx, args).Result()
	if err != nil {
		return nil, swrap("entries", err)
	}
	var out []storage.LogEntry
	for _, m := range members {
		if len(m) < seqDigits {
			return nil, fmt.Errorf("redisstore: entries of %q: %w: malformed entry %q", key, errs.Internal, m)
		}
		seq, err := strconv.ParseUint(m[:seqDigits], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redisstore: entries of %q: %w: malformed entry: %w", key, errs.Internal, err)
		}
		out = append(out, storage.LogEntry{Seq: seq, Data: []byte(m[seqDigits:])})
	}
	return out, nil
}

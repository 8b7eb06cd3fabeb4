package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/experiments"
)

// Interface guard.
var _ experiments.Store = (*Store)(nil)

// The experiments.Store part (engine/experiments):
//
//	<prefix>:xp:defs          HASH    experiment id → definition JSON
//	<prefix>:xp:version       STRING  INCR on every definition write (replicas poll it)
//	<prefix>:xp:<id>:as       HASH    subject key (a:<visitor>, u:<user>) → "<variant> <Unix ms> <propensity>"
//	<prefix>:xp:<id>:un       HASH    subject key → unit: "v <variant> <t0 ms> <flags> <revenue cents> <propensity>"
//	                                  or "= <subject key>" (an alias; experiments.Unit.MarshalText)
//	<prefix>:xp:<id>:ct       HASH    "<variant>:<field>" → integer (HINCRBY): n, e (expected, millionths),
//	                                  clk, cart, conv, rev (cents), rq0…rq3 (Σx² of revenue in cents², limbs)
//	<prefix>:xp:<id>:w        STRING  bandit weights: "<version> <JSON>"
//	<prefix>:xp:<id>:lk       HASH    look time (Unix ms) → {"at":…,"counts":{…}} (HSETNX)
//
// Experiment ids have no ':' (engine/experiments validates them).
// AssignSubject, UnassignSubject, UpdateExperimentUnits,
// SetBanditWeights and DeleteExperiment are Lua scripts (atomic across
// replicas); UpdateExperimentUnits compares every unit record with the
// one the caller read and applies all or nothing.
func (s *Store) xpDefsKey() string             { return s.p + "xp:defs" }
func (s *Store) xpVersionKey() string          { return s.p + "xp:version" }
func (s *Store) xpKey(exp, part string) string { return s.p + "xp:" + exp + ":" + part }
func (s *Store) xpKeys(exp string) []string {
	return []string{s.xpKey(exp, "as"), s.xpKey(exp, "un"), s.xpKey(exp, "ct"), s.xpKey(exp, "w"), s.xpKey(exp, "lk")}
}

// PutExperimentDoc sets the definition and increments the version, in one
// MULTI/EXEC.
func (s *Store) PutExperimentDoc(ctx context.Context, id string, doc []byte) error {
	return s.putDoc(ctx, "put experiment", s.xpDefsKey(), s.xpVersionKey(), id, doc)
}

// DeleteExperiment removes the definition and every key of the
// experiment (a script; UNLINK: freed in the background).
func (s *Store) DeleteExperiment(ctx context.Context, id string) error {
	return s.deleteDoc(ctx, "delete experiment", s.xpDefsKey(), s.xpVersionKey(), id, s.xpKeys(id)...)
}

// ExperimentDocs returns every definition (HGETALL), sorted by id.
func (s *Store) ExperimentDocs(ctx context.Context) ([]experiments.Doc, error) {
	return docs[experiments.Doc](ctx, s, "experiment docs", s.xpDefsKey())
}

// ExperimentDocsVersion returns the version counter (0 before any write).
func (s *Store) ExperimentDocsVersion(ctx context.Context) (int64, error) {
	return s.docsVersion(ctx, "experiment docs version", s.xpVersionKey())
}

func encodeAssignment(a experiments.Assignment) string {
	return a.Variant + " " + strconv.FormatInt(a.At.UnixMilli(), 10) + " " + strconv.FormatFloat(a.Propensity, 'g', -1, 64)
}

func decodeAssignment(v string) (experiments.Assignment, error) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return experiments.Assignment{}, fmt.Errorf("malformed assignment %q", v)
	}
	ms, err1 := strconv.ParseInt(f[1], 10, 64)
	p, err2 := strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2); err != nil {
		return experiments.Assignment{}, fmt.Errorf("malformed assignment %q", v)
	}
	return experiments.Assignment{Variant: f[0], At: time.UnixMilli(ms).UTC(), Propensity: p}, nil
}

// assignScript sets the subject's assignment unless it has one, and
// returns {created, stored value}.
var assignScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return {1, ARGV[2]} end
return {0, redis.call('HGET', KEYS[1], ARGV[1])}
`)

// AssignSubject sets the assignment unless there is one (a script).
func (s *Store) AssignSubject(ctx context.Context, exp, subject string, a experiments.Assignment) (experiments.Assignment, bool, error) {
	if exp == "" || subject == "" || a.Variant == "" {
		return experiments.Assignment{}, false, fmt.Errorf("redisstore: assign: %w: empty experiment, subject or variant", engine.ErrInvalid)
	}
	res, err := assignScript.Run(ctx, s.rdb, []string{s.xpKey(exp, "as")}, subject, encodeAssignment(a)).Slice()
	if err != nil {
		return experiments.Assignment{}, false, wrap("assign", err)
	}
	created, _ := res[0].(int64)
	str, _ := res[1].(string)
	stored, err := decodeAssignment(str)
	if err != nil {
		return experiments.Assignment{}, false, fmt.Errorf("redisstore: assign: %w", err)
	}
	return stored, created == 1, nil
}

// SubjectAssignments reads the subjects' assignments (HMGET).
func (s *Store) SubjectAssignments(ctx context.Context, exp string, subjects []string) ([]experiments.Assignment, error) {
	out := make([]experiments.Assignment, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.xpKey(exp, "as"), subjects...).Result()
	if err != nil {
		return nil, wrap("assignments", err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			if out[i], err = decodeAssignment(str); err != nil {
				return nil, fmt.Errorf("redisstore: assignments: %w", err)
			}
		}
	}
	return out, nil
}

// unassignScript deletes the subject's assignment if it is to the
// variant ARGV[2].
var unassignScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.match(v, '^(%S+)') == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`)

// UnassignSubject removes the assignment if it is to variant (a script).
func (s *Store) UnassignSubject(ctx context.Context, exp, subject, variant string) error {
	return wrap("unassign", unassignScript.Run(ctx, s.rdb, []string{s.xpKey(exp, "as")}, subject, variant).Err())
}

// ExperimentUnits reads the records in one pipeline (an HMGET per
// experiment).
func (s *Store) ExperimentUnits(ctx context.Context, keys []experiments.UnitKey) ([]experiments.Unit, error) {
	out := make([]experiments.Unit, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	byExp := map[string][]int{}
	var order []string
	for i, k := range keys {
		if _, ok := byExp[k.Exp]; !ok {
			order = append(order, k.Exp)
		}
		byExp[k.Exp] = append(byExp[k.Exp], i)
	}
	cmds := make([]*redis.SliceCmd, len(order))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, exp := range order {
			fields := make([]string, len(byExp[exp]))
			for n, i := range byExp[exp] {
				fields[n] = keys[i].Key
			}
			cmds[j] = p.HMGet(ctx, s.xpKey(exp, "un"), fields...)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("experiment units", err)
	}
	for j, exp := range order {
		for n, v := range cmds[j].Val() {
			if str, ok := v.(string); ok {
				i := byExp[exp][n]
				if err := out[i].UnmarshalText([]byte(str)); err != nil {
					return nil, fmt.Errorf("redisstore: experiment units: %w", err)
				}
			}
		}
	}
	return out, nil
}

// updateUnitsScript applies a batch of unit writes and count increments
// if every write's old record is still stored. ARGV: the number of
// writes, then per write the KEYS index of its hash, the field, the old
// and the new record ("" = none); then the number of increments and per
// increment the KEYS index, the field and the integer.
var updateUnitsScript = redis.NewScript(`
local nw = tonumber(ARGV[1])
local i = 2
for w = 1, nw do
  local cur = redis.call('HGET', KEYS[tonumber(ARGV[i])], ARGV[i+1])
  if not cur then cur = '' end
  if cur ~= ARGV[i+2] then return 0 end
  i = i + 4
end
i = 2
for w = 1, nw do
  local k, f, new = KEYS[tonumber(ARGV[i])], ARGV[i+1], ARGV[i+3]
  if new == '' then redis.call('HDEL', k, f) else redis.call('HSET', k, f, new) end
  i = i + 4
end
local nc = tonumber(ARGV[i])
i = i + 1
for c = 1, nc do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i+1], ARGV[i+2])
  i = i + 3
end
return 1
`)

// countFields are the fields of a counts hash, per variant.
var countFields = [...]string{"n", "e", "clk", "cart", "conv", "rev", "rq0", "rq1", "rq2", "rq3"}

func countValues(c *experiments.Counts) [10]int64 {
	return [10]int64{c.N, c.Expected, c.Clicks, c.Carts, c.Conversions, c.Revenue, c.RevenueSq[0], c.RevenueSq[1], c.RevenueSq[2], c.RevenueSq[3]}
}

// UpdateExperimentUnits applies u with one script (compare-and-set of
// every record, then the writes and HINCRBYs).
func (s *Store) UpdateExperimentUnits(ctx context.Context, u experiments.Update) error {
	if err := checkUpdate(u); err != nil {
		return err
	}
	if u.Empty() {
		return ctx.Err()
	}
	var keys []string
	keyIdx := map[string]int{}
	idx := func(k string) string {
		i, ok := keyIdx[k]
		if !ok {
			keys = append(keys, k)
			i = len(keys)
			keyIdx[k] = i
		}
		return strconv.Itoa(i)
	}
	args := make([]any, 0, 1+4*len(u.Units)+1+3*len(countFields)*len(u.Counts))
	args = append(args, len(u.Units))
	for _, w := range u.Units {
		old, _ := w.Old.MarshalText()
		nw, _ := w.New.MarshalText()
		args = append(args, idx(s.xpKey(w.Exp, "un")), w.Key, string(old), string(nw))
	}
	at := len(args)
	args = append(args, 0)
	n := 0
	for _, d := range u.Counts {
		k := idx(s.xpKey(d.Exp, "ct"))
		for f, v := range countValues(&d.Counts) {
			if v != 0 {
				args = append(args, k, d.Variant+":"+countFields[f], v)
				n++
			}
		}
	}
	args[at] = n
	ok, err := updateUnitsScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return wrap("update experiment units", err)
	}
	if ok == 0 {
		return fmt.Errorf("redisstore: update experiment units: %w", experiments.ErrStaleUnits)
	}
	return nil
}

// checkUpdate refuses empty experiments, keys and variants.
func checkUpdate(u experiments.Update) error {
	for _, w := range u.Units {
		if w.Exp == "" || w.Key == "" {
			return fmt.Errorf("redisstore: update experiment units: %w: empty experiment or unit key", engine.ErrInvalid)
		}
	}
	for _, d := range u.Counts {
		if d.Exp == "" || d.Variant == "" {
			return fmt.Errorf("redisstore: update experiment units: %w: empty experiment or variant", engine.ErrInvalid)
		}
	}
	return nil
}

// ExperimentCounts reads the counts hash (HGETALL).
func (s *Store) ExperimentCounts(ctx context.Context, exp string) (map[string]experiments.Counts, error) {
	m, err := s.rdb.HGetAll(ctx, s.xpKey(exp, "ct")).Result()
	if err != nil {
		return nil, wrap("experiment counts", err)
	}
	out := map[string]experiments.Counts{}
	for field, val := range m {
		i := strings.LastIndexByte(field, ':')
		v, err := strconv.ParseInt(val, 10, 64)
		if i < 0 || err != nil {
			return nil, fmt.Errorf("redisstore: experiment counts: malformed field %q = %q", field, val)
		}
		variant, name := field[:i], field[i+1:]
		c := out[variant]
		switch name {
		case "n":
			c.N = v
		case "e":
			c.Expected = v
		case "clk":
			c.Clicks = v
		case "cart":
			c.Carts = v
		case "conv":
			c.Conversions = v
		case "rev":
			c.Revenue = v
		case "rq0", "rq1", "rq2", "rq3":
			c.RevenueSq[name[2]-'0'] = v
		default:
			return nil, fmt.Errorf("redisstore: experiment counts: unknown field %q", field)
		}
		out[variant] = c
	}
	return out, nil
}

// BanditWeights reads the weights string.
func (s *Store) BanditWeights(ctx context.Context, exp string) (experiments.Weights, error) {
	v, err := s.rdb.Get(ctx, s.xpKey(exp, "w")).Result()
	if errors.Is(err, redis.Nil) {
		return experiments.Weights{}, nil
	}
	if err != nil {
		return experiments.Weights{}, wrap("bandit weights", err)
	}
	_, js, _ := strings.Cut(v, " ")
	var w experiments.Weights
	if err := json.Unmarshal([]byte(js), &w); err != nil {
		return experiments.Weights{}, fmt.Errorf("redisstore: bandit weights: %w", err)
	}
	return w, nil
}

// setWeightsScript stores ARGV[2] if ARGV[1] is the stored version + 1.
var setWeightsScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local v = 0
if cur then v = tonumber(string.match(cur, '^(%d+) ')) end
if v + 1 ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
return 1
`)

// SetBanditWeights stores w if it is the next version (a script).
func (s *Store) SetBanditWeights(ctx context.Context, exp string, w experiments.Weights) (bool, error) {
	w.At = time.UnixMilli(w.At.UnixMilli()).UTC()
	js, err := json.Marshal(w)
	if err != nil {
		return false, fmt.Errorf("redisstore: set bandit weights: %w", err)
	}
	ok, err := setWeightsScript.Run(ctx, s.rdb, []string{s.xpKey(exp, "w")}, w.Version, js).Int()
	if err != nil {
		return false, wrap("set bandit weights", err)
	}
	return ok == 1, nil
}

// AddExperimentLook stores the look unless one exists at its time
// (HSETNX).
func (s *Store) AddExperimentLook(ctx context.Context, exp string, l experiments.Look) error {
	l.At = time.UnixMilli(l.At.UnixMilli()).UTC()
	js, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("redisstore: add look: %w", err)
	}
	return wrap("add look", s.rdb.HSetNX(ctx, s.xpKey(exp, "lk"), strconv.FormatInt(l.At.UnixMilli(), 10), js).Err())
}

// ExperimentLooks reads every look (HGETALL), in time order.
func (s *Store) ExperimentLooks(ctx context.Context, exp string) ([]experiments.Look, error) {
	m, err := s.rdb.HGetAll(ctx, s.xpKey(exp, "lk")).Result()
	if err != nil {
		return nil, wrap("looks", err)
	}
	out := make([]experiments.Look, 0, len(m))
	for _, js := range m {
		var l experiments.Look
		if err := json.Unmarshal([]byte(js), &l); err != nil {
			return nil, fmt.Errorf("redisstore: looks: %w", err)
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b experiments.Look) int { return a.At.Compare(b.At) })
	return out, nil
}

// ForgetExperimentSubjects deletes the subjects' assignments and units in
// every experiment (HKEYS of the definitions, then one pipeline of HDELs).
func (s *Store) ForgetExperimentSubjects(ctx context.Context, subjects []string) error {
	if len(subjects) == 0 {
		return ctx.Err()
	}
	ids, err := s.rdb.HKeys(ctx, s.xpDefsKey()).Result()
	if err != nil {
		return wrap("forget experiment subjects", err)
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.HDel(ctx, s.xpKey(id, "as"), subjects...)
			p.HDel(ctx, s.xpKey(id, "un"), subjects...)
		}
		return nil
	})
	return wrap("forget experiment subjects", err)
}

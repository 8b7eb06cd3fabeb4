package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/internal/redisconn"
)

// Interface guard.
var _ engine.Store = (*Store)(nil)

// Store is the Redis engine.Store, on one Redis server or a Redis
// Cluster. It is safe for concurrent use, and several engine replicas may
// share one (rows are assigned atomically by a Lua script).
type Store struct {
	rdb     redis.UniversalClient
	cluster bool
	cfg     Config
	log     *slog.Logger
	p       string // cfg.Prefix + ":"
	// blobChunk is the largest blob stored as one value and the chunk
	// size of larger ones (blobChunk; tests lower it).
	blobChunk int
	// blobOrphanAge is how old an unfinished chunked put must be to be
	// swept (blobOrphanAge; tests lower it).
	blobOrphanAge time.Duration

	// replicas holds, per master address, how many replicas its last
	// ROLE listed (commitOnNode): the WAIT of a commit is sent in the
	// commit's pipeline for that many.
	replicas sync.Map // string → int

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the Redis server or Redis Cluster of cfg.URL
// (redisconn.IsCluster decides) and checks it with a PING (an unreachable
// server is engine.ErrUnavailable).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redisstore: open: %w: %w", engine.ErrInvalid, err)
	}
	rdb, err := redisconn.New(cfg.URL, redisconn.Options{
		DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout, PoolSize: cfg.PoolSize,
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: open: %w: %w", engine.ErrInvalid, err)
	}
	s := &Store{rdb: rdb, cfg: cfg, p: cfg.Prefix + ":", blobChunk: blobChunk, blobOrphanAge: blobOrphanAge}
	_, s.cluster = rdb.(*redis.ClusterClient)
	s.log = cfg.Logger.With("component", "redisstore")
	if s.cluster {
		rdb.AddHook(retryHook{s})
	}
	if err := s.Ping(ctx); err != nil {
		s.rdb.Close()
		return nil, err
	}
	if err := s.loadScripts(ctx); err != nil {
		s.rdb.Close()
		return nil, wrap("open: load scripts", err)
	}
	if err := s.checkFormat(ctx); err != nil {
		s.rdb.Close()
		return nil, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "connected", slog.String("addr", redisconn.Addr(rdb)), slog.Bool("cluster", s.cluster), slog.String("prefix", cfg.Prefix))
	return s, nil
}

// loadScripts loads the scripts into the server's cache (SCRIPT LOAD,
// one round trip each, on every node of a cluster: Script.Load in a
// pipeline would record an empty hash), so that their first EVALSHA does
// not miss.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range append([]*redis.Script{commitScript, itemRowsScript}, storageScripts...) {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// Client returns the underlying go-redis client, a *redis.Client or a
// *redis.ClusterClient (for tests and tools; the Store owns it).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Cluster reports whether the store is on a Redis Cluster.
func (s *Store) Cluster() bool { return s.cluster }

// Keys. See the package documentation for the layout: a visitor's keys
// share the hash tag of its id (redisconn.Tag), so that they are in one
// Redis Cluster slot.
// (Built in one concatenation when the id is a tag as is: they are made
// per visitor and per event.)
func (s *Store) visitorKey(id string) string {
	if redisconn.PlainTag(id) {
		return s.p + "v:{" + id + "}"
	}
	return s.p + "v:" + redisconn.Tag(id)
}

func (s *Store) historyKey(id string) string {
	if redisconn.PlainTag(id) {
		return s.p + "h:{" + id + "}"
	}
	return s.p + "h:" + redisconn.Tag(id)
}

func (s *Store) seenKey(r engine.EventRef) string {
	if redisconn.PlainTag(r.Visitor) {
		return s.p + "seen:{" + r.Visitor + "}:" + r.ID
	}
	return s.p + "seen:" + redisconn.Tag(r.Visitor) + ":" + r.ID
}
func (s *Store) blobKey(name string) string { return s.p + "blob:" + name }
func (s *Store) rowsKey() string            { return s.p + "{rows}" }
func (s *Store) rowIDsKey() string          { return s.p + "{rows}:ids" }

// StateShards is the number of hashes the item states are spread over
// (by row modulo StateShards), each in its own slot, so that a large
// catalog's states are shared by the masters of a Redis Cluster.
const StateShards = 32

func (s *Store) statesKey(shard int) string {
	return s.p + "states:{s" + strconv.Itoa(shard) + "}"
}

// Fields of a visitor's hash.
const (
	fieldFactors = "f"
	fieldSession = "s"
	fieldCount   = "n" // events in the history string
)

// wrap translates a go-redis error: redis.Nil is engine.ErrNotFound;
// network errors, timeouts, a closed client and the server's transient
// refusals (LOADING, READONLY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, BUSY,
// OOM) are engine.ErrUnavailable; the context's own errors stay as they
// are; other server errors are wrapped plainly.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("redisstore: %s: %w", op, engine.ErrNotFound)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !errors.Is(err, redis.ErrClosed) {
		if transientRefusal(err) {
			return fmt.Errorf("redisstore: %s: %w: %w", op, engine.ErrUnavailable, err)
		}
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, engine.ErrUnavailable, err)
}

// transientRefusal reports whether err is a server's refusal that a
// later try may not meet: loading, a replica or a master without its
// link, a cluster failing over or resharding, a busy script, no memory.
func transientRefusal(err error) bool {
	for _, prefix := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY", "OOM", "MOVED", "ASK"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}

// Ping reports whether the server answers (on a cluster, a node), at
// once: it is not retried.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.rdb.Ping(context.WithValue(ctx, noRetry{}, true)).Err())
}

// Close closes the connections. Later calls return the first call's
// result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = wrap("close", s.rdb.Close()) })
	return s.closeErr
}

// Visitors loads the visitors with the given ids, in order, in one
// pipeline (one round trip): HMGET of each visitor's hash and GET of its
// history string.
func (s *Store) Visitors(ctx context.Context, ids []string) ([]engine.Visitor, error) {
	if len(ids) == 0 {
		return []engine.Visitor{}, wrap("visitors", ctx.Err())
	}
	fields := make([]*redis.SliceCmd, len(ids))
	hists := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			fields[i] = p.HMGet(ctx, s.visitorKey(id), fieldFactors, fieldSession)
			hists[i] = p.Get(ctx, s.historyKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap("visitors", err)
	}
	out := make([]engine.Visitor, len(ids))
	for i, id := range ids {
		// A missing history is redis.Nil; any other error fails the call
		// (Pipelined returned only the first).
		if err := hists[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, wrap("visitors", err)
		}
		if err := fields[i].Err(); err != nil {
			return nil, wrap("visitors", err)
		}
		v := &out[i]
		v.ID = id
		vals := fields[i].Val()
		if f, ok := vals[0].(string); ok {
			if v.Factors, err = engine.DecodeFactors(nil, f); err != nil {
				return nil, fmt.Errorf("redisstore: visitors: %s: %w", s.visitorKey(id), err)
			}
		}
		if sess, ok := vals[1].(string); ok {
			if err := v.Session.UnmarshalBinaryString(sess); err != nil {
				return nil, fmt.Errorf("redisstore: visitors: %s: %w", s.visitorKey(id), err)
			}
		}
		if h := hists[i].Val(); h != "" {
			if v.History, err = decodeHistory(h, s.cfg.HistoryLimit); err != nil {
				return nil, fmt.Errorf("redisstore: visitors: %s: %w", s.historyKey(id), err)
			}
		}
	}
	return out, nil
}

// appendHistoryFrame appends e to b as a history frame: its encoding's
// length (uint32 little-endian), then the encoding.
func appendHistoryFrame(b []byte, e *engine.HistoryEvent) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b, _ = e.AppendBinary(b)
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

var errCorruptHistory = errors.New("corrupt history")

func le32(s string, off int) int {
	return int(uint32(s[off]) | uint32(s[off+1])<<8 | uint32(s[off+2])<<16 | uint32(s[off+3])<<24)
}

// decodeHistory decodes the frames of a history string, keeping the
// newest limit events. The events' strings share the memory of h.
func decodeHistory(h string, limit int) ([]engine.HistoryEvent, error) {
	n := 0
	for off := 0; off < len(h); n++ {
		if len(h)-off < 4 {
			return nil, fmt.Errorf("%w: truncated frame at offset %d", errCorruptHistory, off)
		}
		l := le32(h, off)
		if l > len(h)-off-4 {
			return nil, fmt.Errorf("%w: frame of %d bytes at offset %d exceeds the value", errCorruptHistory, l, off)
		}
		off += 4 + l
	}
	skip := max(n-limit, 0)
	out := make([]engine.HistoryEvent, n-skip)
	for i, off := 0, 0; i < n; i++ {
		l := le32(h, off)
		if i >= skip {
			if err := out[i-skip].UnmarshalBinaryString(h[off+4 : off+4+l]); err != nil {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
		}
		off += 4 + l
	}
	return out, nil
}

// Seen reports, for each mark, whether it exists: one MGET on a server;
// on a cluster a pipeline of GETs (the marks are in their visitors'
// slots), one round trip per master, in parallel.
func (s *Store) Seen(ctx context.Context, refs []engine.EventRef) ([]bool, error) {
	if len(refs) == 0 {
		return []bool{}, wrap("seen", ctx.Err())
	}
	keys := make([]string, len(refs))
	for i, r := range refs {
		keys[i] = s.seenKey(r)
	}
	vals, err := s.mget(ctx, keys)
	if err != nil {
		return nil, wrap("seen", err)
	}
	out := make([]bool, len(refs))
	for i, v := range vals {
		out[i] = v != nil
	}
	return out, nil
}

// mget returns the values of keys (nil when absent), as MGET does: one
// MGET on a server, a pipeline of GETs on a cluster, where the keys are
// in different slots.
func (s *Store) mget(ctx context.Context, keys []string) ([]any, error) {
	if !s.cluster {
		return s.rdb.MGet(ctx, keys...).Result()
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]any, len(keys))
	for i, c := range cmds {
		switch v, err := c.Result(); {
		case err == nil:
			out[i] = v
		case !errors.Is(err, redis.Nil):
			return nil, err
		}
	}
	return out, nil
}

// commitScript records one visitor's update with its event marks,
// atomically (the keys share the visitor's hash tag: one slot). KEYS[1]
// is the visitor's hash, KEYS[2] its history string, KEYS[3] its link
// (the user an anonymous id is linked to; never set for a user's key),
// KEYS[4…] the marks. ARGV: 1 the marks' TTL in ms; 2 '1' when there is
// an update, '2' when the update replaces the history ('0': marks only);
// 3 the number of events; 4 their frames; 5 the session; 6 the factors,
// when 7 is '1'; 8 the history limit; 9 the slack past which the history
// is trimmed to the limit.
//
// When the update has marks and every one of them exists already, the
// update was recorded before (a retry of a commit whose reply was lost):
// nothing is written, and it returns -1. An update of a linked visitor
// is refused with an error starting KAIROSLINKED (engine.ErrConflict).
// Otherwise it sets the marks (SET … PX), APPENDs the frames (or SETs
// them, replacing), HINCRBYs (or HSETs) the count, HSETs the session
// (and factors) and, when the count passed limit + slack, cuts the
// oldest frames so that limit events remain; it returns the count.
var commitScript = redis.NewScript(commitScriptSrc)

// errLinkedPrefix starts commitScript's refusal of a linked visitor.
const errLinkedPrefix = "KAIROSLINKED"

const commitScriptSrc = `
local nm = #KEYS - 3
if nm > 0 and redis.call('EXISTS', unpack(KEYS, 4)) == nm then return -1 end
if ARGV[2] ~= '0' and redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.error_reply('KAIROSLINKED the visitor is linked to a user: its events belong to the user\'s state')
end
for i = 4, #KEYS do redis.call('SET', KEYS[i], '1', 'PX', ARGV[1]) end
if ARGV[2] == '0' then return 0 end
local n = tonumber(ARGV[3])
local cnt = 0
if ARGV[2] == '2' then
  redis.call('SET', KEYS[2], ARGV[4])
  redis.call('HSET', KEYS[1], 'n', n)
  cnt = n
elseif n > 0 then
  redis.call('APPEND', KEYS[2], ARGV[4])
  cnt = redis.call('HINCRBY', KEYS[1], 'n', n)
end
local limit = tonumber(ARGV[8])
if cnt > limit + tonumber(ARGV[9]) then
  local h = redis.call('GET', KEYS[2])
  local drop = cnt - limit
  local off = 1
  for i = 1, drop do
    local b1, b2, b3, b4 = string.byte(h, off, off + 3)
    if not b4 then return redis.error_reply('ERR corrupt history ' .. KEYS[2]) end
    off = off + 4 + b1 + b2 * 256 + b3 * 65536 + b4 * 16777216
  end
  redis.call('SET', KEYS[2], string.sub(h, off))
  cnt = redis.call('HINCRBY', KEYS[1], 'n', -drop)
end
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[1], 's', ARGV[5], 'f', ARGV[6])
else
  redis.call('HSET', KEYS[1], 's', ARGV[5])
end
return cnt
`

// visitorCommit is one visitor's part of a Commit: its updates, merged
// (appends concatenated, the last session, the last non-nil factors),
// and its marks.
type visitorCommit struct {
	id      string
	update  bool
	replace bool   // the update replaces the history
	append  []byte // frames
	n       int
	session engine.Session
	factors []float32
	marks   []string // keys
}

// groupCommit merges c by visitor, in order of first appearance: each
// visitor's updates and the marks under it.
func (s *Store) groupCommit(c engine.Commit) []visitorCommit {
	by := make(map[string]int, len(c.Visitors))
	out := make([]visitorCommit, 0, len(c.Visitors))
	get := func(id string) *visitorCommit {
		i, ok := by[id]
		if !ok {
			i = len(out)
			by[id] = i
			out = append(out, visitorCommit{id: id})
		}
		return &out[i]
	}
	for i := range c.Visitors {
		u := &c.Visitors[i]
		vc := get(u.ID)
		vc.update = true
		if u.Replace {
			// The whole history: what earlier updates of the commit
			// appended is in it or was meant to be replaced.
			vc.replace, vc.append, vc.n = true, vc.append[:0], 0
		}
		for j := range u.Append {
			vc.append = appendHistoryFrame(vc.append, &u.Append[j])
		}
		vc.n += len(u.Append)
		vc.session = u.Session
		if u.Factors != nil {
			vc.factors = u.Factors
		}
	}
	for _, r := range c.Events {
		vc := get(r.Visitor)
		if k := s.seenKey(r); !slices.Contains(vc.marks, k) {
			vc.marks = append(vc.marks, k)
		}
	}
	return out
}

// Commit records c as one commitScript call per visitor (its update and
// the marks under it, atomic: one slot), sent in one pipeline: on one
// server inside MULTI/EXEC, so the whole commit is atomic; on a cluster
// grouped by master by go-redis and sent to the masters in parallel, one
// round trip each, so each visitor is atomic and the commit is not (see
// the package documentation). Commands that fail with NOSCRIPT (a server
// restarted, or a replica promoted, with an empty script cache) are sent
// again with EVAL. If the connection fails after the commands were sent,
// Commit returns an error although some visitors may have been recorded:
// their marks then make the batch's redelivery skip them, and a retry of
// the same commit (the retry hook) skips every visitor whose marks are all
// recorded.
func (s *Store) Commit(ctx context.Context, c engine.Commit) error {
	if err := ctx.Err(); err != nil {
		return wrap("commit", err)
	}
	for i := range c.Visitors {
		if c.Visitors[i].ID == "" {
			return fmt.Errorf("redisstore: commit: %w: visitors[%d].id is empty", engine.ErrInvalid, i)
		}
	}
	for i, r := range c.Events {
		if r.Visitor == "" {
			return fmt.Errorf("redisstore: commit: %w: events[%d].visitor is empty", engine.ErrInvalid, i)
		}
	}
	if len(c.Events) == 0 && len(c.Visitors) == 0 {
		return nil
	}
	vcs := s.groupCommit(c)
	// Boxed once: the arguments every call shares.
	ttl, limit, slack := any(max(s.cfg.DedupWindow.Milliseconds(), 1)), any(s.cfg.HistoryLimit), any(max(s.cfg.HistoryLimit/4, 1))
	cmds := make([]*redis.Cmd, len(vcs))
	keys := make([][]string, len(vcs))
	args := make([][]any, len(vcs))
	// Sessions and factors are encoded into one buffer; the slices handed
	// to go-redis stay valid when it grows (append copies, never rewrites).
	k := 0
	if len(vcs) > 0 && vcs[0].factors != nil {
		k = len(vcs[0].factors)
	}
	buf := make([]byte, 0, len(vcs)*(48+4*k))
	for i := range vcs {
		vc := &vcs[i]
		keys[i] = append(append(make([]string, 0, 3+len(vc.marks)), s.visitorKey(vc.id), s.historyKey(vc.id), s.linkKey(vc.id)), vc.marks...)
		upd, hasF := "0", "0"
		switch {
		case vc.replace:
			upd = "2"
		case vc.update:
			upd = "1"
		}
		at := len(buf)
		buf, _ = vc.session.AppendBinary(buf)
		sess := buf[at:len(buf):len(buf)]
		var f []byte
		if vc.factors != nil {
			at = len(buf)
			buf = engine.AppendFactors(buf, vc.factors)
			hasF, f = "1", buf[at:len(buf):len(buf)]
		}
		args[i] = []any{ttl, upd, vc.n, vc.append, sess, f, hasF, limit, slack}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return commitErr(s.commitCluster(ctx, cc, keys, args))
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := range vcs {
			cmds[i] = commitScript.EvalSha(ctx, p, keys[i], args[i]...)
		}
		return nil
	})
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") || anyNoScript(cmds) {
		err = s.evalMissing(ctx, s.rdb, cmds, keys, args)
	}
	if err != nil {
		err = firstLinked(cmds, err)
	}
	return commitErr(err)
}

// firstLinked returns the refusal of a linked visitor among cmds, if
// any (MULTI/EXEC reports the first failed command, maybe another), else
// err.
func firstLinked(cmds []*redis.Cmd, err error) error {
	for _, c := range cmds {
		if c != nil && c.Err() != nil && redis.HasErrorPrefix(c.Err(), errLinkedPrefix) {
			return c.Err()
		}
	}
	return err
}

// commitErr wraps an error of Commit: commitScript's refusal of a linked
// visitor as engine.ErrConflict, others as wrap does.
func commitErr(err error) error {
	if err != nil && redis.HasErrorPrefix(err, errLinkedPrefix) {
		return fmt.Errorf("redisstore: commit: %w: %s", engine.ErrConflict, strings.TrimPrefix(err.Error(), errLinkedPrefix+" "))
	}
	return wrap("commit", err)
}

// commitCluster sends the commitScript calls (keys[i], args[i]) to the
// masters of their slots: one pipeline per master, in parallel, ending
// with WAIT when Config.WaitReplicas > 0 (on the same connection: the
// master answers once that many replicas have every write before it).
// The calls of a master that failed — it is down, its slots moved, its
// replicas did not acknowledge — are sent again, to the master the
// reloaded slot map names, after a backoff, until Config.FailoverTimeout
// or the context ends: the script skips a visitor whose marks it finds
// (one applied before the failure), so this applies each visitor once.
func (s *Store) commitCluster(ctx context.Context, cc *redis.ClusterClient, keys [][]string, args [][]any) error {
	pending := make([]int, len(keys))
	for i := range pending {
		pending[i] = i
	}
	var start time.Time
	for attempt := 0; ; attempt++ {
		failed, err := s.commitOnMasters(ctx, cc, pending, keys, args)
		if err == nil {
			return nil
		}
		if !notRun(err) && !connectionError(err) && !errors.Is(err, errNotReplicated) {
			return err
		}
		if start.IsZero() {
			start = time.Now()
		}
		if !retryHook.wait(retryHook{s}, ctx, err, attempt, start) {
			return err
		}
		pending = failed
	}
}

// errNotReplicated: WAIT returned before Config.WaitReplicas replicas
// acknowledged a commit's writes.
var errNotReplicated = errors.New("commit not acknowledged by enough replicas")

// commitOnMasters runs the calls of pending, grouped by the master of
// their slot, and returns those of the masters that failed with the
// first error.
func (s *Store) commitOnMasters(ctx context.Context, cc *redis.ClusterClient, pending []int, keys [][]string, args [][]any) ([]int, error) {
	byNode := map[*redis.Client][]int{}
	for _, i := range pending {
		node, err := cc.MasterForKey(ctx, keys[i][0])
		if err != nil {
			return pending, err
		}
		byNode[node] = append(byNode[node], i)
	}
	var (
		mu       sync.Mutex
		failed   []int
		firstErr error
		wg       sync.WaitGroup
	)
	for node, idx := range byNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.commitOnNode(ctx, node, idx, keys, args); err != nil {
				mu.Lock()
				failed = append(failed, idx...)
				if firstErr == nil {
					firstErr = fmt.Errorf("master %s: %w", node.Options().Addr, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed, firstErr
}

// commitOnNode runs the calls idx on one master in one pipeline, on one
// connection, with ROLE; when Config.WaitReplicas > 0 it waits for
// min(WaitReplicas, the replicas ROLE lists): a master whose replicas are
// all down (the one promoted by a failover, until the old master rejoins)
// acknowledges without them rather than refusing every write. The WAIT
// ends the same pipeline (one round trip) for the replicas the master's
// previous ROLE listed; only when ROLE now lists more is another WAIT
// sent after it (and when a replica died since, that WAIT waits out
// WaitTimeout once, then the master's ROLE lists one fewer).
func (s *Store) commitOnNode(ctx context.Context, node *redis.Client, idx []int, keys [][]string, args [][]any) error {
	conn := node.Conn()
	defer conn.Close()
	addr := node.Options().Addr
	cmds := make([]*redis.Cmd, len(idx))
	var role, wait *redis.Cmd
	inline := 0
	if n, ok := s.replicas.Load(addr); ok && s.cfg.WaitReplicas > 0 {
		inline = min(s.cfg.WaitReplicas, n.(int))
	}
	run := func() error {
		_, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range idx {
				if cmds[j] == nil || redis.HasErrorPrefix(cmds[j].Err(), "NOSCRIPT") {
					cmds[j] = commitScript.EvalSha(ctx, p, keys[i], args[i]...)
				}
			}
			if s.cfg.WaitReplicas > 0 {
				role = p.Do(ctx, "role")
				if inline > 0 {
					wait = p.Do(ctx, "wait", inline, s.cfg.WaitTimeout.Milliseconds())
				}
			}
			return nil
		})
		return err
	}
	err := run()
	if anyNoScript(cmds) {
		// A promoted replica or a restarted master without the script:
		// load it there, and send the missing calls again.
		if err = commitScript.Load(ctx, conn).Err(); err == nil {
			err = run()
		}
	}
	if err != nil || s.cfg.WaitReplicas == 0 {
		return err
	}
	replicas := replicasOf(role)
	s.replicas.Store(addr, replicas)
	want := min(s.cfg.WaitReplicas, replicas)
	if want == 0 {
		return nil
	}
	var n int64
	if inline >= want {
		n, err = wait.Int64()
	} else {
		n, err = conn.Do(ctx, "wait", want, s.cfg.WaitTimeout.Milliseconds()).Int64()
	}
	if err != nil || n < int64(want) {
		return fmt.Errorf("%w: %d of %d replicas within %v (%v)", errNotReplicated, n, want, s.cfg.WaitTimeout, err)
	}
	return nil
}

// replicasOf returns the number of replicas a master's ROLE reply lists
// (["master", offset, [[ip, port, offset], …]]); 0 when it is not that.
func replicasOf(role *redis.Cmd) int {
	if role == nil {
		return 0
	}
	v, err := role.Slice()
	if err != nil || len(v) < 3 || v[0] != "master" {
		return 0
	}
	rs, _ := v[2].([]any)
	return len(rs)
}

func anyNoScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// evalMissing sends again, with EVAL (which caches the script), the
// commitScript calls that failed with NOSCRIPT, and returns the first
// error of any call.
func (s *Store) evalMissing(ctx context.Context, c redis.Cmdable, cmds []*redis.Cmd, keys [][]string, args [][]any) error {
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range cmds {
			if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				cmds[i] = commitScript.Eval(ctx, p, keys[i], args[i]...)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceVisitor stores v whole in place of any state of v.ID, in one
// transaction: the history string (the newest HistoryLimit events) and
// the hash (count, session, factors) are rewritten.
func (s *Store) ReplaceVisitor(ctx context.Context, v engine.Visitor) error {
	if v.ID == "" {
		return fmt.Errorf("redisstore: replace visitor: %w: id is empty", engine.ErrInvalid)
	}
	hist := v.History[max(len(v.History)-s.cfg.HistoryLimit, 0):]
	var buf []byte
	for i := range hist {
		buf = appendHistoryFrame(buf, &hist[i])
	}
	sess, _ := v.Session.MarshalBinary()
	vk := s.visitorKey(v.ID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, vk, s.historyKey(v.ID))
		if len(buf) > 0 {
			p.Set(ctx, s.historyKey(v.ID), buf, 0)
		}
		fields := []any{fieldCount, len(hist), fieldSession, sess}
		if v.Factors != nil {
			fields = append(fields, fieldFactors, engine.AppendFactors(nil, v.Factors))
		}
		p.HSet(ctx, vk, fields...)
		return nil
	})
	return wrap("replace visitor", err)
}

// DeleteVisitor deletes the visitor's hash and history; ErrNotFound if
// neither exists. Its event marks stay (they identify events, not the
// visitor).
func (s *Store) DeleteVisitor(ctx context.Context, id string) error {
	n, err := s.rdb.Del(ctx, s.visitorKey(id), s.historyKey(id)).Result()
	if err != nil {
		return wrap("delete visitor", err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: delete visitor: %w", engine.ErrNotFound)
	}
	return nil
}

// itemRowsScript returns the row of each id of ARGV, assigning the next
// free row (the length of the ids list) to unknown ids. Scripts run
// atomically, so replicas calling it concurrently agree. Its two keys
// share the tag {rows}: one slot.
var itemRowsScript = redis.NewScript(itemRowsScriptSrc)

const itemRowsScriptSrc = `
local out = {}
for i, id in ipairs(ARGV) do
  local row = redis.call('HGET', KEYS[1], id)
  if not row then
    row = redis.call('RPUSH', KEYS[2], id) - 1
    redis.call('HSET', KEYS[1], id, row)
  end
  out[i] = tonumber(row)
end
return out
`

// ItemRows returns each id's row, assigning the next free rows to ids that
// have none, in one script call.
func (s *Store) ItemRows(ctx context.Context, ids []string) ([]int32, error) {
	for i, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("redisstore: item rows: %w: ids[%d] is empty", engine.ErrInvalid, i)
		}
	}
	if len(ids) == 0 {
		return []int32{}, wrap("item rows", ctx.Err())
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	res, err := itemRowsScript.Run(ctx, s.rdb, []string{s.rowsKey(), s.rowIDsKey()}, args...).Int64Slice()
	if err != nil {
		return nil, wrap("item rows", err)
	}
	if len(res) != len(ids) {
		return nil, fmt.Errorf("redisstore: item rows: script returned %d rows for %d ids", len(res), len(ids))
	}
	out := make([]int32, len(res))
	for i, r := range res {
		out[i] = int32(r)
	}
	return out, nil
}

// RowIDs returns every assigned id in row order.
func (s *Store) RowIDs(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.LRange(ctx, s.rowIDsKey(), 0, -1).Result()
	return ids, wrap("row ids", err)
}

// statesPerCommand bounds the fields of one HSET of SaveItemStates.
const statesPerCommand = 512

// SaveItemStates stores item states in the states hashes (shard: the row
// modulo StateShards; field: the row in decimal), in one pipeline: inside
// MULTI/EXEC on one server (atomic), one round trip per master on a
// cluster (each HSET atomic); a negative row is ErrInvalid and saves
// nothing.
func (s *Store) SaveItemStates(ctx context.Context, states []engine.ItemState) error {
	for i := range states {
		if states[i].Row < 0 {
			return fmt.Errorf("redisstore: save item states: %w: states[%d].row %d is negative", engine.ErrInvalid, i, states[i].Row)
		}
	}
	if len(states) == 0 {
		return wrap("save item states", ctx.Err())
	}
	var shards [StateShards][]any
	for i := range states {
		b, _ := states[i].MarshalBinary()
		sh := int(states[i].Row) % StateShards
		shards[sh] = append(shards[sh], strconv.Itoa(int(states[i].Row)), b)
	}
	return wrap("save item states", s.pipeline(ctx, func(p redis.Pipeliner) error {
		for sh, args := range shards {
			for i := 0; i < len(args); i += 2 * statesPerCommand {
				p.HSet(ctx, s.statesKey(sh), args[i:min(i+2*statesPerCommand, len(args))]...)
			}
		}
		return nil
	}))
}

// pipeline runs fn's commands in one MULTI/EXEC on one server, and in a
// plain pipeline on a cluster (whose keys are in several slots).
func (s *Store) pipeline(ctx context.Context, fn func(redis.Pipeliner) error) error {
	var err error
	if s.cluster {
		_, err = s.rdb.Pipelined(ctx, fn)
	} else {
		_, err = s.rdb.TxPipelined(ctx, fn)
	}
	return err
}

// ItemStates returns every stored item state, in row order. It reads each
// shard with HSCAN in pages, so that a large catalog does not block the
// server with one huge reply.
func (s *Store) ItemStates(ctx context.Context) ([]engine.ItemState, error) {
	byRow := map[int32]engine.ItemState{}
	for sh := range StateShards {
		var cursor uint64
		for {
			kvs, next, err := s.rdb.HScan(ctx, s.statesKey(sh), cursor, "", 1000).Result()
			if err != nil {
				return nil, wrap("item states", err)
			}
			for i := 0; i+1 < len(kvs); i += 2 {
				var st engine.ItemState
				if err := st.UnmarshalBinaryString(kvs[i+1]); err != nil {
					return nil, fmt.Errorf("redisstore: item states: row %s: %w", kvs[i], err)
				}
				byRow[st.Row] = st
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	out := make([]engine.ItemState, 0, len(byRow))
	for _, st := range byRow {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b engine.ItemState) int { return int(a.Row) - int(b.Row) })
	return out, nil
}

// ScanItemStates calls fn with every stored item state, in batches of
// at most 4,096 rows (engine.FactorStore). HSCAN may return a row twice,
// so it reads every state (as ItemStates) before the first call.
func (s *Store) ScanItemStates(ctx context.Context, fn func([]engine.ItemState) error) error {
	states, err := s.ItemStates(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < len(states); i += scanBatch {
		if err := fn(states[i:min(i+scanBatch, len(states))]); err != nil {
			return err
		}
	}
	return nil
}

// scanBatch is the most item states one call of a scan's fn gets.
const scanBatch = 4096

func validBlobName(name string) error {
	if name == "" || len(name) > 200 {
		return fmt.Errorf("%w: blob name %q: want 1..200 bytes", engine.ErrInvalid, url.PathEscape(name))
	}
	return nil
}

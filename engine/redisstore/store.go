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
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
)

// Interface guard.
var _ engine.Store = (*Store)(nil)

// Store is the Redis engine.Store. It is safe for concurrent use, and
// several engine replicas may share one (rows are assigned atomically by
// a Lua script).
type Store struct {
	rdb *redis.Client
	cfg Config
	log *slog.Logger
	p   string // cfg.Prefix + ":"

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the Redis server of cfg.URL and checks it with a PING
// (an unreachable server is engine.ErrUnavailable).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redisstore: open: %w: %w", engine.ErrInvalid, err)
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: open: %w: %w", engine.ErrInvalid, err)
	}
	opt.DialTimeout = cfg.DialTimeout
	opt.ReadTimeout = cfg.ReadTimeout
	opt.WriteTimeout = cfg.WriteTimeout
	// A call's context deadline bounds its network reads and writes too.
	opt.ContextTimeoutEnabled = true
	if cfg.PoolSize > 0 {
		opt.PoolSize = cfg.PoolSize
	}
	s := &Store{rdb: redis.NewClient(opt), cfg: cfg, p: cfg.Prefix + ":"}
	s.log = cfg.Logger.With("component", "redisstore")
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
	s.log.LogAttrs(ctx, slog.LevelInfo, "connected", slog.String("addr", opt.Addr), slog.Int("db", opt.DB), slog.String("prefix", cfg.Prefix))
	return s, nil
}

// loadScripts loads the scripts into the server's cache (SCRIPT LOAD,
// one round trip each: Script.Load in a pipeline would record an empty
// hash), so that their first EVALSHA does not miss.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range append([]*redis.Script{trimScript}, storageScripts...) {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// Client returns the underlying go-redis client (for tests and tools;
// the Store owns it).
func (s *Store) Client() *redis.Client { return s.rdb }

// Keys. See the package documentation for the layout.
func (s *Store) visitorKey(id string) string { return s.p + "v:" + id }
func (s *Store) historyKey(id string) string { return s.p + "h:" + id }
func (s *Store) seenKey(id string) string    { return s.p + "seen:" + id }
func (s *Store) blobKey(name string) string  { return s.p + "blob:" + name }
func (s *Store) rowsKey() string             { return s.p + "rows" }
func (s *Store) rowIDsKey() string           { return s.p + "rows:ids" }
func (s *Store) statesKey() string           { return s.p + "states" }

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
		for _, prefix := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY", "OOM"} {
			if redis.HasErrorPrefix(err, prefix) {
				return fmt.Errorf("redisstore: %s: %w: %w", op, engine.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, engine.ErrUnavailable, err)
}

// Ping reports whether the server answers.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.rdb.Ping(ctx).Err())
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

// Seen reports, for each event id, whether its mark exists (one MGET).
func (s *Store) Seen(ctx context.Context, ids []string) ([]bool, error) {
	if len(ids) == 0 {
		return []bool{}, wrap("seen", ctx.Err())
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.seenKey(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, wrap("seen", err)
	}
	out := make([]bool, len(ids))
	for i, v := range vals {
		out[i] = v != nil
	}
	return out, nil
}

// Commit records c in one MULTI/EXEC transaction, sent in one round
// trip: SET of each event id's mark with the window as TTL, and per
// visitor update APPEND of the new events to its history string, HINCRBY
// of its event count and HSET of its session and factors. Redis applies
// a transaction whole or not at all, and its persistence (RDB, or AOF
// with the fsync policy the server is configured with) records it whole
// too. If the connection fails after the transaction was sent, Commit
// returns an error although the commit may have been applied: the marks
// then make the batch's redelivery a no-op.
//
// A history that has grown past HistoryLimit + HistoryLimit/4 events is
// then trimmed to HistoryLimit by a script (a second round trip, once per
// HistoryLimit/4 events of a visitor); a failed trim is logged and left
// for the next Commit, since readers never see more than HistoryLimit
// events anyway.
func (s *Store) Commit(ctx context.Context, c engine.Commit) error {
	if err := ctx.Err(); err != nil {
		return wrap("commit", err)
	}
	for i := range c.Visitors {
		if c.Visitors[i].ID == "" {
			return fmt.Errorf("redisstore: commit: %w: visitors[%d].id is empty", engine.ErrInvalid, i)
		}
	}
	if len(c.EventIDs) == 0 && len(c.Visitors) == 0 {
		return nil
	}
	// Encode every value into one buffer; the slices handed to go-redis
	// stay valid when the buffer grows (append copies, never rewrites).
	buf := make([]byte, 0, 72*countEvents(c.Visitors)+(4*64+48)*len(c.Visitors))
	counts := make([]*redis.IntCmd, len(c.Visitors))
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range c.EventIDs {
			p.Set(ctx, s.seenKey(id), "1", s.cfg.DedupWindow)
		}
		for i := range c.Visitors {
			u := &c.Visitors[i]
			vk := s.visitorKey(u.ID)
			if n := len(u.Append); n > 0 {
				at := len(buf)
				for j := range u.Append {
					buf = appendHistoryFrame(buf, &u.Append[j])
				}
				p.Append(ctx, s.historyKey(u.ID), string(buf[at:]))
				counts[i] = p.HIncrBy(ctx, vk, fieldCount, int64(n))
			}
			at := len(buf)
			buf, _ = u.Session.AppendBinary(buf)
			sess := buf[at:len(buf):len(buf)]
			if u.Factors != nil {
				at = len(buf)
				buf = engine.AppendFactors(buf, u.Factors)
				p.HSet(ctx, vk, fieldSession, sess, fieldFactors, buf[at:len(buf):len(buf)])
			} else {
				p.HSet(ctx, vk, fieldSession, sess)
			}
		}
		return nil
	})
	if err != nil {
		return wrap("commit", err)
	}
	s.trim(ctx, c.Visitors, counts)
	return nil
}

func countEvents(vs []engine.VisitorUpdate) int {
	n := 0
	for i := range vs {
		n += len(vs[i].Append)
	}
	return n
}

// trimScript cuts the oldest events of a history string (KEYS[1]) so that
// at most ARGV[1] remain, and updates the count of the visitor's hash
// (KEYS[2]). It walks the frames' lengths (uint32 little-endian).
var trimScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')
if n <= limit then return 0 end
local h = redis.call('GET', KEYS[1])
if not h then return 0 end
local drop = n - limit
local off = 1
for i = 1, drop do
  local b1, b2, b3, b4 = string.byte(h, off, off + 3)
  if not b4 then return redis.error_reply('corrupt history ' .. KEYS[1]) end
  off = off + 4 + b1 + b2 * 256 + b3 * 65536 + b4 * 16777216
end
redis.call('SET', KEYS[1], string.sub(h, off))
redis.call('HINCRBY', KEYS[2], 'n', -drop)
return drop
`)

// trim runs trimScript, in one pipeline, for the visitors whose count
// passed the limit plus slack.
func (s *Store) trim(ctx context.Context, vs []engine.VisitorUpdate, counts []*redis.IntCmd) {
	limit := int64(s.cfg.HistoryLimit)
	slack := max(limit/4, 1)
	var ids []string
	for i, c := range counts {
		if c != nil && c.Val() > limit+slack && !slices.Contains(ids, vs[i].ID) {
			ids = append(ids, vs[i].ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	run := func() error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids {
				trimScript.EvalSha(ctx, p, []string{s.historyKey(id), s.visitorKey(id)}, limit)
			}
			return nil
		})
		return err
	}
	err := run()
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		// The server's script cache was flushed (restart): load it again.
		if err = trimScript.Load(ctx, s.rdb).Err(); err == nil {
			err = run()
		}
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "history trim failed", slog.Int("visitors", len(ids)), slog.Any("err", err))
	}
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
// atomically, so replicas calling it concurrently agree.
var itemRowsScript = redis.NewScript(`
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
`)

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

// SaveItemStates stores item states in the states hash (field: the row in
// decimal), in one transaction; a negative row is ErrInvalid and saves
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
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < len(states); i += statesPerCommand {
			chunk := states[i:min(i+statesPerCommand, len(states))]
			args := make([]any, 0, 2*len(chunk))
			for j := range chunk {
				b, _ := chunk[j].MarshalBinary()
				args = append(args, strconv.Itoa(int(chunk[j].Row)), b)
			}
			p.HSet(ctx, s.statesKey(), args...)
		}
		return nil
	})
	return wrap("save item states", err)
}

// ItemStates returns every stored item state, in row order. It reads the
// hash with HSCAN in pages, so that a large catalog does not block the
// server with one huge reply.
func (s *Store) ItemStates(ctx context.Context) ([]engine.ItemState, error) {
	byRow := map[int32]engine.ItemState{}
	var cursor uint64
	for {
		kvs, next, err := s.rdb.HScan(ctx, s.statesKey(), cursor, "", 1000).Result()
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
	out := make([]engine.ItemState, 0, len(byRow))
	for _, st := range byRow {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b engine.ItemState) int { return int(a.Row) - int(b.Row) })
	return out, nil
}

func validBlobName(name string) error {
	if name == "" || len(name) > 200 {
		return fmt.Errorf("%w: blob name %q: want 1..200 bytes", engine.ErrInvalid, url.PathEscape(name))
	}
	return nil
}

// PutBlob stores data under name (a string key), replacing any previous
// value.
func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	if err := validBlobName(name); err != nil {
		return fmt.Errorf("redisstore: put blob: %w", err)
	}
	return wrap("put blob", s.rdb.Set(ctx, s.blobKey(name), data, 0).Err())
}

// Blob returns the data stored under name, or ErrNotFound.
func (s *Store) Blob(ctx context.Context, name string) ([]byte, error) {
	if err := validBlobName(name); err != nil {
		return nil, fmt.Errorf("redisstore: blob: %w", err)
	}
	b, err := s.rdb.Get(ctx, s.blobKey(name)).Bytes()
	if err != nil {
		return nil, wrap("blob", err)
	}
	return b, nil
}

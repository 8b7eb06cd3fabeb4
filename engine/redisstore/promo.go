package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
)

// Interface guard.
var _ promo.Store = (*Store)(nil)

// Keys of the promo.Store part; see the package documentation, "Offers,
// campaigns, rules and promotions".
func (s *Store) promoDocsKey(kind promo.Kind) string { return s.p + "promo:" + string(kind) }
func (s *Store) promoVersionKey() string             { return s.p + "promo:version" }
func (s *Store) promoStatsKey() string               { return s.p + "promo:stats" }
func (s *Store) promoFactorsKey() string             { return s.p + "promo:factors" }
func (s *Store) promoSecretKey() string              { return s.p + "promo:secret" }
func (s *Store) promoVisitorKey(v string) string     { return s.p + "promo:v:" + v }
func (s *Store) promoLogKey(v string) string         { return s.p + "promo:log:" + v }

// Fields of a visitor's promo hash, and suffixes of the stats hash.
const (
	capField      = "c:"
	cooldownField = "r:"
	statImp       = ":i"
	statClick     = ":c"
	statConv      = ":v"
)

// promoSlack is added to the TTL of a visitor's promo hash: the hash lives
// a day past its longest-lived cap window or cooldown.
const promoSlack = 24 * time.Hour

func checkKind(op string, kind promo.Kind) error {
	if !kind.Valid() {
		return fmt.Errorf("redisstore: %s: %w: kind %q", op, engine.ErrInvalid, kind)
	}
	return nil
}

// PutPromoDoc sets the document in the kind's hash and increments the
// version, in one MULTI/EXEC.
func (s *Store) PutPromoDoc(ctx context.Context, kind promo.Kind, id string, doc []byte) error {
	if err := checkKind("put promo doc", kind); err != nil {
		return err
	}
	return s.putDoc(ctx, "put promo doc", s.promoDocsKey(kind), s.promoVersionKey(), id, doc)
}

// DeletePromoDoc removes the document (a script: HDEL, then INCR of the
// version only if it existed).
func (s *Store) DeletePromoDoc(ctx context.Context, kind promo.Kind, id string) error {
	if err := checkKind("delete promo doc", kind); err != nil {
		return err
	}
	return s.deleteDoc(ctx, "delete promo doc "+string(kind), s.promoDocsKey(kind), s.promoVersionKey(), id)
}

// PromoDocs returns the kind's documents (HGETALL), sorted by id.
func (s *Store) PromoDocs(ctx context.Context, kind promo.Kind) ([]promo.Doc, error) {
	if err := checkKind("promo docs", kind); err != nil {
		return nil, err
	}
	return docs[promo.Doc](ctx, s, "promo docs", s.promoDocsKey(kind))
}

// PromoDocsVersion returns the version counter (0 before any write).
func (s *Store) PromoDocsVersion(ctx context.Context) (int64, error) {
	return s.docsVersion(ctx, "promo docs version", s.promoVersionKey())
}

// capScript counts one impression against a cap window: field ARGV[1]
// of the visitor's hash holds "<count> <end ms>"; a window that ended at
// or before now (ARGV[2]) restarts at 1 and ends at now + period
// (ARGV[3]). The hash's TTL is raised to at least ARGV[4] ms.
const capScript = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local now = tonumber(ARGV[2])
local n, e = 0, 0
if cur then
  local sp = string.find(cur, ' ', 1, true)
  n = tonumber(string.sub(cur, 1, sp - 1))
  e = tonumber(string.sub(cur, sp + 1))
end
if e <= now then
  n = 1
  e = now + tonumber(ARGV[3])
else
  n = n + 1
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f %.0f', n, e))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return n
`

// AddOfferCounts adds c in one MULTI/EXEC transaction: HINCRBY of the
// stats hash's fields, HINCRBYFLOAT of each non-zero factor delta, and an
// EVAL of the cap script per cap increment (its text is sent: EVALSHA in
// a transaction cannot fall back when the script cache was flushed).
func (s *Store) AddOfferCounts(ctx context.Context, c promo.Counts) error {
	if err := ctx.Err(); err != nil {
		return wrap("add offer counts", err)
	}
	if c.Empty() {
		return nil
	}
	now := c.Now.UnixMilli()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		sk := s.promoStatsKey()
		for id, d := range c.Stats {
			for _, f := range []struct {
				suffix string
				n      int64
			}{{statImp, d.Impressions}, {statClick, d.Clicks}, {statConv, d.Conversions}} {
				if f.n != 0 {
					p.HIncrBy(ctx, sk, id+f.suffix, f.n)
				}
			}
		}
		fk := s.promoFactorsKey()
		for id, d := range c.Factors {
			for i, v := range d {
				if v != 0 {
					p.HIncrByFloat(ctx, fk, strconv.Itoa(i)+":"+id, float64(v))
				}
			}
		}
		for _, inc := range c.Caps {
			p.Eval(ctx, capScript, []string{s.promoVisitorKey(inc.Visitor)},
				capField+inc.Offer, now, inc.Period.Milliseconds(), (inc.Period + promoSlack).Milliseconds())
		}
		return nil
	})
	return wrap("add offer counts", err)
}

// OfferCounts reads the stats and factors hashes (one pipeline).
func (s *Store) OfferCounts(ctx context.Context) (promo.OfferCounts, error) {
	var stats, factors *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		stats = p.HGetAll(ctx, s.promoStatsKey())
		factors = p.HGetAll(ctx, s.promoFactorsKey())
		return nil
	})
	if err != nil {
		return promo.OfferCounts{}, wrap("offer counts", err)
	}
	oc := promo.OfferCounts{Stats: map[string]promo.OfferStats{}, Factors: map[string][]float32{}}
	for field, v := range stats.Val() {
		n, err := strconv.ParseInt(v, 10, 64)
		at := strings.LastIndexByte(field, ':')
		if err != nil || at < 0 {
			return promo.OfferCounts{}, fmt.Errorf("redisstore: offer counts: field %q = %q is not a counter", field, v)
		}
		id := field[:at]
		st := oc.Stats[id]
		switch field[at:] {
		case statImp:
			st.Impressions = n
		case statClick:
			st.Clicks = n
		case statConv:
			st.Conversions = n
		}
		oc.Stats[id] = st
	}
	for field, v := range factors.Val() {
		f, err := strconv.ParseFloat(v, 64)
		is, id, ok := strings.Cut(field, ":")
		i, ierr := strconv.Atoi(is)
		if err != nil || !ok || ierr != nil || i < 0 || i >= 4096 {
			return promo.OfferCounts{}, fmt.Errorf("redisstore: offer counts: factor field %q = %q is malformed", field, v)
		}
		vec := oc.Factors[id]
		if i >= len(vec) {
			vec = append(vec, make([]float32, i+1-len(vec))...)
		}
		vec[i] = float32(f)
		oc.Factors[id] = vec
	}
	return oc, nil
}

// OfferCaps reads the visitor's cap windows (one HMGET).
func (s *Store) OfferCaps(ctx context.Context, visitor string, offers []string, now time.Time) ([]int, error) {
	out := make([]int, len(offers))
	if len(offers) == 0 {
		return out, wrap("offer caps", ctx.Err())
	}
	fields := make([]string, len(offers))
	for i, o := range offers {
		fields[i] = capField + o
	}
	vals, err := s.rdb.HMGet(ctx, s.promoVisitorKey(visitor), fields...).Result()
	if err != nil {
		return nil, wrap("offer caps", err)
	}
	ms := now.UnixMilli()
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		ns, es, _ := strings.Cut(str, " ")
		n, err1 := strconv.Atoi(ns)
		end, err2 := strconv.ParseInt(es, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("redisstore: offer caps: %s %s = %q is malformed", s.promoVisitorKey(visitor), fields[i], str)
		}
		if end > ms {
			out[i] = n
		}
	}
	return out, nil
}

// cooldownScript starts a cooldown (field ARGV[1]: end in ms) unless one
// runs at ARGV[2]; it returns {started, end}.
var cooldownScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local now = tonumber(ARGV[2])
if cur and tonumber(cur) > now then return {0, cur} end
local e = string.format('%.0f', now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], ARGV[1], e)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return {1, e}
`)

// TryRuleCooldown runs the cooldown script on the visitor's hash.
func (s *Store) TryRuleCooldown(ctx context.Context, visitor, rule string, now time.Time, d time.Duration) (bool, time.Time, error) {
	res, err := cooldownScript.Run(ctx, s.rdb, []string{s.promoVisitorKey(visitor)},
		cooldownField+rule, now.UnixMilli(), d.Milliseconds(), (d + promoSlack).Milliseconds()).Slice()
	if err != nil {
		return false, time.Time{}, wrap("try rule cooldown", err)
	}
	if len(res) != 2 {
		return false, time.Time{}, fmt.Errorf("redisstore: try rule cooldown: unexpected reply %v", res)
	}
	started, _ := res[0].(int64)
	es, _ := res[1].(string)
	end, err := strconv.ParseInt(es, 10, 64)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("redisstore: try rule cooldown: end %q is malformed", es)
	}
	return started == 1, time.UnixMilli(end).UTC(), nil
}

// ForgetPromoVisitor deletes the visitor's promo hash and promotion log.
func (s *Store) ForgetPromoVisitor(ctx context.Context, visitor string) error {
	return wrap("forget promo visitor", s.rdb.Del(ctx, s.promoVisitorKey(visitor), s.promoLogKey(visitor)).Err())
}

// appendScript appends a promotion to the log (a sorted set scored by
// Seq, members "<seq> <json>"): Seq is the larger of ARGV[1] (creation in
// µs) and the last Seq + 1; the log keeps the newest ARGV[3] and expires
// after ARGV[4] ms. It returns Seq as a decimal string.
var appendScript = redis.NewScript(`
local seq = tonumber(ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) + 1 > seq then seq = tonumber(last[2]) + 1 end
local s = string.format('%.0f', seq)
redis.call('ZADD', KEYS[1], seq, s .. ' ' .. ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[3])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return s
`)

// maxSeq keeps Seqs exact in Redis' float64 scores and Lua numbers.
const maxSeq = 1 << 53

// AppendPromotion runs the append script on the visitor's log.
func (s *Store) AppendPromotion(ctx context.Context, p promo.Promotion, keep int, ttl time.Duration) (promo.Promotion, error) {
	if p.Visitor == "" || keep < 1 {
		return promo.Promotion{}, fmt.Errorf("redisstore: append promotion: %w: visitor %q, keep %d", engine.ErrInvalid, p.Visitor, keep)
	}
	p.Created, p.Expires = p.Created.UTC().Truncate(time.Millisecond), p.Expires.UTC().Truncate(time.Millisecond)
	p.ID, p.Seq = "", 0
	js, err := json.Marshal(p)
	if err != nil {
		return promo.Promotion{}, fmt.Errorf("redisstore: append promotion: %w", err)
	}
	created := max(p.Created.UnixMicro(), 0)
	seq, err := appendScript.Run(ctx, s.rdb, []string{s.promoLogKey(p.Visitor)}, created, js, keep, max(ttl, time.Second).Milliseconds()).Text()
	if err != nil {
		return promo.Promotion{}, wrap("append promotion", err)
	}
	if p.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil || p.Seq >= maxSeq {
		return promo.Promotion{}, fmt.Errorf("redisstore: append promotion: Seq %q is malformed", seq)
	}
	p.ID = seq
	return p, nil
}

// Promotions reads the log after a Seq (ZRANGE … BYSCORE … LIMIT).
func (s *Store) Promotions(ctx context.Context, visitor string, after uint64, limit int) ([]promo.Promotion, error) {
	if limit < 1 {
		return []promo.Promotion{}, wrap("promotions", ctx.Err())
	}
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.promoLogKey(visitor), Start: "(" + strconv.FormatUint(after, 10), Stop: "+inf",
		ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, wrap("promotions", err)
	}
	out := make([]promo.Promotion, 0, len(members))
	for _, m := range members {
		seq, js, ok := strings.Cut(m, " ")
		var p promo.Promotion
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil || json.Unmarshal([]byte(js), &p) != nil {
			return nil, fmt.Errorf("redisstore: promotions: %s: a member is malformed", s.promoLogKey(visitor))
		}
		p.Seq, p.ID = n, seq
		out = append(out, p)
	}
	return out, nil
}

// PromoSecret returns the token secret, creating it with SET NX first.
func (s *Store) PromoSecret(ctx context.Context) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("redisstore: promo secret: %w", err)
	}
	if err := s.rdb.SetNX(ctx, s.promoSecretKey(), b, 0).Err(); err != nil {
		return nil, wrap("promo secret", err)
	}
	v, err := s.rdb.Get(ctx, s.promoSecretKey()).Bytes()
	if err != nil {
		return nil, wrap("promo secret", err)
	}
	if len(v) < 16 {
		return nil, fmt.Errorf("redisstore: promo secret: %s holds %d bytes, want at least 16", s.promoSecretKey(), len(v))
	}
	return v, nil
}

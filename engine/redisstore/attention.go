package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/kairoshq/kairos/engine/attention"
)

// Interface guard.
var _ attention.Store = (*Store)(nil)

// attentionKey is the hash of one page's dwell per element.
func (s *Store) attentionKey(page string) string { return s.p + "att:" + page }

// dwellScript adds dwell to one page's hash (KEYS[1]) with at most
// ARGV[1] distinct elements besides the overflow field ARGV[3]: the dwell
// of a new element on a full page goes to ARGV[3]. ARGV[2] is the expiry
// in Unix ms (0: none); then element, ms pairs.
const dwellScript = `
local key = KEYS[1]
local max = tonumber(ARGV[1])
local other = ARGV[3]
local n = redis.call('HLEN', key) - redis.call('HEXISTS', key, other)
for i = 4, #ARGV, 2 do
  local f = ARGV[i]
  if f ~= other and redis.call('HEXISTS', key, f) == 0 then
    if n >= max then f = other else n = n + 1 end
  end
  redis.call('HINCRBY', key, f, ARGV[i + 1])
end
if ARGV[2] ~= '0' then redis.call('PEXPIREAT', key, ARGV[2]) end
return n
`

// AddDwell adds the write in one MULTI/EXEC transaction (one round trip)
// holding one dwellScript per page (consecutive deltas of one page share
// it; attention.Attention sorts them by page). A malformed write fails
// before anything is sent.
func (s *Store) AddDwell(ctx context.Context, w attention.Write) error {
	if err := w.Check(); err != nil {
		return fmt.Errorf("redisstore: add dwell: %w", err)
	}
	if err := ctx.Err(); err != nil || len(w.Deltas) == 0 {
		return wrap("add dwell", err)
	}
	expire := "0"
	if !w.ExpireAt.IsZero() {
		expire = strconv.FormatInt(max(w.ExpireAt.UnixMilli(), 1), 10)
	}
	maxEl := strconv.Itoa(w.MaxElements)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < len(w.Deltas); {
			j := i + 1
			for j < len(w.Deltas) && w.Deltas[j].Page == w.Deltas[i].Page {
				j++
			}
			args := make([]any, 0, 3+2*(j-i))
			args = append(args, maxEl, expire, attention.OtherElement)
			for _, d := range w.Deltas[i:j] {
				args = append(args, d.Element, d.Ms)
			}
			p.Eval(ctx, dwellScript, []string{s.attentionKey(w.Deltas[i].Page)}, args...)
			i = j
		}
		return nil
	})
	return wrap("add dwell", err)
}

// PageDwell reads the page's hash with HGETALL; Redis has dropped it when
// it expired.
func (s *Store) PageDwell(ctx context.Context, page string) ([]attention.ElementDwell, error) {
	h, err := s.rdb.HGetAll(ctx, s.attentionKey(page)).Result()
	if err != nil {
		return nil, wrap("page dwell", err)
	}
	out := make([]attention.ElementDwell, 0, len(h))
	for el, v := range h {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redisstore: page dwell: %s: field %q: %q is not an integer", s.attentionKey(page), el, v)
		}
		out = append(out, attention.ElementDwell{Element: el, Ms: ms})
	}
	return out, nil
}

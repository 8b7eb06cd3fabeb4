package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Failover
//
// A killed Redis Cluster master answers nothing, not even MOVED, and
// go-redis keeps sending its slots to it until its slot map is reloaded
// (by default every 60 s). retryHook, added to the client by Open, makes
// the store survive a master failover (cluster-node-timeout, then a
// replica promoted): when a command or a pipeline fails with a connection
// error, a timeout or a cluster refusal (CLUSTERDOWN, TRYAGAIN, MOVED,
// ASK, READONLY, MASTERDOWN, LOADING), it asks for a reload of the slot
// map (ClusterClient.ReloadState: lazy, coalesced) and tries the failed
// commands again after a backoff (50 ms doubling to 1 s), until they
// succeed, the caller's context ends, or Config.FailoverTimeout has
// passed since the first failure. Writes thus stall for the failover (a
// few seconds with cluster-node-timeout 2000 ms) and then succeed.
//
// Only commands that a retry cannot apply twice are tried again after an
// error that leaves it unknown whether the server ran them (a broken
// connection or a timeout after the command was sent): the reads, and
// writes that are idempotent — the Commit script (a visitor whose marks
// all exist is skipped) and plain SET, HSET, DEL, UNLINK, SADD, SREM,
// PEXPIREAT. An Apply script, an increment or a log Append is tried
// again only after an error that proves it was not run (the connection
// was refused, the pool could not dial, or the server refused it); else
// its error is returned (errs.Unavailable) and the caller's redelivery
// decides. The hook is added on a cluster only: on one server an error is
// returned at once, as before (ErrUnavailable: the caller retries).
//
// Commit on a cluster does not go through the hook: it sends each
// master's part on the master's own connection (for WAIT) and retries
// the failed masters' parts itself, the same way (Store.commitCluster).
//
// Ping is not retried: Open fails at once on an unreachable server, and a
// health check reports the state of now.
type retryHook struct{ s *Store }

// noRetry marks a context whose commands the hook does not retry.
type noRetry struct{}

// DialHook leaves dialing as it is.
func (retryHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook retries a failed command (see the Failover notes).
func (h retryHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil {
			return nil
		}
		var start time.Time
		for attempt := 0; h.retry(ctx, cmd, err, attempt, &start); attempt++ {
			cmd.SetErr(nil)
			err = next(ctx, cmd)
			if err == nil {
				return nil
			}
		}
		return err
	}
}

// ProcessPipelineHook retries the failed commands of a pipeline, or a
// whole failed transaction (see the Failover notes).
func (h retryHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		tx := len(cmds) > 0 && cmds[0].Name() == "multi"
		var start time.Time
		for attempt := 0; ; attempt++ {
			// The commands to send again: a whole transaction, or the
			// failed commands of a pipeline (each a retry candidate).
			var again []redis.Cmder
			retry := true
			for _, c := range cmds {
				if c.Err() == nil || errors.Is(c.Err(), redis.Nil) {
					continue
				}
				if !h.retryable(ctx, c, c.Err()) {
					retry = false
					break
				}
				again = append(again, c)
			}
			if tx {
				again = cmds
			}
			// The error logged and waited on: a failed command's, not the
			// pipeline's first (maybe a key miss, redis.Nil).
			cause := err
			if len(again) > 0 && again[0].Err() != nil {
				cause = again[0].Err()
			}
			if !retry || len(again) == 0 || !h.retry(ctx, nil, cause, attempt, &start) {
				return err
			}
			for _, c := range again {
				c.SetErr(nil)
			}
			err = next(ctx, again)
			if !tx {
				err = firstErr(cmds)
			}
			if err == nil {
				return nil
			}
		}
	}
}

func firstErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

// retry decides whether to try again after err (cmd nil: a pipeline
// whose commands were checked already), and if so waits (see wait).
// start is set at the first call.
func (h retryHook) retry(ctx context.Context, cmd redis.Cmder, err error, attempt int, start *time.Time) bool {
	if cmd != nil && !h.retryable(ctx, cmd, err) {
		return false
	}
	if start.IsZero() {
		*start = time.Now()
	}
	return h.wait(ctx, err, attempt, *start)
}

// wait reloads a cluster's slot map and sleeps the backoff of attempt
// (50 ms doubling to 1 s); it returns false, at once, when
// FailoverTimeout has passed since start, or when ctx ends or would end
// during the sleep.
func (h retryHook) wait(ctx context.Context, err error, attempt int, start time.Time) bool {
	if time.Since(start) > h.s.cfg.FailoverTimeout || ctx.Err() != nil || ctx.Value(noRetry{}) != nil {
		return false
	}
	if cc, ok := h.s.rdb.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
	wait := min(50*time.Millisecond<<min(attempt, 5), time.Second)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return false
	}
	if attempt == 0 || attempt%10 == 9 {
		h.s.log.LogAttrs(ctx, slog.LevelWarn, "redis command failed, retrying", slog.Int("attempt", attempt+1), slog.Any("err", err))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryable reports whether cmd may be sent again after err: a refusal
// or a failed connection attempt (it did not run), or a connection
// broken after sending an idempotent command.
func (h retryHook) retryable(ctx context.Context, cmd redis.Cmder, err error) bool {
	switch {
	case err == nil, ctx.Err() != nil, ctx.Value(noRetry{}) != nil, errors.Is(err, redis.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case notRun(err):
		return true
	case !connectionError(err):
		return false
	}
	return idempotent(cmd)
}

// notRun reports whether err proves the command was not run: the server
// refused it (cluster state, loading, a read-only replica), or no
// connection could be made.
func notRun(err error) bool {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "READONLY", "MASTERDOWN", "LOADING"} {
			if redis.HasErrorPrefix(err, p) {
				return true
			}
		}
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, redis.ErrPoolTimeout)
}

// connectionError reports whether err is a network failure (broken
// connection, timeout) rather than a reply of the server.
func connectionError(err error) bool {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return false
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "use of closed network connection")
}

// idempotent reports whether running cmd twice has the effect of running
// it once (reads, and the writes listed in the Failover notes).
func idempotent(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "get", "mget", "hget", "hmget", "hgetall", "hscan", "lrange", "exists", "smembers", "zrange", "scan", "type", "ping",
		"set", "hset", "del", "unlink", "sadd", "srem", "pexpireat", "multi", "exec":
		return true
	case "evalsha", "eval":
		// The Commit script, ItemRows' (a row once assigned is
		// returned again) and the read-only Docs script.
		if a := cmd.Args(); len(a) > 1 {
			sha, _ := a[1].(string)
			switch sha {
			case commitScript.Hash(), itemRowsScript.Hash(), docsScript.Hash(), commitScriptSrc, itemRowsScriptSrc, docsScriptSrc:
				return true
			}
		}
	}
	return false
}

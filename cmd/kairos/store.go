package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/embedded"
	"github.com/kairoshq/kairos/engine/redisstore"
)

// openStore returns the Redis store when configured, else the embedded
// store persisted under the data dir.
func openStore(ctx context.Context, cfg serveConfig, log *slog.Logger) (engine.Store, error) {
	if cfg.RedisURL != "" {
		return openRedis(ctx, cfg, log)
	}
	dir := filepath.Join(cfg.DataDir, "state")
	log.LogAttrs(ctx, slog.LevelInfo, "store: embedded (set KAIROS_REDIS_URL for Redis)", slog.String("dir", dir))
	s, err := embedded.Open(dir, embedded.Config{DedupWindow: cfg.DedupWindow, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	return s, nil
}

func openRedis(ctx context.Context, cfg serveConfig, log *slog.Logger) (engine.Store, error) {
	s, err := redisstore.Open(ctx, redisstore.Config{URL: cfg.RedisURL, Prefix: cfg.Namespace, WaitReplicas: cfg.RedisWaitReplicas, DedupWindow: cfg.DedupWindow, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "store: redis", slog.Bool("cluster", s.Cluster()))
	return s, nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/kairoshq/kairos/engine/membership"
	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// toolBusConfig is the RabbitMQ configuration of the commands other than
// serve that publish or broadcast (replay, retrain, bench): the topology
// of kairos serve's defaults, or of KAIROS_QUEUE_TYPE and
// KAIROS_PARTITIONS when set, so that they declare the same queues as
// the replicas (a replica queue declared by a tool would take a share of
// the events that no replica consumes).
func toolBusConfig(url, namespace string) (rabbitmq.Config, error) {
	cfg := rabbitmq.Config{URL: url, Prefix: namespace, QueueType: envOr("KAIROS_QUEUE_TYPE", ""), Partitions: defaultPartitions}
	if v := os.Getenv("KAIROS_PARTITIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > rabbitmq.MaxPartitions {
			return cfg, fmt.Errorf("KAIROS_PARTITIONS %q: want a number in [0, %d]", v, rabbitmq.MaxPartitions)
		}
		cfg.Partitions = n
	}
	return cfg, nil
}

// checkToolPartitions refuses the partition count of a tool's bus
// configuration when live replicas consume another one (as their leases
// in the Redis store of redisURL say; without one, e.g. beside an
// embedded store, nothing is checked): the tool would declare partition
// queues that no replica consumes and publish events into them, where
// they would wait unapplied.
func checkToolPartitions(ctx context.Context, cfg rabbitmq.Config, redisURL string) error {
	if redisURL == "" {
		return nil
	}
	store, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL, Prefix: cfg.Prefix})
	if err != nil {
		return fmt.Errorf("read the replicas' partition count: %w", err)
	}
	defer store.Close()
	m, err := membership.New(membership.Config{Maps: store, Replica: "kairos-tool"})
	if err != nil {
		return err
	}
	if err := m.Check(ctx, cfg.Partitions); err != nil {
		return fmt.Errorf("KAIROS_PARTITIONS (%d here): %w", cfg.Partitions, err)
	}
	return nil
}

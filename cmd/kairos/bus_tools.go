package main

import (
	"fmt"
	"os"
	"strconv"

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

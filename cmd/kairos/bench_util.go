package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/kairoshq/kairos/signals/rabbitmq"
	amqp "github.com/rabbitmq/amqp091-go"
)

func mkTemp() (string, error) { return os.MkdirTemp("", "kairos-bench-") }

func removeAll(dir string) { os.RemoveAll(dir) }

// deleteNamespaceQueues removes the RabbitMQ queues and exchanges of a
// benchmark namespace.
func deleteNamespaceQueues(url, ns string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	queues, exchanges := rabbitmq.Topology(ns, defaultPartitions, "0", "1")
	for _, q := range queues {
		if ch, err := conn.Channel(); err == nil {
			ch.QueueDelete(q, false, false, false)
			ch.Close()
		}
	}
	for _, x := range exchanges {
		if ch, err := conn.Channel(); err == nil {
			ch.ExchangeDelete(x, false, false)
			ch.Close()
		}
	}
}

// startCPUProfile writes a CPU profile to path until the returned func runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

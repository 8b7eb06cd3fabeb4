package clustertest_test

import (
	"testing"

	"github.com/kairoshq/kairos/internal/clustertest"
)

func TestRedisNode(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want int
		ok   bool
	}{
		{"127.0.0.1:7001", 1, true},
		{"127.0.0.1:7006", 6, true},
		{"127.0.0.1:7007", 0, false},
		{"127.0.0.1:6379", 0, false},
		{"127.0.0.1", 0, false},
	} {
		got, err := clustertest.RedisNode(tc.addr)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("RedisNode(%q) = %d, %v; want %d, ok %v", tc.addr, got, err, tc.want, tc.ok)
		}
	}
}

func TestRabbitNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
		ok   bool
	}{
		{"kairos-c1@localhost", 1, true},
		{" kairos-c3@localhost\n", 3, true},
		{"kairos-c4@localhost", 0, false},
		{"rabbit@localhost", 0, false},
	} {
		got, err := clustertest.RabbitNode(tc.name)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("RabbitNode(%q) = %d, %v; want %d, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

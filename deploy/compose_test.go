package deploy_test

import (
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kairoshq/kairos/internal/redisconn"
	"go.yaml.in/yaml/v4"
)

// composeService is the part of a Compose service the test reads.
type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Hostname    string            `yaml:"hostname"`
	Command     any               `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]any    `yaml:"depends_on"`
}

// TestComposeCluster checks the topology of compose.cluster.yaml (no
// Docker on the test machines): 3 RabbitMQ nodes that form one cluster,
// 6 Redis Cluster nodes joined as 3 masters with a replica each, and 3
// engine replicas with distinct names whose broker list and cluster URL
// name those nodes and parse as kairos serve parses them.
func TestComposeCluster(t *testing.T) {
	raw, err := os.ReadFile("compose.cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("compose.cluster.yaml: %v", err)
	}
	conf, err := os.ReadFile("cluster/rabbitmq.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "\nqueue_leader_locator = balanced\n") {
		t.Errorf("cluster/rabbitmq.conf: no queue_leader_locator = balanced (every partition leader would be on the node declaring it)")
	}
	var rabbits, redises, kairoses []string
	for name, s := range c.Services {
		switch {
		case strings.HasPrefix(name, "rabbitmq-"):
			rabbits = append(rabbits, name)
			if s.Hostname != name || !strings.Contains(string(conf), "rabbit@"+name+"\n") {
				t.Errorf("%s: hostname %q, or rabbitmq.conf does not list rabbit@%s", name, s.Hostname, name)
			}
		case strings.HasPrefix(name, "redis-") && name != "redis-cluster-create":
			redises = append(redises, name)
			if !strings.Contains(strings.Join(toStrings(s.Command), " "), "--cluster-enabled yes") {
				t.Errorf("%s: command %v lacks --cluster-enabled yes", name, s.Command)
			}
		case strings.HasPrefix(name, "kairos-"):
			kairoses = append(kairoses, name)
		}
	}
	if len(rabbits) != 3 || len(redises) != 6 || len(kairoses) != 3 {
		t.Fatalf("%d RabbitMQ nodes, %d Redis nodes, %d replicas; want 3, 6, 3", len(rabbits), len(redises), len(kairoses))
	}
	create := strings.Join(toStrings(c.Services["redis-cluster-create"].Command), " ")
	if !strings.Contains(create, "--cluster-replicas 1") || len(c.Services["redis-cluster-create"].DependsOn) != 6 {
		t.Errorf("redis-cluster-create: %q after %d nodes; want --cluster-replicas 1 after all 6", create, len(c.Services["redis-cluster-create"].DependsOn))
	}
	replicas := map[string]bool{}
	for _, name := range kairoses {
		env := c.Services[name].Environment
		replicas[env["KAIROS_REPLICA"]] = true
		checkBrokers(t, name, env["KAIROS_AMQP_URL"], rabbits)
		checkRedis(t, name, env["KAIROS_REDIS_URL"], redises)
		if env["KAIROS_HISTORY_STREAM"] != "true" || env["KAIROS_PARTITIONS"] == "" {
			t.Errorf("%s: history stream %q, partitions %q", name, env["KAIROS_HISTORY_STREAM"], env["KAIROS_PARTITIONS"])
		}
	}
	if len(replicas) != 3 {
		t.Errorf("replica names %v: want 3 distinct", replicas)
	}
}

func checkBrokers(t *testing.T, svc, list string, nodes []string) {
	t.Helper()
	var hosts []string
	for _, u := range strings.Split(list, ",") {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "amqp" {
			t.Errorf("%s: broker URL %q: %v", svc, u, err)
			continue
		}
		hosts = append(hosts, p.Hostname())
	}
	slices.Sort(hosts)
	slices.Sort(nodes)
	if !slices.Equal(hosts, nodes) {
		t.Errorf("%s: brokers %v, want every node %v", svc, hosts, nodes)
	}
}

func checkRedis(t *testing.T, svc, u string, nodes []string) {
	t.Helper()
	if err := redisconn.Validate(u); err != nil || !redisconn.IsCluster(u) {
		t.Errorf("%s: KAIROS_REDIS_URL %q: cluster %v, %v", svc, u, redisconn.IsCluster(u), err)
	}
	for _, n := range nodes {
		if !strings.Contains(u, n+":6379") {
			t.Errorf("%s: KAIROS_REDIS_URL %q does not name %s", svc, u, n)
		}
	}
}

func toStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, toStrings(x)...)
		}
		return out
	}
	return nil
}

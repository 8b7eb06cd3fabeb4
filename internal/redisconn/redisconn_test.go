package redisconn

import (
	"strings"
	"testing"
)

func TestIsCluster(t *testing.T) {
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"redis://127.0.0.1:6379/0", false},
		{"redis://127.0.0.1:6379", false},
		{"rediss://user:pw@h:6380/2?dial_timeout=3", false},
		{"redis://127.0.0.1:7001?addr=127.0.0.1:7002", true},
		{"redis://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003&dial_timeout=2s", true},
		{"::not a url", false},
	} {
		if got := IsCluster(c.url); got != c.want {
			t.Errorf("IsCluster(%q) = %v, want %v", c.url, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct{ url, wantErr string }{
		{"redis://127.0.0.1:6379/0", ""},
		{"redis://127.0.0.1:7001?addr=127.0.0.1:7002", ""},
		{"redis://127.0.0.1:7001/3?addr=127.0.0.1:7002", "database number"},
		{"redis://127.0.0.1:7001?addr=127.0.0.1:7002&bogus=1", "cluster URL"},
		{"http://127.0.0.1:6379", "scheme"},
	} {
		err := Validate(c.url)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("Validate(%q): %v", c.url, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("Validate(%q) = %v, want an error containing %q", c.url, err, c.wantErr)
		}
	}
}

// TestKeySlot checks the slots of keys whose slot Redis documents or
// reports (CLUSTER KEYSLOT), and the hash tag rules.
func TestKeySlot(t *testing.T) {
	for _, c := range []struct {
		key  string
		slot int
	}{
		{"foo", 12182},       // CLUSTER KEYSLOT foo
		{"123456789", 12739}, // CRC16/XMODEM check value 0x31C3 % 16384
		{"somekey", 11058},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", KeySlot("foo{}{bar}")},
	} {
		if got := KeySlot(c.key); got != c.slot {
			t.Errorf("KeySlot(%q) = %d, want %d", c.key, got, c.slot)
		}
	}
	if KeySlot("a{user1000}b") != KeySlot("user1000") {
		t.Error("a key with tag {user1000} is not in the slot of user1000")
	}
	if HashTagOf("foo{}{bar}") != "foo{}{bar}" {
		t.Errorf("an empty tag must hash the whole key: got %q", HashTagOf("foo{}{bar}"))
	}
	if HashTagOf("foo{{bar}}zap") != "{bar" {
		t.Errorf("HashTagOf(foo{{bar}}zap) = %q, want {bar", HashTagOf("foo{{bar}}zap"))
	}
}

// TestTag checks that keys built with Tag share a slot and stay distinct,
// for ids with braces and the empty id too.
func TestTag(t *testing.T) {
	seen := map[string]string{}
	for _, id := range []string{"v1", "", "}", "a}b", "{x", "}x", "#abc", "{#abc}"} {
		tag := Tag(id)
		k1, k2 := "p:v:"+tag, "p:h:"+tag
		if KeySlot(k1) != KeySlot(k2) {
			t.Errorf("Tag(%q) = %q: keys %q and %q in slots %d and %d", id, tag, k1, k2, KeySlot(k1), KeySlot(k2))
		}
		if HashTagOf(k1) == k1 {
			t.Errorf("Tag(%q) = %q: key %q has no effective hash tag", id, tag, k1)
		}
		if prev, dup := seen[tag]; dup {
			t.Errorf("Tag(%q) = Tag(%q) = %q", id, prev, tag)
		}
		seen[tag] = id
	}
}

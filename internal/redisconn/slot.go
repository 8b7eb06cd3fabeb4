package redisconn

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// KeySlot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of
// its hash tag — the bytes between the first '{' and the first '}' after
// it, when not empty — or of the whole key, modulo 16384.
func KeySlot(key string) int {
	return int(crc16(HashTagOf(key)) % Slots)
}

// HashTagOf returns the part of key that Redis Cluster hashes: its hash
// tag when it has a non-empty one, else key.
func HashTagOf(key string) string {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+1+e]
		}
	}
	return key
}

// Tag returns a hash tag for id, "{id}", that keeps every key built with
// it in one slot: an id that is empty or holds a '}' (which would end the
// tag early, or make it empty and ignored) is replaced inside the braces
// by '#' and the hex FNV-1a 64 hash of id, and id follows the tag so that
// the key stays unique: "{#9f…}id}".
func Tag(id string) string {
	if PlainTag(id) {
		return "{" + id + "}"
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return "{#" + strconv.FormatUint(h.Sum64(), 16) + "}" + id
}

// PlainTag reports whether Tag(id) is "{" + id + "}": id is not empty and
// holds no '}'.
func PlainTag(id string) bool { return id != "" && !strings.Contains(id, "}") }

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the hash of
// Redis Cluster's key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

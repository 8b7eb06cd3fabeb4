package membership

import (
	"hash/fnv"
	"strconv"
)

// score is the rendezvous weight of member for partition p.
func score(member string, p int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	var buf [21]byte
	b := append(buf[:0], '/')
	b = strconv.AppendInt(b, int64(p), 10)
	h.Write(b)
	return mix(h.Sum64())
}

// mix is the SplitMix64 finalizer: FNV's low bits are weak on short
// inputs that differ in their last bytes.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Owner returns the member of members that owns partition p: the one of
// highest score (ties, which need a 64-bit collision, go to the smaller
// name). It returns "" for no members.
func Owner(members []string, p int) string {
	var best string
	var bestScore uint64
	for i, m := range members {
		s := score(m, p)
		if i == 0 || s > bestScore || s == bestScore && m < best {
			best, bestScore = m, s
		}
	}
	return best
}

// Owned returns, in ascending order, the partitions of 0..n-1 that self
// owns among members.
func Owned(members []string, self string, n int) []int {
	owned := []int{}
	for p := range n {
		if Owner(members, p) == self {
			owned = append(owned, p)
		}
	}
	return owned
}

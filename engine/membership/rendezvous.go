package membership

import (
	"cmp"
	"hash/fnv"
	"slices"
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

// Assignment returns the owner of each partition 0..n-1 among members
// (all "" for no members): rendezvous hashing with bounded loads. The
// pairs (partition, member) are taken in order of falling score (ties,
// which need a 64-bit collision, to the smaller name), and a partition
// goes to the member of its best pair that still has room for it; every
// member holds ⌊n / members⌋ or ⌈n / members⌉ partitions (plain
// rendezvous hashing gave 3, 6 and 7 of 16 partitions to three
// replicas). Duplicate names count once.
func Assignment(members []string, n int) []string {
	owner := make([]string, n)
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	if len(ms) == 0 || n <= 0 {
		return owner
	}
	type pair struct {
		score     uint64
		p, member int
	}
	pairs := make([]pair, 0, n*len(ms))
	for p := range n {
		for i, m := range ms {
			pairs = append(pairs, pair{score(m, p), p, i})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		if a.member != b.member {
			return cmp.Compare(a.member, b.member)
		}
		return cmp.Compare(a.p, b.p)
	})
	// Every member holds ⌊n/m⌋ partitions, and n mod m of them (the
	// first to want one more) one more: the rooms add up to n, so every
	// partition finds one.
	base, extra := n/len(ms), n%len(ms)
	held := make([]int, len(ms))
	for _, pr := range pairs {
		if owner[pr.p] != "" {
			continue
		}
		switch h := held[pr.member]; {
		case h < base:
		case h == base && extra > 0:
			extra--
		default:
			continue
		}
		owner[pr.p] = ms[pr.member]
		held[pr.member]++
	}
	return owner
}

// Owned returns, in ascending order, the partitions of 0..n-1 that self
// owns among members (Assignment).
func Owned(members []string, self string, n int) []int {
	owned := []int{}
	for p, m := range Assignment(members, n) {
		if m == self {
			owned = append(owned, p)
		}
	}
	return owned
}

package engine

import (
	"fmt"
	"strings"
	"testing"
)

func recsNamed(prefix string, n int) []Rec {
	out := make([]Rec, n)
	for i := range out {
		out[i] = Rec{Item: fmt.Sprintf("%s%d", prefix, i), Promoted: prefix == "p"}
	}
	return out
}

// TestInterleave checks where promoted items go: spread evenly over the
// n slots, in their order, the organic ones in theirs, either list
// filling in when the other runs short.
func TestInterleave(t *testing.T) {
	for _, c := range []struct {
		organic, promoted, n int
		want                 string
	}{
		{8, 2, 10, "o0 o1 p0 o2 o3 o4 o5 p1 o6 o7"},
		{9, 1, 10, "o0 o1 o2 o3 o4 p0 o5 o6 o7 o8"},
		{5, 5, 10, "o0 p0 o1 p1 o2 p2 o3 p3 o4 p4"},
		{2, 2, 10, "o0 o1 p0 p1"}, // organic short: promoted fill
		{8, 0, 10, "o0 o1 o2 o3 o4 o5 o6 o7"},
		{0, 3, 10, "p0 p1 p2"},
		{2, 1, 3, "o0 p0 o1"},
	} {
		got := interleave(recsNamed("o", c.organic), recsNamed("p", c.promoted), c.n)
		var ids []string
		for _, r := range got {
			ids = append(ids, r.Item)
		}
		if s := strings.Join(ids, " "); s != c.want {
			t.Errorf("%d organic, %d promoted, n %d: %s, want %s", c.organic, c.promoted, c.n, s, c.want)
		}
	}
}

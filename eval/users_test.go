package eval

import (
	"slices"
	"testing"
)

func TestSpread(t *testing.T) {
	us := make([]int32, 1000)
	for j := range us {
		us[j] = int32(3 * j)
	}
	want := []int32{0, 300, 600, 900, 1200, 1500, 1800, 2100, 2400, 2700}
	if got := Spread(us, 10); !slices.Equal(got, want) {
		t.Fatalf("spread of 10: %v; want %v", got, want)
	}
	if got := Spread(us[:5], 10); len(got) != 5 {
		t.Fatalf("spread of 10 over 5 users: %v; want all 5", got)
	}
	if got := Spread(us, 0); len(got) != len(us) {
		t.Fatalf("no bound: %d users; want %d", len(got), len(us))
	}
}

func TestUserBound(t *testing.T) {
	for _, c := range []struct{ n, def, want int }{{0, 20_000, 20_000}, {-1, 20_000, 0}, {25, 20_000, 25}} {
		if got := UserBound(c.n, c.def); got != c.want {
			t.Errorf("UserBound(%d, %d) = %d, want %d", c.n, c.def, got, c.want)
		}
	}
}

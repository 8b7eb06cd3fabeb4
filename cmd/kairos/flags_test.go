package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		grace string
		pos   []string
	}{
		{[]string{"--grace", "1h", "shop-c"}, "1h", []string{"shop-c"}},
		{[]string{"shop-c", "--grace", "1h"}, "1h", []string{"shop-c"}},
		{[]string{"a", "--grace=2h", "b"}, "2h", []string{"a", "b"}},
		{[]string{"a", "--", "--grace", "b"}, "", []string{"a", "--grace", "b"}},
		{nil, "", nil},
	} {
		fs := newFlagSet("test", io.Discard)
		grace := fs.String("grace", "", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || *grace != tc.grace || !slices.Equal(pos, tc.pos) {
			t.Errorf("%q: grace %q, positional %q, %v; want %q, %q", tc.args, *grace, pos, err, tc.grace, tc.pos)
		}
	}
	fs := newFlagSet("test", io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "--nope"}); err == nil {
		t.Error("an unknown flag after a positional argument is accepted")
	}
}

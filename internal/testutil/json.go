package testutil

import (
	"encoding/json"
	"testing"
)

// Redecode marshals v to JSON and decodes that JSON again with decode (a
// definition decoder, given no path id): what a store keeps must read
// back. It fails tb when either step fails; the caller compares the
// result with v.
func Redecode[T any](tb testing.TB, v T, decode func(b []byte, pathID string) (T, error)) T {
	tb.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal %+v: %v", v, err)
	}
	got, err := decode(js, "")
	if err != nil {
		tb.Fatalf("re-decoding %s: %v", js, err)
	}
	return got
}

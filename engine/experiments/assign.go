package experiments

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"github.com/kairoshq/kairos/engine"
)

// Subject keys name who is assigned and counted: "a:<visitor id>" for an
// anonymous visitor, "u:<user id>" for an identified user.
const (
	anonPrefix = "a:"
	userPrefix = "u:"
)

// AnonKey is the subject key of an anonymous visitor.
func AnonKey(visitor string) string { return anonPrefix + visitor }

// UserKey is the subject key of an identified user.
func UserKey(user string) string { return userPrefix + user }

// engineUserPrefix is the prefix of engine state keys of known users
// (engine.UserKey).
var engineUserPrefix = engine.UserKey("")

// userOfStateKey returns the user of an engine state key, "" for an
// anonymous visitor's.
func userOfStateKey(key string) string {
	u, _ := strings.CutPrefix(key, engineUserPrefix)
	if u == key {
		return ""
	}
	return u
}

// Bucket maps a subject key to a number uniform in [0, 1), the same on
// every replica and every run: the first 53 bits of
// SHA-256(salt + "\x00" + subject), divided by 2⁵³. Experiments with
// different salts bucket visitors independently.
func Bucket(salt, subject string) float64 {
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	var sum [sha256.Size]byte
	return float64(binary.BigEndian.Uint64(h.Sum(sum[:0]))>>11) / (1 << 53)
}

// Pick returns the arm whose cumulative-weight interval holds u ∈ [0, 1):
// arm i when w₀+…+wᵢ₋₁ ≤ u·Σw < w₀+…+wᵢ. Arms of weight 0 are never
// picked. It returns -1 when no weight is positive.
func Pick(weights []float64, u float64) int {
	var sum float64
	last := -1
	for i, w := range weights {
		if w > 0 {
			sum += w
			last = i
		}
	}
	if last < 0 {
		return -1
	}
	target := u * sum
	var cum float64
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		cum += w
		if target < cum {
			return i
		}
	}
	return last // rounding: u·Σw ≥ the float sum
}

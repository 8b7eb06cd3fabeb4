package abtest

import (
	"bytes"
	"math"
	"strconv"
)

// Num is a statistic that may be undefined. An undefined statistic is held
// as NaN in Go and encoded as JSON null, so no report ever contains NaN or
// ±Inf; the reason is written to Report.Notes.
type Num float64

// undefined is the Num of an undefined statistic.
var undefined = Num(math.NaN())

// Valid reports whether n is a finite number.
func (n Num) Valid() bool {
	f := float64(n)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

// MarshalJSON encodes a finite n as a JSON number (shortest representation
// that round-trips) and anything else as null.
func (n Num) MarshalJSON() ([]byte, error) {
	if !n.Valid() {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', -1, 64), nil
}

// UnmarshalJSON decodes a JSON number, or null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*n = undefined
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// numPtr returns a pointer to Num(f), for fields that are present for one
// metric and absent for the other (z versus t and df).
func numPtr(f float64) *Num {
	n := Num(f)
	return &n
}

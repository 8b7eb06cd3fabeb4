package embedded

import (
	"math"
	"strconv"
)

// valueKind says how a field's value is held.
type valueKind uint8

const (
	valText  valueKind = iota // value.s
	valInt                    // int64(value.bits)
	valFloat                  // math.Float64frombits(value.bits)
)

// value is the value of one field of a map. storage.Maps defines values
// as text, and increments on their decimal text; the result of an
// increment is kept here as the number it is, and its text (what
// storagetest.ApplyOp would store: strconv.FormatInt, or FormatFloat 'g',
// -1) is formatted only when the value is read (the log and snapshots
// hold the number, prims_records.go). So a counter incremented once per
// consumed batch is neither parsed nor formatted. The kind is invisible: every
// kind reads as its text, and an op parses it as it would parse that
// text.
type value struct {
	s    string
	bits uint64
	kind valueKind
}

func textValue(s string) value { return value{s: s} }

func intValue(n int64) value { return value{bits: uint64(n), kind: valInt} }

func floatValue(x float64) value { return value{bits: math.Float64bits(x), kind: valFloat} }

// maxNumberText bounds the length of the text of an int or float value
// ("-9223372036854775808", "-2.2250738585072014e-308").
const maxNumberText = 24

// appendText appends the text v stands for.
func (v value) appendText(b []byte) []byte {
	switch v.kind {
	case valInt:
		return strconv.AppendInt(b, int64(v.bits), 10)
	case valFloat:
		return strconv.AppendFloat(b, math.Float64frombits(v.bits), 'g', -1, 64)
	}
	return append(b, v.s...)
}

// text returns the text v stands for.
func (v value) text() string {
	if v.kind == valText {
		return v.s
	}
	var buf [maxNumberText]byte
	return string(v.appendText(buf[:0]))
}

// is reports whether v stands for the text s.
func (v value) is(s string) bool {
	if v.kind == valText {
		return v.s == s
	}
	var buf [maxNumberText]byte
	return string(v.appendText(buf[:0])) == s
}

// int returns the integer v's text holds (strconv.ParseInt base 10), or
// false when it holds none.
func (v value) int() (int64, bool) {
	switch v.kind {
	case valInt:
		return int64(v.bits), true
	case valFloat: // an integral float's text may be an integer ("3", not "1e+21")
		n, err := strconv.ParseInt(v.text(), 10, 64)
		return n, err == nil
	}
	n, err := strconv.ParseInt(v.s, 10, 64)
	return n, err == nil
}

// float returns the number v's text holds (strconv.ParseFloat), or false
// when it holds none. The text of an int parses as the int converted to
// float64: both round to the nearest float64.
func (v value) float() (float64, bool) {
	switch v.kind {
	case valInt:
		return float64(int64(v.bits)), true
	case valFloat:
		return math.Float64frombits(v.bits), true
	}
	x, err := strconv.ParseFloat(v.s, 64)
	return x, err == nil
}

// parseValue returns the value of the text s (a logged or snapshot
// value), held as a number when s is exactly the text of one, so that a
// counter read back from disk is not parsed at its next increment.
func parseValue(s string) value {
	if len(s) == 0 || len(s) > maxNumberText {
		return textValue(s)
	}
	if c := s[0]; c != '-' && (c < '0' || c > '9') {
		return textValue(s) // "NaN", "+Inf", text
	}
	var buf [maxNumberText]byte
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if string(strconv.AppendInt(buf[:0], n, 10)) == s {
			return intValue(n)
		}
		return textValue(s)
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		if string(strconv.AppendFloat(buf[:0], x, 'g', -1, 64)) == s {
			return floatValue(x)
		}
	}
	return textValue(s)
}

package experiments

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Unit is one unit of an experiment: a subject from its first exposure on,
// with its outcomes in the attribution window. A unit key may instead be
// an alias: the user key of a user whose anonymous visitor was the unit,
// so that the user's later outcomes find it.
type Unit struct {
	// Variant is the arm the unit was exposed to ("" for an alias or no
	// unit).
	Variant string
	// Exposed is the time of the first exposure (millisecond precision).
	Exposed time.Time
	// Propensity is the probability with which the arm was chosen.
	Propensity float64
	// Clicked, Carted and Converted are x of the ctr, add_to_cart and
	// conversion metrics.
	Clicked, Carted, Converted bool
	// Revenue is x of the revenue metric, in cents.
	Revenue int64
	// Alias, when set, is the key of the unit this key stands for.
	Alias string
}

// Equal reports whether u and v are the same record.
func (u Unit) Equal(v Unit) bool {
	return u.Variant == v.Variant && u.Exposed.Equal(v.Exposed) && u.Propensity == v.Propensity &&
		u.Clicked == v.Clicked && u.Carted == v.Carted && u.Converted == v.Converted && u.Revenue == v.Revenue && u.Alias == v.Alias
}

// Exists reports whether u is a unit or an alias.
func (u Unit) Exists() bool { return u.Variant != "" || u.Alias != "" }

const (
	flagClicked = 1 << iota
	flagCarted
	flagConverted
)

// MarshalText encodes u as stored by the adapters:
//
//	v <variant> <exposed Unix ms> <flags> <revenue cents> <propensity>
//	= <unit key>                     (an alias)
//
// flags: 1 clicked, 2 carted, 4 converted. The zero Unit encodes as "".
func (u Unit) MarshalText() ([]byte, error) {
	switch {
	case u.Alias != "":
		return []byte("= " + u.Alias), nil
	case u.Variant == "":
		return nil, nil
	}
	flags := 0
	if u.Clicked {
		flags |= flagClicked
	}
	if u.Carted {
		flags |= flagCarted
	}
	if u.Converted {
		flags |= flagConverted
	}
	b := make([]byte, 0, 64)
	b = append(b, "v "...)
	b = append(b, u.Variant...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, u.Exposed.UnixMilli(), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(flags), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, u.Revenue, 10)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, u.Propensity, 'g', -1, 64)
	return b, nil
}

// String returns the text encoding.
func (u Unit) String() string { b, _ := u.MarshalText(); return string(b) }

var errBadUnit = errors.New("experiments: malformed unit record")

// UnmarshalText decodes MarshalText's encoding ("" is the zero Unit).
func (u *Unit) UnmarshalText(b []byte) error {
	*u = Unit{}
	s := string(b)
	if s == "" {
		return nil
	}
	if a, ok := strings.CutPrefix(s, "= "); ok && a != "" {
		u.Alias = a
		return nil
	}
	f := strings.Fields(s)
	if len(f) != 6 || f[0] != "v" {
		return fmt.Errorf("%w: %q", errBadUnit, s)
	}
	ms, err1 := strconv.ParseInt(f[2], 10, 64)
	flags, err2 := strconv.Atoi(f[3])
	rev, err3 := strconv.ParseInt(f[4], 10, 64)
	p, err4 := strconv.ParseFloat(f[5], 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil || flags < 0 || flags > 7 {
		return fmt.Errorf("%w: %q", errBadUnit, s)
	}
	*u = Unit{Variant: f[1], Exposed: time.UnixMilli(ms).UTC(), Propensity: p, Revenue: rev,
		Clicked: flags&flagClicked != 0, Carted: flags&flagCarted != 0, Converted: flags&flagConverted != 0}
	return nil
}

// UnitKey names a unit record: an experiment and a subject key.
type UnitKey struct {
	Exp, Key string
}

// UnitWrite changes one unit record if it still is Old (the zero Unit:
// if there is none).
type UnitWrite struct {
	UnitKey
	Old, New Unit
}

// CountDelta adds Counts to one variant of an experiment.
type CountDelta struct {
	Exp, Variant string
	Counts       Counts
}

// Update is one batch's changes to units and counts, applied atomically
// (UnitStore.UpdateExperimentUnits).
type Update struct {
	Units  []UnitWrite
	Counts []CountDelta
}

// Empty reports whether u changes nothing.
func (u *Update) Empty() bool { return len(u.Units) == 0 && len(u.Counts) == 0 }

// sqLimbs returns the base-2³² limbs of new² − old² (0 ≤ old ≤ new).
func sqLimbs(old, new int64) [4]int64 {
	nh, nl := bits.Mul64(uint64(new), uint64(new))
	oh, ol := bits.Mul64(uint64(old), uint64(old))
	lo, borrow := bits.Sub64(nl, ol, 0)
	hi, _ := bits.Sub64(nh, oh, borrow)
	const m = 1<<32 - 1
	return [4]int64{int64(lo & m), int64(lo >> 32), int64(hi & m), int64(hi >> 32)}
}

// Normalize carries the revenue-square limbs so that the three lower ones
// are in [0, 2³²): two Counts with equal sums then compare equal.
func (c *Counts) Normalize() {
	for i := 0; i < 3; i++ {
		c.RevenueSq[i+1] += c.RevenueSq[i] >> 32
		c.RevenueSq[i] &= 1<<32 - 1
	}
}

// RevenueSqInt returns Σx² of revenue in cents², exactly.
func (c Counts) RevenueSqInt() *big.Int {
	v := new(big.Int)
	for i := 3; i >= 0; i-- {
		v.Lsh(v, 32)
		v.Add(v, big.NewInt(c.RevenueSq[i]))
	}
	return v
}

// SumSquares returns Σx² of revenue in the currency unit squared.
func (c Counts) SumSquares() float64 {
	var v float64
	for i := 3; i >= 0; i-- {
		v = v*(1<<32) + float64(c.RevenueSq[i])
	}
	return v / 1e4
}

// Sum returns Σx of metric m (revenue in the currency unit).
func (c Counts) Sum(m Metric) float64 {
	switch m {
	case MetricCTR:
		return float64(c.Clicks)
	case MetricAddToCart:
		return float64(c.Carts)
	case MetricConversion:
		return float64(c.Conversions)
	}
	return float64(c.Revenue) / 100
}

// Successes returns the number of units with x = 1 for a binary metric
// (conversions for revenue).
func (c Counts) Successes(m Metric) int64 {
	switch m {
	case MetricCTR:
		return c.Clicks
	case MetricAddToCart:
		return c.Carts
	}
	return c.Conversions
}

// reward returns the unit's x for metric m (revenue in the currency
// unit): the Sum of m over the unit alone.
func (u Unit) reward(m Metric) float64 {
	one := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	return Counts{Clicks: one(u.Clicked), Carts: one(u.Carted), Conversions: one(u.Converted), Revenue: u.Revenue}.Sum(m)
}

// cents converts a conversion value to cents (half away from zero).
func cents(v float64) int64 {
	if math.IsNaN(v) || v <= 0 {
		return 0
	}
	return int64(math.Round(v * 100))
}

package model

import (
	"math/bits"
)

// Factors is a dense, row-major table of latent factors: row i holds the K
// float32 factors of user or item i.
//
// Factors are stored as float32: scoring a visitor streams the whole item
// table through memory once per request, so halving the element size halves
// the time of the dominant cost (see BenchmarkScore in topk_test.go), and the
// ranking quality is unchanged because every solve accumulates in float64.
type Factors struct {
	// K is the number of factors per row.
	K int
	// Data holds Rows()*K values, row after row.
	Data []float32
}

// NewFactors returns a zeroed table of n rows of k factors.
func NewFactors(n, k int) *Factors {
	return &Factors{K: k, Data: make([]float32, n*k)}
}

// Rows returns the number of rows.
func (f *Factors) Rows() int {
	if f.K == 0 {
		return 0
	}
	return len(f.Data) / f.K
}

// Row returns row i as a slice aliasing the table.
func (f *Factors) Row(i int) []float32 {
	return f.Data[i*f.K : (i+1)*f.K : (i+1)*f.K]
}

// Grow appends n zero rows, keeping spare capacity so that repeated growth
// is amortised O(1) per row. It returns the index of the first new row.
func (f *Factors) Grow(n int) int {
	first := f.Rows()
	need := len(f.Data) + n*f.K
	if need > cap(f.Data) {
		c := max(need, 2*cap(f.Data), 64*f.K)
		d := make([]float32, len(f.Data), c)
		copy(d, f.Data)
		f.Data = d
	}
	f.Data = f.Data[:need]
	clear(f.Data[first*f.K:])
	return first
}

// Clone returns a deep copy of f.
func (f *Factors) Clone() *Factors {
	return &Factors{K: f.K, Data: append([]float32(nil), f.Data...)}
}

// Bitset is a set of row numbers, used to exclude items from top-K. The
// zero value is an empty set; Set grows it as needed.
type Bitset []uint64

// NewBitset returns an empty set sized for n rows.
func NewBitset(n int) Bitset { return make(Bitset, (n+63)/64) }

// Set adds i to the set, growing it if needed.
func (b *Bitset) Set(i int) {
	w := i >> 6
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w-len(*b)+1)...)
	}
	(*b)[w] |= 1 << (uint(i) & 63)
}

// Has reports whether i is in the set.
func (b Bitset) Has(i int) bool {
	w := i >> 6
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

// Reset empties the set, keeping its storage.
func (b Bitset) Reset() { clear(b) }

// Count returns the number of members.
func (b Bitset) Count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

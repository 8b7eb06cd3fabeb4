package model

import (
	"fmt"
	"math"
	"sort"
)

// Interaction is one (user, item) observation with its summed, decayed
// signal weight w (confidence c = 1 + α·w, preference 1 since w > 0).
type Interaction struct {
	User, Item int32
	Weight     float32
}

// ItemWeight is one entry of a user's history as the fold-in sees it: the
// item row and the summed, decayed signal weight w.
type ItemWeight struct {
	Item   int32
	Weight float32
}

// Matrix is the sparse user × item weight matrix in compressed form, both by
// user (rows) and by item (columns), as batch ALS needs both sides.
type Matrix struct {
	nUsers, nItems int

	userPtr []int64 // len nUsers+1; user u's entries are userCol[userPtr[u]:userPtr[u+1]]
	userCol []int32
	userW   []float32

	itemPtr []int64
	itemRow []int32
	itemW   []float32
}

// NewMatrix builds the matrix from triples. Repeated (user, item) pairs are
// summed. Every entry is an observation (preference 1, confidence 1 + α·w);
// weights must be finite and >= 0 (decay may take old ones to 0), rows within [0, nUsers) × [0, nItems).
func NewMatrix(nUsers, nItems int, triples []Interaction) (*Matrix, error) {
	for i, t := range triples {
		if t.User < 0 || int(t.User) >= nUsers || t.Item < 0 || int(t.Item) >= nItems {
			return nil, fmt.Errorf("model: interaction %d: (user %d, item %d) outside %d×%d", i, t.User, t.Item, nUsers, nItems)
		}
		if !(t.Weight >= 0) || math.IsInf(float64(t.Weight), 0) {
			return nil, fmt.Errorf("model: interaction %d: weight %v is not a finite number >= 0", i, t.Weight)
		}
	}
	m := &Matrix{nUsers: nUsers, nItems: nItems}
	m.userPtr, m.userCol, m.userW = compress(nUsers, triples, func(t Interaction) (int32, int32) { return t.User, t.Item })
	m.itemPtr, m.itemRow, m.itemW = compress(nItems, triples, func(t Interaction) (int32, int32) { return t.Item, t.User })
	return m, nil
}

// compress builds one CSR side: rows from key(t).row, columns sorted, and
// duplicate columns summed.
func compress(n int, ts []Interaction, key func(Interaction) (row, col int32)) ([]int64, []int32, []float32) {
	ptr := make([]int64, n+1)
	for _, t := range ts {
		r, _ := key(t)
		ptr[r+1]++
	}
	for i := 0; i < n; i++ {
		ptr[i+1] += ptr[i]
	}
	col := make([]int32, len(ts))
	w := make([]float32, len(ts))
	next := append([]int64(nil), ptr[:n]...)
	for _, t := range ts {
		r, c := key(t)
		col[next[r]] = c
		w[next[r]] = t.Weight
		next[r]++
	}
	// Sort each row by column and merge duplicates in place.
	out := int64(0)
	start := int64(0)
	for r := 0; r < n; r++ {
		end := ptr[r+1]
		seg := rowSorter{col[start:end], w[start:end]}
		sort.Sort(seg)
		ptr[r] = out
		for j := start; j < end; j++ {
			if out > ptr[r] && col[out-1] == col[j] {
				w[out-1] += w[j]
				continue
			}
			col[out], w[out] = col[j], w[j]
			out++
		}
		start = end
	}
	ptr[n] = out
	return ptr, col[:out:out], w[:out:out]
}

type rowSorter struct {
	col []int32
	w   []float32
}

func (s rowSorter) Len() int           { return len(s.col) }
func (s rowSorter) Less(i, j int) bool { return s.col[i] < s.col[j] }
func (s rowSorter) Swap(i, j int) {
	s.col[i], s.col[j] = s.col[j], s.col[i]
	s.w[i], s.w[j] = s.w[j], s.w[i]
}

// Users returns the number of users (rows).
func (m *Matrix) Users() int { return m.nUsers }

// Items returns the number of items (columns).
func (m *Matrix) Items() int { return m.nItems }

// NNZ returns the number of stored (user, item) interactions.
func (m *Matrix) NNZ() int { return len(m.userCol) }

// UserRow returns user u's items (ascending) and weights; the slices alias
// the matrix and must not be modified.
func (m *Matrix) UserRow(u int) ([]int32, []float32) {
	a, b := m.userPtr[u], m.userPtr[u+1]
	return m.userCol[a:b], m.userW[a:b]
}

// ItemColumn returns item i's users (ascending) and weights; the slices
// alias the matrix and must not be modified.
func (m *Matrix) ItemColumn(i int) ([]int32, []float32) {
	a, b := m.itemPtr[i], m.itemPtr[i+1]
	return m.itemRow[a:b], m.itemW[a:b]
}

package model

import (
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// BenchmarkKernels compares, per item row of k=64, the int8 scan of the
// index, the single-query float32 scan (BLAS) and the batched float32
// scans (per query-row).
func BenchmarkKernels(b *testing.B) {
	const n, k = 1024, 64
	codes := make([]int8, n*k)
	rows := make([]float32, n*k)
	for i := range rows {
		rows[i] = float32(i%13) - 6
		codes[i] = int8(i%13) - 6
	}
	q16 := make([]int16, k)
	q := make([]float32, k)
	qt := make([]float32, k*batchWidth)
	b.Run("int8", func(b *testing.B) {
		dst := make([]int32, n)
		for b.Loop() {
			dotsInt8(dst, q16, codes, k)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
	})
	b.Run("float32-gemv", func(b *testing.B) {
		dst := make([]float32, n)
		for b.Loop() {
			Y := blas32.General{Rows: n, Cols: k, Stride: k, Data: rows}
			blas32.Gemv(blas.NoTrans, 1, Y, blas32.Vector{N: k, Inc: 1, Data: q}, 0, blas32.Vector{N: n, Inc: 1, Data: dst})
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
	})
	b.Run("float32-batch8", func(b *testing.B) {
		dst := make([]float32, n*8)
		for b.Loop() {
			dotsBatch8(dst, rows, k, qt[:k*8])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*8), "ns/row")
	})
	b.Run("float32-batch16", func(b *testing.B) {
		dst := make([]float32, n*batchWidth)
		for b.Loop() {
			dotsBatch(dst, rows, k, qt)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*batchWidth), "ns/row")
	})
}

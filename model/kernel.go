package model

// Scoring kernels of the approximate index and of batched exact scoring.
// Each has a portable Go version; kernel_amd64.go replaces them with AVX2
// versions when the CPU has AVX2 and FMA (kernel_test.go checks that both
// agree).

// batchWidth is the largest number of queries scored together by one pass
// of the batched exact kernels (dotsBatch: 16 columns; dotsBatch8: 8, for
// smaller batches).
const batchWidth = 16

// dotsInt8 sets dst[r] = Σ_d q[d]·codes[r·k+d] for the len(dst) rows of
// codes (int8, k per row); k is a multiple of 16.
var dotsInt8 = dotsInt8Go

func dotsInt8Go(dst []int32, q []int16, codes []int8, k int) {
	q = q[:k]
	for r := range dst {
		c := codes[r*k : r*k+k]
		var s0, s1, s2, s3 int32
		for d := 0; d+3 < k; d += 4 {
			s0 += int32(q[d]) * int32(c[d])
			s1 += int32(q[d+1]) * int32(c[d+1])
			s2 += int32(q[d+2]) * int32(c[d+2])
			s3 += int32(q[d+3]) * int32(c[d+3])
		}
		dst[r] = s0 + s1 + s2 + s3
	}
}

// dotsBatch sets dst[r·batchWidth+j] = Σ_d rows[r·k+d]·qt[d·batchWidth+j]
// for the len(dst)/batchWidth rows of rows (k per row): the scores of
// batchWidth queries, stored transposed in qt (k × batchWidth); k is a
// multiple of 4.
var dotsBatch = dotsBatchGo

func dotsBatchGo(dst, rows []float32, k int, qt []float32) {
	n := len(dst) / batchWidth
	qt = qt[:k*batchWidth]
	for r := range n {
		out := dst[r*batchWidth : (r+1)*batchWidth : (r+1)*batchWidth]
		clear(out)
		for d, y := range rows[r*k : r*k+k] {
			q := qt[d*batchWidth : (d+1)*batchWidth : (d+1)*batchWidth]
			for j := range out {
				out[j] += y * q[j]
			}
		}
	}
}

// dotsBatch8 is dotsBatch for 8 queries (qt: k × 8, dst: rows × 8); k is
// a multiple of 8.
var dotsBatch8 = dotsBatch8Go

func dotsBatch8Go(dst, rows []float32, k int, qt []float32) {
	n := len(dst) / 8
	qt = qt[:k*8]
	for r := range n {
		out := dst[r*8 : (r+1)*8 : (r+1)*8]
		clear(out)
		for d, y := range rows[r*k : r*k+k] {
			q := qt[d*8 : (d+1)*8 : (d+1)*8]
			for j := range out {
				out[j] += y * q[j]
			}
		}
	}
}

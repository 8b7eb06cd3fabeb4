package model

import "golang.org/x/sys/cpu"

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		dotsInt8 = dotsInt8Fast
		dotsBatch = dotsBatchFast
		dotsBatch8 = dotsBatch8Fast
	}
}

//go:noescape
func dotsInt8AVX2(dst *int32, q *int16, codes *int8, n, k int)

//go:noescape
func dotsBatch8AVX2(dst *float32, rows *float32, n, k int, qt *float32)

//go:noescape
func dotsBatchAVX2(dst *float32, rows *float32, n, k int, qt *float32)

func dotsInt8Fast(dst []int32, q []int16, codes []int8, k int) {
	if len(dst) == 0 {
		return
	}
	_ = q[k-1]
	_ = codes[len(dst)*k-1]
	dotsInt8AVX2(&dst[0], &q[0], &codes[0], len(dst), k)
}

func dotsBatchFast(dst, rows []float32, k int, qt []float32) {
	n := len(dst) / batchWidth
	if n == 0 {
		return
	}
	_ = qt[k*batchWidth-1]
	_ = rows[n*k-1]
	dotsBatchAVX2(&dst[0], &rows[0], n, k, &qt[0])
}

func dotsBatch8Fast(dst, rows []float32, k int, qt []float32) {
	n := len(dst) / 8
	if n == 0 {
		return
	}
	_ = qt[k*8-1]
	_ = rows[n*k-1]
	dotsBatch8AVX2(&dst[0], &rows[0], n, k, &qt[0])
}

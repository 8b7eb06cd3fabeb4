package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX2 kernels (when the CPU has them) agree with the portable ones.
func TestKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range []int{16, 32, 64, 128} {
		const n = 37
		codes := make([]int8, n*k)
		for i := range codes {
			codes[i] = int8(rng.IntN(255) - 127)
		}
		q := make([]int16, k)
		for i := range q {
			q[i] = int16(rng.IntN(65535) - 32767)
		}
		want, got := make([]int32, n), make([]int32, n)
		dotsInt8Go(want, q, codes, k)
		dotsInt8(got, q, codes, k)
		for r := range want {
			if want[r] != got[r] {
				t.Fatalf("k=%d int8 row %d: %d, portable %d", k, r, got[r], want[r])
			}
		}
		rows := make([]float32, n*k)
		for i := range rows {
			rows[i] = float32(rng.NormFloat64())
		}
		qt := make([]float32, k*batchWidth)
		for i := range qt {
			qt[i] = float32(rng.NormFloat64())
		}
		fw, fg := make([]float32, n*batchWidth), make([]float32, n*batchWidth)
		dotsBatchGo(fw, rows, k, qt)
		dotsBatch(fg, rows, k, qt)
		for i := range fw {
			if math.Abs(float64(fw[i]-fg[i])) > 1e-4*math.Sqrt(float64(k)) {
				t.Fatalf("k=%d batch %d: %v, portable %v", k, i, fg[i], fw[i])
			}
		}
		f8w, f8g := make([]float32, n*8), make([]float32, n*8)
		dotsBatch8Go(f8w, rows, k, qt[:k*8])
		dotsBatch8(f8g, rows, k, qt[:k*8])
		for i := range f8w {
			if math.Abs(float64(f8w[i]-f8g[i])) > 1e-4*math.Sqrt(float64(k)) {
				t.Fatalf("k=%d batch8 %d: %v, portable %v", k, i, f8g[i], f8w[i])
			}
		}
	}
}

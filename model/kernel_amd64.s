#include "textflag.h"

// func dotsInt8AVX2(dst *int32, q *int16, codes *int8, n, k int)
// k is a multiple of 16: each step widens 16 codes to int16 and multiplies
// them pairwise with 16 query values into 8 int32 sums.
TEXT ·dotsInt8AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ codes+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), R8

row:
	VPXOR Y0, Y0, Y0
	VPXOR Y3, Y3, Y3
	XORQ  R9, R9
	MOVQ  SI, R10

inner:
	VPMOVSXBW (DX)(R9*1), Y1
	VPMADDWD  (R10), Y1, Y1
	VPADDD    Y1, Y0, Y0
	ADDQ      $16, R9
	ADDQ      $32, R10
	CMPQ      R9, R8
	JB        inner

	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4E, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xB1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, R11
	MOVL         R11, (DI)
	ADDQ         $4, DI
	ADDQ         R8, DX
	DECQ         CX
	JNZ          row
	VZEROUPPER
	RET

// func dotsBatchAVX2(dst *float32, rows *float32, n, k int, qt *float32)
// 16 queries (two YMM of the transposed query block per factor), four
// factors per step into eight independent accumulators; k is a multiple
// of 4.
TEXT ·dotsBatchAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ rows+8(FP), DX
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), R8
	MOVQ qt+32(FP), SI

brow:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   R9, R9
	MOVQ   SI, R10

binner:
	VBROADCASTSS (DX)(R9*4), Y8
	VFMADD231PS  (R10), Y8, Y0
	VFMADD231PS  32(R10), Y8, Y1
	VBROADCASTSS 4(DX)(R9*4), Y9
	VFMADD231PS  64(R10), Y9, Y2
	VFMADD231PS  96(R10), Y9, Y3
	VBROADCASTSS 8(DX)(R9*4), Y10
	VFMADD231PS  128(R10), Y10, Y4
	VFMADD231PS  160(R10), Y10, Y5
	VBROADCASTSS 12(DX)(R9*4), Y11
	VFMADD231PS  192(R10), Y11, Y6
	VFMADD231PS  224(R10), Y11, Y7
	ADDQ         $4, R9
	ADDQ         $256, R10
	CMPQ         R9, R8
	JB           binner

	VADDPS  Y2, Y0, Y0
	VADDPS  Y6, Y4, Y4
	VADDPS  Y4, Y0, Y0
	VADDPS  Y3, Y1, Y1
	VADDPS  Y7, Y5, Y5
	VADDPS  Y5, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, DI
	LEAQ    (DX)(R8*4), DX
	DECQ    CX
	JNZ     brow
	VZEROUPPER
	RET

// func dotsBatch8AVX2(dst *float32, rows *float32, n, k int, qt *float32)
// 8 queries (one YMM of the transposed query block per factor), eight
// factors per step into eight independent accumulators; k is a multiple
// of 8.
TEXT ·dotsBatch8AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ rows+8(FP), DX
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), R8
	MOVQ qt+32(FP), SI

b8row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   R9, R9
	MOVQ   SI, R10

b8inner:
	VBROADCASTSS (DX)(R9*4), Y8
	VFMADD231PS  (R10), Y8, Y0
	VBROADCASTSS 4(DX)(R9*4), Y9
	VFMADD231PS  32(R10), Y9, Y1
	VBROADCASTSS 8(DX)(R9*4), Y10
	VFMADD231PS  64(R10), Y10, Y2
	VBROADCASTSS 12(DX)(R9*4), Y11
	VFMADD231PS  96(R10), Y11, Y3
	VBROADCASTSS 16(DX)(R9*4), Y12
	VFMADD231PS  128(R10), Y12, Y4
	VBROADCASTSS 20(DX)(R9*4), Y13
	VFMADD231PS  160(R10), Y13, Y5
	VBROADCASTSS 24(DX)(R9*4), Y14
	VFMADD231PS  192(R10), Y14, Y6
	VBROADCASTSS 28(DX)(R9*4), Y15
	VFMADD231PS  224(R10), Y15, Y7
	ADDQ         $8, R9
	ADDQ         $256, R10
	CMPQ         R9, R8
	JB           b8inner

	VADDPS  Y1, Y0, Y0
	VADDPS  Y3, Y2, Y2
	VADDPS  Y5, Y4, Y4
	VADDPS  Y7, Y6, Y6
	VADDPS  Y2, Y0, Y0
	VADDPS  Y6, Y4, Y4
	VADDPS  Y4, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	LEAQ    (DX)(R8*4), DX
	DECQ    CX
	JNZ     b8row
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"

// The inner loops of lrnForward5 and lrnBackward5 for a whole window, 8
// pixels a step, with the same operations in the same order as the Go loops
// (lrnFwd5Go, lrnBwd5Go), so the bits are the same: float32 square roots
// are correctly rounded either way, and there is no FMA. (An AVX-512
// version, 16 pixels a step with a masked tail, was slower on Zen 5: its
// square roots and divisions are no faster per float.)

// func lrnFwd5AVX2(n int, xc, xo, yo, so *float32, ring *[5]*float32, k, aos float32)
//
// For n a multiple of 8 (the caller does the rest in Go). AVX2.
TEXT ·lrnFwd5AVX2(SB), NOSPLIT, $0-56
	MOVQ n+0(FP), CX
	MOVQ xc+8(FP), SI
	MOVQ xo+16(FP), DI
	MOVQ yo+24(FP), R8
	MOVQ so+32(FP), R9
	MOVQ ring+40(FP), AX
	MOVQ 0(AX), R10
	MOVQ 8(AX), R11
	MOVQ 16(AX), R12
	MOVQ 24(AX), R13
	MOVQ 32(AX), DX
	VBROADCASTSS k+48(FP), Y10
	VBROADCASTSS aos+52(FP), Y11
	MOVL $0x3f800000, AX
	MOVL AX, X12
	VBROADCASTSS X12, Y12
	XORQ BX, BX
	SHRQ $3, CX
	JZ fwd2done

fwd2loop:
	VMOVUPS (SI)(BX*1), Y0
	VMULPS Y0, Y0, Y1
	VMOVUPS Y1, (DX)(BX*1)
	VMOVUPS (R10)(BX*1), Y2
	VADDPS (R11)(BX*1), Y2, Y2
	VADDPS (R12)(BX*1), Y2, Y2
	VADDPS (R13)(BX*1), Y2, Y2
	VADDPS Y1, Y2, Y2
	VMULPS Y11, Y2, Y2
	VADDPS Y10, Y2, Y2
	VMOVUPS Y2, (R9)(BX*1)
	VSQRTPS Y2, Y4
	VSQRTPS Y4, Y5
	VMULPS Y5, Y4, Y4
	VDIVPS Y4, Y12, Y4
	VMULPS (DI)(BX*1), Y4, Y6
	VMOVUPS Y6, (R8)(BX*1)
	ADDQ $32, BX
	DECQ CX
	JNZ fwd2loop

fwd2done:
	VZEROUPPER
	RET

// func lrnBwd5AVX2(n int, dyc, yc, sc, dxc, xj, dxj *float32, ring *[5]*float32, coef float32)
//
// For n a multiple of 8. AVX2.
TEXT ·lrnBwd5AVX2(SB), NOSPLIT, $0-68
	MOVQ n+0(FP), CX
	MOVQ dyc+8(FP), SI
	MOVQ yc+16(FP), DI
	MOVQ sc+24(FP), R8
	MOVQ dxc+32(FP), R9
	MOVQ xj+40(FP), R10
	MOVQ dxj+48(FP), R11
	MOVQ ring+56(FP), R12
	MOVQ 32(R12), DX
	VBROADCASTSS coef+64(FP), Y13
	MOVL $0x3f800000, AX
	MOVL AX, X12
	VBROADCASTSS X12, Y12
	XORQ BX, BX
	SHRQ $3, CX
	JZ bwd2done

bwd2loop:
	VMOVUPS (R8)(BX*1), Y0
	VSQRTPS Y0, Y1
	VMULPS Y1, Y1, Y2
	VMULPS Y1, Y2, Y2
	VSQRTPS Y2, Y2
	VDIVPS Y2, Y12, Y3
	VMOVUPS (SI)(BX*1), Y4
	VMULPS (DI)(BX*1), Y4, Y6
	VMULPS Y3, Y3, Y7
	VMULPS Y1, Y7, Y7
	VMULPS Y7, Y6, Y6
	VMOVUPS Y6, (DX)(BX*1)
	VMULPS Y3, Y4, Y8
	VMOVUPS Y8, (R9)(BX*1)
	MOVQ 0(R12), AX
	VMOVUPS (AX)(BX*1), Y9
	MOVQ 8(R12), AX
	VADDPS (AX)(BX*1), Y9, Y9
	MOVQ 16(R12), AX
	VADDPS (AX)(BX*1), Y9, Y9
	MOVQ 24(R12), AX
	VADDPS (AX)(BX*1), Y9, Y9
	VADDPS Y6, Y9, Y9
	VMOVUPS (R10)(BX*1), Y10
	VMULPS Y13, Y10, Y10
	VMULPS Y9, Y10, Y10
	VMOVUPS (R11)(BX*1), Y11
	VSUBPS Y10, Y11, Y11
	VMOVUPS Y11, (R11)(BX*1)
	ADDQ $32, BX
	DECQ CX
	JNZ bwd2loop

bwd2done:
	VZEROUPPER
	RET

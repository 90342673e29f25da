//go:build amd64 && !purego

#include "textflag.h"

// The inner loops of lrnForward5 and lrnBackward5 for a whole window, 16
// pixels a step, with the same operations in the same order as the Go loops
// (lrnFwd5Go, lrnBwd5Go), so the bits are the same: float32 square roots
// are correctly rounded either way, and there is no FMA. The last n mod 16
// pixels are a masked step. AVX-512F.

// func lrnFwd5(n int, xc, xo, yo, so *float32, ring *[5]*float32, k, aos float32)
TEXT ·lrnFwd5(SB), NOSPLIT, $0-56
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
	VBROADCASTSS k+48(FP), Z10
	VBROADCASTSS aos+52(FP), Z11
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z12
	XORQ BX, BX
	KXNORW K1, K1, K1

fwdloop:
	CMPQ CX, $16
	JLT fwdtail

fwdbody:
	VMOVUPS.Z (SI)(BX*1), K1, Z0
	VMULPS Z0, Z0, Z1
	VMOVUPS Z1, K1, (DX)(BX*1)
	VMOVUPS.Z (R10)(BX*1), K1, Z2
	VMOVUPS.Z (R11)(BX*1), K1, Z3
	VADDPS Z3, Z2, Z2
	VMOVUPS.Z (R12)(BX*1), K1, Z3
	VADDPS Z3, Z2, Z2
	VMOVUPS.Z (R13)(BX*1), K1, Z3
	VADDPS Z3, Z2, Z2
	VADDPS Z1, Z2, Z2
	VMULPS Z11, Z2, Z2
	VADDPS Z10, Z2, Z2
	VMOVUPS Z2, K1, (R9)(BX*1)
	VSQRTPS Z2, Z4
	VSQRTPS Z4, Z5
	VMULPS Z5, Z4, Z4
	VDIVPS Z4, Z12, Z4
	VMOVUPS.Z (DI)(BX*1), K1, Z6
	VMULPS Z4, Z6, Z6
	VMOVUPS Z6, K1, (R8)(BX*1)
	ADDQ $64, BX
	SUBQ $16, CX
	JMP fwdloop

fwdtail:
	TESTQ CX, CX
	JLE fwddone
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ $16, CX
	JMP fwdbody

fwddone:
	VZEROUPPER
	RET

// func lrnBwd5(n int, dyc, yc, sc, dxc, xj, dxj *float32, ring *[5]*float32, coef float32)
TEXT ·lrnBwd5(SB), NOSPLIT, $0-68
	MOVQ n+0(FP), CX
	MOVQ dyc+8(FP), SI
	MOVQ yc+16(FP), DI
	MOVQ sc+24(FP), R8
	MOVQ dxc+32(FP), R9
	MOVQ xj+40(FP), R10
	MOVQ dxj+48(FP), R11
	MOVQ ring+56(FP), AX
	MOVQ 32(AX), DX
	MOVQ AX, R12
	VBROADCASTSS coef+64(FP), Z13
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z12
	XORQ BX, BX
	KXNORW K1, K1, K1

bwdloop:
	CMPQ CX, $16
	JLT bwdtail

bwdbody:
	VMOVUPS.Z (R8)(BX*1), K1, Z0
	VSQRTPS Z0, Z1
	VMULPS Z1, Z1, Z2
	VMULPS Z1, Z2, Z2
	VSQRTPS Z2, Z2
	VDIVPS Z2, Z12, Z3
	VMOVUPS.Z (SI)(BX*1), K1, Z4
	VMOVUPS.Z (DI)(BX*1), K1, Z5
	VMULPS Z5, Z4, Z6
	VMULPS Z3, Z3, Z7
	VMULPS Z1, Z7, Z7
	VMULPS Z7, Z6, Z6
	VMOVUPS Z6, K1, (DX)(BX*1)
	VMULPS Z3, Z4, Z8
	VMOVUPS Z8, K1, (R9)(BX*1)
	MOVQ 0(R12), AX
	VMOVUPS.Z (AX)(BX*1), K1, Z9
	MOVQ 8(R12), AX
	VMOVUPS.Z (AX)(BX*1), K1, Z14
	VADDPS Z14, Z9, Z9
	MOVQ 16(R12), AX
	VMOVUPS.Z (AX)(BX*1), K1, Z14
	VADDPS Z14, Z9, Z9
	MOVQ 24(R12), AX
	VMOVUPS.Z (AX)(BX*1), K1, Z14
	VADDPS Z14, Z9, Z9
	VADDPS Z6, Z9, Z9
	VMOVUPS.Z (R10)(BX*1), K1, Z10
	VMULPS Z13, Z10, Z10
	VMULPS Z9, Z10, Z10
	VMOVUPS.Z (R11)(BX*1), K1, Z11
	VSUBPS Z10, Z11, Z11
	VMOVUPS Z11, K1, (R11)(BX*1)
	ADDQ $64, BX
	SUBQ $16, CX
	JMP bwdloop

bwdtail:
	TESTQ CX, CX
	JLE bwddone
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ $16, CX
	JMP bwdbody

bwddone:
	VZEROUPPER
	RET

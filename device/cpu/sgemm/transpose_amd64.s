//go:build amd64 && !purego

#include "textflag.h"

// func transpose8(dst *float32, ldd int, src *float32, lds int, blocks int)
//
// For b in [0, blocks): the 8×8 block of src at rows 0–7, columns 8b–8b+7
// (row stride lds floats) is written transposed to dst rows 8b–8b+7,
// columns 0–7 (row stride ldd floats). AVX only: unpack, shuffle, then swap
// 128-bit halves.
TEXT ·transpose8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R9
	SHLQ $2, R9
	MOVQ blocks+32(FP), CX
	TESTQ CX, CX
	JZ done
	LEAQ (R9)(R9*2), R10 // 3·lds
	LEAQ (R8)(R8*2), R11 // 3·ldd

loop:
	MOVQ SI, AX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R9*1), Y1
	VMOVUPS (AX)(R9*2), Y2
	VMOVUPS (AX)(R10*1), Y3
	LEAQ (AX)(R9*4), AX
	VMOVUPS (AX), Y4
	VMOVUPS (AX)(R9*1), Y5
	VMOVUPS (AX)(R9*2), Y6
	VMOVUPS (AX)(R10*1), Y7

	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7

	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15

	MOVQ DI, BX
	VMOVUPS Y8, (BX)
	VMOVUPS Y9, (BX)(R8*1)
	VMOVUPS Y10, (BX)(R8*2)
	VMOVUPS Y11, (BX)(R11*1)
	LEAQ (BX)(R8*4), BX
	VMOVUPS Y12, (BX)
	VMOVUPS Y13, (BX)(R8*1)
	VMOVUPS Y14, (BX)(R8*2)
	VMOVUPS Y15, (BX)(R11*1)

	ADDQ $32, SI
	LEAQ (DI)(R8*8), DI
	DECQ CX
	JNZ loop

done:
	VZEROUPPER
	RET

// func copy32(dst, src *float32, lds int, rows int)
//
// For r in [0, rows): dst[32r : 32r+32] = src[r·lds : r·lds+32]. AVX-512.
TEXT ·copy32(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R9
	SHLQ $2, R9
	MOVQ rows+24(FP), CX
	TESTQ CX, CX
	JZ done32

loop32:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ R9, SI
	ADDQ $128, DI
	DECQ CX
	JNZ loop32

done32:
	VZEROUPPER
	RET

// func copy16(dst, src *float32, lds int, rows int)
//
// For r in [0, rows): dst[16r : 16r+16] = src[r·lds : r·lds+16]. AVX.
TEXT ·copy16(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R9
	SHLQ $2, R9
	MOVQ rows+24(FP), CX
	TESTQ CX, CX
	JZ done16

loop16:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ R9, SI
	ADDQ $64, DI
	DECQ CX
	JNZ loop16

done16:
	VZEROUPPER
	RET

// func transpose6(dst *float32, src *float32, lds int, blocks int)
//
// For b in [0, blocks): the 6×8 block of src at rows 0–5, columns 8b–8b+7
// (row stride lds floats) is written transposed to dst[(8b+j)·6 + i],
// j < 8, i < 6: 8 rows of 6 floats, packed (the AVX2 kernel's A sliver).
// Rows are stored 8 floats wide in order, each spill overwritten by the next
// row; the last row of a block is stored 6 wide. AVX.
TEXT ·transpose6(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R9
	SHLQ $2, R9
	MOVQ blocks+24(FP), CX
	TESTQ CX, CX
	JZ done6
	LEAQ (R9)(R9*2), R10 // 3·lds
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

loop6:
	MOVQ SI, AX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R9*1), Y1
	VMOVUPS (AX)(R9*2), Y2
	VMOVUPS (AX)(R10*1), Y3
	LEAQ (AX)(R9*4), AX
	VMOVUPS (AX), Y4
	VMOVUPS (AX)(R9*1), Y5

	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y8
	VSHUFPS $0xEE, Y15, Y13, Y9

	VPERM2F128 $0x20, Y4, Y0, Y10
	VPERM2F128 $0x20, Y5, Y1, Y11
	VPERM2F128 $0x20, Y8, Y2, Y12
	VPERM2F128 $0x20, Y9, Y3, Y13
	VMOVUPS Y10, (DI)
	VMOVUPS Y11, 24(DI)
	VMOVUPS Y12, 48(DI)
	VMOVUPS Y13, 72(DI)
	VPERM2F128 $0x31, Y4, Y0, Y10
	VPERM2F128 $0x31, Y5, Y1, Y11
	VPERM2F128 $0x31, Y8, Y2, Y12
	VPERM2F128 $0x31, Y9, Y3, Y13
	VMOVUPS Y10, 96(DI)
	VMOVUPS Y11, 120(DI)
	VMOVUPS Y12, 144(DI)
	VMOVUPS X13, 168(DI)
	VEXTRACTF128 $1, Y13, X13
	VMOVQ X13, 184(DI)

	ADDQ $32, SI
	ADDQ $192, DI
	DECQ CX
	JNZ loop6

done6:
	VZEROUPPER
	RET

//go:build amd64 && !purego

#include "textflag.h"

// func im2colRows(dst, src *float32, off, oh0, oh1, oh, w, ow int, lmask, smask uint32)
//
// Writes oh rows of ow floats (ow ≤ 32, smask = its lanes) to dst, packed.
// Rows [oh0, oh1) are loads: row oh0+i has lane l = src[i·w + off + l]
// where bit l of lmask is set, else 0. The other rows are zero. Masked-off
// lanes are neither read nor written, so src + off may point before the
// row: only the lanes lmask names are loaded. AVX-512F.
TEXT ·im2colRows(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ off+16(FP), AX
	LEAQ (SI)(AX*4), SI
	MOVQ oh0+24(FP), R10
	MOVQ oh1+32(FP), R11
	MOVQ oh+40(FP), CX
	MOVQ w+48(FP), R8
	SHLQ $2, R8
	MOVQ ow+56(FP), R9
	SHLQ $2, R9
	MOVL lmask+64(FP), AX
	KMOVW AX, K1
	SHRL $16, AX
	KMOVW AX, K2
	MOVL smask+68(FP), AX
	KMOVW AX, K3
	SHRL $16, AX
	KMOVW AX, K4
	VPXORD Z2, Z2, Z2
	XORQ DX, DX // the row

loop:
	CMPQ DX, CX
	JGE done
	CMPQ DX, R10
	JLT zero
	CMPQ DX, R11
	JGE zero
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	VMOVUPS Z0, K3, (DI)
	VMOVUPS Z1, K4, 64(DI)
	ADDQ R8, SI
	ADDQ R9, DI
	INCQ DX
	JMP loop

zero:
	VMOVUPS Z2, K3, (DI)
	VMOVUPS Z2, K4, 64(DI)
	ADDQ R9, DI
	INCQ DX
	JMP loop

done:
	VZEROUPPER
	RET

// func col2imRows(dx *float32, off int, src *float32, rows, w, ow int, lmask uint32)
//
// For i in [0, rows) and each lane l < 32 whose bit is set in lmask:
// dx[i·w + off + l] += src[i·ow + l]. Other lanes are neither read nor
// written, so dx + off may point before the row. AVX-512F.
TEXT ·col2imRows(SB), NOSPLIT, $0-52
	MOVQ dx+0(FP), DI
	MOVQ off+8(FP), AX
	LEAQ (DI)(AX*4), DI
	MOVQ src+16(FP), SI
	MOVQ rows+24(FP), CX
	MOVQ w+32(FP), R8
	SHLQ $2, R8
	MOVQ ow+40(FP), R9
	SHLQ $2, R9
	MOVL lmask+48(FP), AX
	KMOVW AX, K1
	SHRL $16, AX
	KMOVW AX, K2
	TESTQ CX, CX
	JLE c2idone

c2iloop:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	VMOVUPS.Z (DI), K1, Z2
	VMOVUPS.Z 64(DI), K2, Z3
	VADDPS Z0, Z2, Z2
	VADDPS Z1, Z3, Z3
	VMOVUPS Z2, K1, (DI)
	VMOVUPS Z3, K2, 64(DI)
	ADDQ R8, DI
	ADDQ R9, SI
	DECQ CX
	JNZ c2iloop

c2idone:
	VZEROUPPER
	RET

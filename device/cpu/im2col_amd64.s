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

// func col2imAcc(dx *float32, rows, w int, src *float32, ld, ow, s, pad int, masks *[32]uint32)
//
// For i in [0, rows): row i of dx (w ≤ 32 floats at dx + i·w) gets, for q
// = 0 … s−1 in turn, lanes l of masks[q] += src[q·ld + i·ow + pad − q + l]
// (merge-masked adds: other lanes keep their bits). The row stays in
// registers across the s adds, so no store has to reach a load at a
// shifted address. AVX-512F.
TEXT ·col2imAcc(SB), NOSPLIT, $0-72
	MOVQ dx+0(FP), DI
	MOVQ rows+8(FP), CX
	MOVQ w+16(FP), R8
	MOVQ src+24(FP), SI
	MOVQ ld+32(FP), R10
	SHLQ $2, R10
	SUBQ $4, R10 // from q to q+1: one row of ld on, one float back
	MOVQ ow+40(FP), R9
	SHLQ $2, R9
	MOVQ s+48(FP), R11
	MOVQ pad+56(FP), R13
	SHLQ $2, R13
	MOVQ masks+64(FP), R12
	MOVQ CX, DX
	MOVQ R8, CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K5
	SHRQ $16, AX
	KMOVW AX, K6
	MOVQ DX, CX
	SHLQ $2, R8
	TESTQ CX, CX
	JLE accdone

accrow:
	VMOVUPS.Z (DI), K5, Z0
	VMOVUPS.Z 64(DI), K6, Z1
	LEAQ (SI)(R13*1), AX
	MOVQ R12, BX
	XORQ DX, DX

accq:
	KMOVW (BX), K1
	KMOVW 2(BX), K2
	VMOVUPS.Z (AX), K1, Z2
	VMOVUPS.Z 64(AX), K2, Z3
	VADDPS Z2, Z0, K1, Z0
	VADDPS Z3, Z1, K2, Z1
	ADDQ R10, AX
	ADDQ $4, BX
	INCQ DX
	CMPQ DX, R11
	JLT accq

	VMOVUPS Z0, K5, (DI)
	VMOVUPS Z1, K6, 64(DI)
	ADDQ R8, DI
	ADDQ R9, SI
	DECQ CX
	JNZ accrow

accdone:
	VZEROUPPER
	RET

// func gatherStrided(dst, src *float32, n, stride int)
//
// dst[i] = src[i·stride] for i < n, 16 at a time with a masked tail, by
// AVX-512 gathers (lane l of the index is l·stride). AVX-512F.
TEXT ·gatherStrided(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ stride+24(FP), AX
	VPBROADCASTD AX, Z1
	VPMULLD gatherLanes<>(SB), Z1, Z1 // l·stride
	SHLQ $6, AX                       // 16·stride floats, in bytes
	MOVQ AX, R8

gloop:
	CMPQ CX, $16
	JLT gtail
	KXNORW K1, K1, K1
	VGATHERDPS (SI)(Z1*4), K1, Z0
	VMOVUPS Z0, (DI)
	ADDQ R8, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP gloop

gtail:
	TESTQ CX, CX
	JLE gdone
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	KMOVW AX, K2
	VGATHERDPS (SI)(Z1*4), K1, Z0
	VMOVUPS Z0, K2, (DI)

gdone:
	VZEROUPPER
	RET

DATA gatherLanes<>+0(SB)/4, $0
DATA gatherLanes<>+4(SB)/4, $1
DATA gatherLanes<>+8(SB)/4, $2
DATA gatherLanes<>+12(SB)/4, $3
DATA gatherLanes<>+16(SB)/4, $4
DATA gatherLanes<>+20(SB)/4, $5
DATA gatherLanes<>+24(SB)/4, $6
DATA gatherLanes<>+28(SB)/4, $7
DATA gatherLanes<>+32(SB)/4, $8
DATA gatherLanes<>+36(SB)/4, $9
DATA gatherLanes<>+40(SB)/4, $10
DATA gatherLanes<>+44(SB)/4, $11
DATA gatherLanes<>+48(SB)/4, $12
DATA gatherLanes<>+52(SB)/4, $13
DATA gatherLanes<>+56(SB)/4, $14
DATA gatherLanes<>+60(SB)/4, $15
GLOBL gatherLanes<>(SB), RODATA|NOPTR, $64

//go:build amd64 && !purego

#include "textflag.h"

// Winograd F(2×2, 3×3) input and output transforms for planes whose tile
// rows fit one vector (tw ≤ 7 tiles: padded rows of ≤ 16 floats), a lane
// per tile of a tile row, with the operations of winoInput and winoOutput
// in the same order (same bits). AVX-512F.

DATA winoCols<>+0(SB)/4, $0
DATA winoCols<>+4(SB)/4, $2
DATA winoCols<>+8(SB)/4, $4
DATA winoCols<>+12(SB)/4, $6
DATA winoCols<>+16(SB)/4, $8
DATA winoCols<>+20(SB)/4, $10
DATA winoCols<>+24(SB)/4, $12
DATA winoCols<>+28(SB)/4, $14
DATA winoCols<>+32(SB)/4, $0
DATA winoCols<>+36(SB)/4, $2
DATA winoCols<>+40(SB)/4, $4
DATA winoCols<>+44(SB)/4, $6
DATA winoCols<>+48(SB)/4, $8
DATA winoCols<>+52(SB)/4, $10
DATA winoCols<>+56(SB)/4, $12
DATA winoCols<>+60(SB)/4, $14
DATA winoCols<>+64(SB)/4, $1
DATA winoCols<>+68(SB)/4, $3
DATA winoCols<>+72(SB)/4, $5
DATA winoCols<>+76(SB)/4, $7
DATA winoCols<>+80(SB)/4, $9
DATA winoCols<>+84(SB)/4, $11
DATA winoCols<>+88(SB)/4, $13
DATA winoCols<>+92(SB)/4, $15
DATA winoCols<>+96(SB)/4, $1
DATA winoCols<>+100(SB)/4, $3
DATA winoCols<>+104(SB)/4, $5
DATA winoCols<>+108(SB)/4, $7
DATA winoCols<>+112(SB)/4, $9
DATA winoCols<>+116(SB)/4, $11
DATA winoCols<>+120(SB)/4, $13
DATA winoCols<>+124(SB)/4, $15
DATA winoCols<>+128(SB)/4, $2
DATA winoCols<>+132(SB)/4, $4
DATA winoCols<>+136(SB)/4, $6
DATA winoCols<>+140(SB)/4, $8
DATA winoCols<>+144(SB)/4, $10
DATA winoCols<>+148(SB)/4, $12
DATA winoCols<>+152(SB)/4, $14
DATA winoCols<>+156(SB)/4, $0
DATA winoCols<>+160(SB)/4, $2
DATA winoCols<>+164(SB)/4, $4
DATA winoCols<>+168(SB)/4, $6
DATA winoCols<>+172(SB)/4, $8
DATA winoCols<>+176(SB)/4, $10
DATA winoCols<>+180(SB)/4, $12
DATA winoCols<>+184(SB)/4, $14
DATA winoCols<>+188(SB)/4, $0
DATA winoCols<>+192(SB)/4, $3
DATA winoCols<>+196(SB)/4, $5
DATA winoCols<>+200(SB)/4, $7
DATA winoCols<>+204(SB)/4, $9
DATA winoCols<>+208(SB)/4, $11
DATA winoCols<>+212(SB)/4, $13
DATA winoCols<>+216(SB)/4, $15
DATA winoCols<>+220(SB)/4, $1
DATA winoCols<>+224(SB)/4, $3
DATA winoCols<>+228(SB)/4, $5
DATA winoCols<>+232(SB)/4, $7
DATA winoCols<>+236(SB)/4, $9
DATA winoCols<>+240(SB)/4, $11
DATA winoCols<>+244(SB)/4, $13
DATA winoCols<>+248(SB)/4, $15
DATA winoCols<>+252(SB)/4, $1
GLOBL winoCols<>(SB), RODATA|NOPTR, $256

DATA winoInterleave<>+0(SB)/4, $0
DATA winoInterleave<>+4(SB)/4, $16
DATA winoInterleave<>+8(SB)/4, $1
DATA winoInterleave<>+12(SB)/4, $17
DATA winoInterleave<>+16(SB)/4, $2
DATA winoInterleave<>+20(SB)/4, $18
DATA winoInterleave<>+24(SB)/4, $3
DATA winoInterleave<>+28(SB)/4, $19
DATA winoInterleave<>+32(SB)/4, $4
DATA winoInterleave<>+36(SB)/4, $20
DATA winoInterleave<>+40(SB)/4, $5
DATA winoInterleave<>+44(SB)/4, $21
DATA winoInterleave<>+48(SB)/4, $6
DATA winoInterleave<>+52(SB)/4, $22
DATA winoInterleave<>+56(SB)/4, $7
DATA winoInterleave<>+60(SB)/4, $23
GLOBL winoInterleave<>(SB), RODATA|NOPTR, $64

// func winoIn(plane *float32, h, w, th, tw int, out *float32, es int)
//
// For each tile row ty < th: the 4 input rows 2·ty−1 … 2·ty+2 of plane
// (h × w, w ≤ 14), zero outside it and read with a one-column left border
// (masked loads: lane l is column l−1), give the 16 transformed values of
// tw tiles, written to out + e·es + ty·tw, e = 0…15, tw floats each.
TEXT ·winoIn(SB), NOSPLIT, $0-56
	MOVQ w+16(FP), CX
	INCQ CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	ANDL $-2, AX // lanes 1 … w
	KMOVW AX, K1
	MOVQ tw+32(FP), CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	MOVQ plane+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ w+16(FP), R8
	SHLQ $2, R8
	MOVQ th+24(FP), CX
	MOVQ tw+32(FP), R9
	SHLQ $2, R9
	MOVQ out+40(FP), DI
	MOVQ es+48(FP), R10
	SHLQ $2, R10
	MOVQ $-1, DX // the tile row's first input row
	VMOVUPS winoCols<>+0(SB), Z20
	VMOVUPS winoCols<>+64(SB), Z21
	VMOVUPS winoCols<>+128(SB), Z22
	VMOVUPS winoCols<>+192(SB), Z23
	TESTQ CX, CX
	JLE indone

inloop:
	LEAQ 0(DX), AX
	CMPQ AX, $0
	JLT inzero0
	CMPQ AX, R12
	JGE inzero0
	IMULQ R8, AX
	VMOVUPS.Z -4(SI)(AX*1), K1, Z0
	JMP inrow0

inzero0:
	VPXORD Z0, Z0, Z0

inrow0:
	LEAQ 1(DX), AX
	CMPQ AX, $0
	JLT inzero1
	CMPQ AX, R12
	JGE inzero1
	IMULQ R8, AX
	VMOVUPS.Z -4(SI)(AX*1), K1, Z1
	JMP inrow1

inzero1:
	VPXORD Z1, Z1, Z1

inrow1:
	LEAQ 2(DX), AX
	CMPQ AX, $0
	JLT inzero2
	CMPQ AX, R12
	JGE inzero2
	IMULQ R8, AX
	VMOVUPS.Z -4(SI)(AX*1), K1, Z2
	JMP inrow2

inzero2:
	VPXORD Z2, Z2, Z2

inrow2:
	LEAQ 3(DX), AX
	CMPQ AX, $0
	JLT inzero3
	CMPQ AX, R12
	JGE inzero3
	IMULQ R8, AX
	VMOVUPS.Z -4(SI)(AX*1), K1, Z3
	JMP inrow3

inzero3:
	VPXORD Z3, Z3, Z3

inrow3:
	VSUBPS Z2, Z0, Z4 // t0 = d0 − d2
	VADDPS Z2, Z1, Z5 // t1 = d1 + d2
	VSUBPS Z1, Z2, Z6 // t2 = d2 − d1
	VSUBPS Z3, Z1, Z7 // t3 = d1 − d3
	MOVQ DI, BX
	VPERMPS Z4, Z20, Z8
	VPERMPS Z4, Z21, Z9
	VPERMPS Z4, Z22, Z10
	VPERMPS Z4, Z23, Z11
	VSUBPS Z10, Z8, Z12
	VADDPS Z10, Z9, Z13
	VSUBPS Z9, Z10, Z14
	VSUBPS Z11, Z9, Z15
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z15, K2, (BX)
	ADDQ R10, BX
	VPERMPS Z5, Z20, Z8
	VPERMPS Z5, Z21, Z9
	VPERMPS Z5, Z22, Z10
	VPERMPS Z5, Z23, Z11
	VSUBPS Z10, Z8, Z12
	VADDPS Z10, Z9, Z13
	VSUBPS Z9, Z10, Z14
	VSUBPS Z11, Z9, Z15
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z15, K2, (BX)
	ADDQ R10, BX
	VPERMPS Z6, Z20, Z8
	VPERMPS Z6, Z21, Z9
	VPERMPS Z6, Z22, Z10
	VPERMPS Z6, Z23, Z11
	VSUBPS Z10, Z8, Z12
	VADDPS Z10, Z9, Z13
	VSUBPS Z9, Z10, Z14
	VSUBPS Z11, Z9, Z15
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z15, K2, (BX)
	ADDQ R10, BX
	VPERMPS Z7, Z20, Z8
	VPERMPS Z7, Z21, Z9
	VPERMPS Z7, Z22, Z10
	VPERMPS Z7, Z23, Z11
	VSUBPS Z10, Z8, Z12
	VADDPS Z10, Z9, Z13
	VSUBPS Z9, Z10, Z14
	VSUBPS Z11, Z9, Z15
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z15, K2, (BX)
	ADDQ $2, DX
	ADDQ R9, DI
	DECQ CX
	JNZ inloop

indone:
	VZEROUPPER
	RET

// func winoOut(m *float32, es, th, tw int, y *float32, h, w int, b float32)
//
// For each tile row ty < th: the 16 values m + e·es + ty·tw (tw floats
// each) give output rows 2·ty and 2·ty+1 (those < h) of y, w ≤ 2·tw
// floats each, plus b.
TEXT ·winoOut(SB), NOSPLIT, $0-60
	MOVQ tw+24(FP), CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	MOVQ w+48(FP), CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K3
	MOVQ m+0(FP), SI
	MOVQ es+8(FP), R10
	SHLQ $2, R10
	MOVQ th+16(FP), CX
	MOVQ tw+24(FP), R9
	SHLQ $2, R9
	MOVQ y+32(FP), DI
	MOVQ h+40(FP), R12
	MOVQ w+48(FP), R8
	SHLQ $2, R8
	VBROADCASTSS b+56(FP), Z30
	VMOVUPS winoInterleave<>(SB), Z24
	XORQ DX, DX // output row 2·ty
	TESTQ CX, CX
	JLE outdone

outloop:
	MOVQ SI, BX
	VMOVUPS.Z (BX), K2, Z0
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z1
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z2
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z3
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z4
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z5
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z6
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z7
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z8
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z9
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z10
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z11
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z12
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z13
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z14
	ADDQ R10, BX
	VMOVUPS.Z (BX), K2, Z15
	VADDPS Z4, Z0, Z16
	VADDPS Z8, Z16, Z16 // t0q = m(q) + m(4+q) + m(8+q)
	VSUBPS Z8, Z4, Z20
	VSUBPS Z12, Z20, Z20 // t1q = m(4+q) − m(8+q) − m(12+q)
	VADDPS Z5, Z1, Z17
	VADDPS Z9, Z17, Z17 // t0q = m(q) + m(4+q) + m(8+q)
	VSUBPS Z9, Z5, Z21
	VSUBPS Z13, Z21, Z21 // t1q = m(4+q) − m(8+q) − m(12+q)
	VADDPS Z6, Z2, Z18
	VADDPS Z10, Z18, Z18 // t0q = m(q) + m(4+q) + m(8+q)
	VSUBPS Z10, Z6, Z22
	VSUBPS Z14, Z22, Z22 // t1q = m(4+q) − m(8+q) − m(12+q)
	VADDPS Z7, Z3, Z19
	VADDPS Z11, Z19, Z19 // t0q = m(q) + m(4+q) + m(8+q)
	VSUBPS Z11, Z7, Z23
	VSUBPS Z15, Z23, Z23 // t1q = m(4+q) − m(8+q) − m(12+q)
	VADDPS Z17, Z16, Z25
	VADDPS Z18, Z25, Z25
	VADDPS Z30, Z25, Z25 // even columns
	VSUBPS Z18, Z17, Z26
	VSUBPS Z19, Z26, Z26
	VADDPS Z30, Z26, Z26 // odd columns
	VPERMT2PS Z26, Z24, Z25
	VMOVUPS Z25, K3, (DI)
	VADDPS Z21, Z20, Z25
	VADDPS Z22, Z25, Z25
	VADDPS Z30, Z25, Z25 // even columns
	VSUBPS Z22, Z21, Z26
	VSUBPS Z23, Z26, Z26
	VADDPS Z30, Z26, Z26 // odd columns
	VPERMT2PS Z26, Z24, Z25
	LEAQ 1(DX), AX
	CMPQ AX, R12
	JGE outnext
	VMOVUPS Z25, K3, (DI)(R8*1)

outnext:
	ADDQ R9, SI
	LEAQ (DI)(R8*2), DI
	ADDQ $2, DX
	DECQ CX
	JNZ outloop

outdone:
	VZEROUPPER
	RET

// func winoDyT(plane *float32, h, w, th, tw int, out *float32, es int)
//
// The output-gradient transform of winoDy: for each tile row ty < th, rows
// 2·ty and 2·ty+1 of plane (h × w, w ≤ 14; zero past h and w) give A g Aᵀ
// of tw tiles, written to out + e·es + ty·tw, e = 0…15, tw floats each.
// Negation flips the sign bit, as Go's unary minus does.
TEXT ·winoDyT(SB), NOSPLIT, $0-56
	MOVQ w+16(FP), CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ tw+32(FP), CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	MOVQ plane+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ w+16(FP), R8
	SHLQ $2, R8
	MOVQ th+24(FP), CX
	MOVQ tw+32(FP), R9
	SHLQ $2, R9
	MOVQ out+40(FP), DI
	MOVQ es+48(FP), R10
	SHLQ $2, R10
	MOVL $0x80000000, AX
	VPBROADCASTD AX, Z31
	VMOVUPS winoCols<>+0(SB), Z20 // even columns
	VMOVUPS winoCols<>+64(SB), Z21 // odd columns
	XORQ DX, DX // the tile row's first row
	TESTQ CX, CX
	JLE dydone

dyloop:
	MOVQ DX, AX
	IMULQ R8, AX
	VMOVUPS.Z (SI)(AX*1), K1, Z0
	LEAQ 1(DX), AX
	CMPQ AX, R12
	JGE dyzero
	IMULQ R8, AX
	VMOVUPS.Z (SI)(AX*1), K1, Z1
	JMP dyrows

dyzero:
	VPXORD Z1, Z1, Z1

dyrows:
	VPERMPS Z0, Z20, Z2 // g00
	VPERMPS Z0, Z21, Z3 // g01
	VPERMPS Z1, Z20, Z4 // g10
	VPERMPS Z1, Z21, Z5 // g11
	// s = A g: (s00, s01) = (g00, g01), s1 = g0 + g1, s2 = g0 − g1, s3 = −g1
	VADDPS Z4, Z2, Z6
	VADDPS Z5, Z3, Z7
	VSUBPS Z4, Z2, Z8
	VSUBPS Z5, Z3, Z9
	VXORPS Z31, Z4, Z10
	VXORPS Z31, Z5, Z11
	MOVQ DI, BX
	VADDPS Z3, Z2, Z12
	VSUBPS Z3, Z2, Z13
	VXORPS Z31, Z3, Z14
	VMOVUPS Z2, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ R10, BX
	VADDPS Z7, Z6, Z12
	VSUBPS Z7, Z6, Z13
	VXORPS Z31, Z7, Z14
	VMOVUPS Z6, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ R10, BX
	VADDPS Z9, Z8, Z12
	VSUBPS Z9, Z8, Z13
	VXORPS Z31, Z9, Z14
	VMOVUPS Z8, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ R10, BX
	VADDPS Z11, Z10, Z12
	VSUBPS Z11, Z10, Z13
	VXORPS Z31, Z11, Z14
	VMOVUPS Z10, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z12, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z13, K2, (BX)
	ADDQ R10, BX
	VMOVUPS Z14, K2, (BX)
	ADDQ $2, DX
	ADDQ R9, DI
	DECQ CX
	JNZ dyloop

dydone:
	VZEROUPPER
	RET

// The AVX2 forms of winoIn and winoOut, for planes of tile rows that fit
// 8 floats (tw ≤ 3: mini's 6×6 planes), with vector masks instead of mask
// registers; same operations in the same order.

DATA winoCols8<>+0(SB)/4, $0
DATA winoCols8<>+4(SB)/4, $2
DATA winoCols8<>+8(SB)/4, $4
DATA winoCols8<>+12(SB)/4, $6
DATA winoCols8<>+16(SB)/4, $0
DATA winoCols8<>+20(SB)/4, $2
DATA winoCols8<>+24(SB)/4, $4
DATA winoCols8<>+28(SB)/4, $6
DATA winoCols8<>+32(SB)/4, $1
DATA winoCols8<>+36(SB)/4, $3
DATA winoCols8<>+40(SB)/4, $5
DATA winoCols8<>+44(SB)/4, $7
DATA winoCols8<>+48(SB)/4, $1
DATA winoCols8<>+52(SB)/4, $3
DATA winoCols8<>+56(SB)/4, $5
DATA winoCols8<>+60(SB)/4, $7
DATA winoCols8<>+64(SB)/4, $2
DATA winoCols8<>+68(SB)/4, $4
DATA winoCols8<>+72(SB)/4, $6
DATA winoCols8<>+76(SB)/4, $0
DATA winoCols8<>+80(SB)/4, $2
DATA winoCols8<>+84(SB)/4, $4
DATA winoCols8<>+88(SB)/4, $6
DATA winoCols8<>+92(SB)/4, $0
DATA winoCols8<>+96(SB)/4, $3
DATA winoCols8<>+100(SB)/4, $5
DATA winoCols8<>+104(SB)/4, $7
DATA winoCols8<>+108(SB)/4, $1
DATA winoCols8<>+112(SB)/4, $3
DATA winoCols8<>+116(SB)/4, $5
DATA winoCols8<>+120(SB)/4, $7
DATA winoCols8<>+124(SB)/4, $1
GLOBL winoCols8<>(SB), RODATA|NOPTR, $128

// func winoInAVX2(plane *float32, h, w, th, tw int, out *float32, es int, masks *[2][8]int32)
//
// winoIn with 8-float rows: masks[0] selects lanes 1 … w of a row read
// from one float before it, masks[1] the tw lanes stored.
TEXT ·winoInAVX2(SB), NOSPLIT, $0-64
	MOVQ plane+0(FP), SI
	MOVQ h+8(FP), R12
	MOVQ w+16(FP), R8
	SHLQ $2, R8
	MOVQ th+24(FP), CX
	MOVQ tw+32(FP), R9
	SHLQ $2, R9
	MOVQ out+40(FP), DI
	MOVQ es+48(FP), R10
	SHLQ $2, R10
	MOVQ masks+56(FP), AX
	VMOVDQU 0(AX), Y14
	VMOVDQU 32(AX), Y15
	MOVQ $-1, DX
	TESTQ CX, CX
	JLE in2done

in2loop:
	LEAQ 0(DX), AX
	CMPQ AX, $0
	JLT in2zero0
	CMPQ AX, R12
	JGE in2zero0
	IMULQ R8, AX
	VMASKMOVPS -4(SI)(AX*1), Y14, Y0
	JMP in2row0

in2zero0:
	VXORPS Y0, Y0, Y0

in2row0:
	LEAQ 1(DX), AX
	CMPQ AX, $0
	JLT in2zero1
	CMPQ AX, R12
	JGE in2zero1
	IMULQ R8, AX
	VMASKMOVPS -4(SI)(AX*1), Y14, Y1
	JMP in2row1

in2zero1:
	VXORPS Y1, Y1, Y1

in2row1:
	LEAQ 2(DX), AX
	CMPQ AX, $0
	JLT in2zero2
	CMPQ AX, R12
	JGE in2zero2
	IMULQ R8, AX
	VMASKMOVPS -4(SI)(AX*1), Y14, Y2
	JMP in2row2

in2zero2:
	VXORPS Y2, Y2, Y2

in2row2:
	LEAQ 3(DX), AX
	CMPQ AX, $0
	JLT in2zero3
	CMPQ AX, R12
	JGE in2zero3
	IMULQ R8, AX
	VMASKMOVPS -4(SI)(AX*1), Y14, Y3
	JMP in2row3

in2zero3:
	VXORPS Y3, Y3, Y3

in2row3:
	VSUBPS Y2, Y0, Y4
	VADDPS Y2, Y1, Y5
	VSUBPS Y1, Y2, Y6
	VSUBPS Y3, Y1, Y7
	VMOVDQU winoCols8<>+0(SB), Y0
	VMOVDQU winoCols8<>+32(SB), Y1
	VMOVDQU winoCols8<>+64(SB), Y2
	VMOVDQU winoCols8<>+96(SB), Y3
	MOVQ DI, BX
	VPERMPS Y4, Y0, Y8
	VPERMPS Y4, Y1, Y9
	VPERMPS Y4, Y2, Y10
	VPERMPS Y4, Y3, Y11
	VSUBPS Y10, Y8, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VADDPS Y10, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y9, Y10, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y11, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VPERMPS Y5, Y0, Y8
	VPERMPS Y5, Y1, Y9
	VPERMPS Y5, Y2, Y10
	VPERMPS Y5, Y3, Y11
	VSUBPS Y10, Y8, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VADDPS Y10, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y9, Y10, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y11, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VPERMPS Y6, Y0, Y8
	VPERMPS Y6, Y1, Y9
	VPERMPS Y6, Y2, Y10
	VPERMPS Y6, Y3, Y11
	VSUBPS Y10, Y8, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VADDPS Y10, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y9, Y10, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y11, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VPERMPS Y7, Y0, Y8
	VPERMPS Y7, Y1, Y9
	VPERMPS Y7, Y2, Y10
	VPERMPS Y7, Y3, Y11
	VSUBPS Y10, Y8, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VADDPS Y10, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y9, Y10, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ R10, BX
	VSUBPS Y11, Y9, Y12
	VMASKMOVPS Y12, Y15, (BX)
	ADDQ $2, DX
	ADDQ R9, DI
	DECQ CX
	JNZ in2loop

in2done:
	VZEROUPPER
	RET

// func winoOutAVX2(m *float32, es, th, tw int, y *float32, h, w int, b float32, masks *[2][8]int32)
//
// winoOut with 8-float rows: masks[0] selects the tw lanes loaded from m,
// masks[1] the w lanes of an output row stored.
TEXT ·winoOutAVX2(SB), NOSPLIT, $0-72
	MOVQ m+0(FP), SI
	MOVQ es+8(FP), R10
	SHLQ $2, R10
	MOVQ th+16(FP), CX
	MOVQ tw+24(FP), R9
	SHLQ $2, R9
	MOVQ y+32(FP), DI
	MOVQ h+40(FP), R12
	MOVQ w+48(FP), R8
	SHLQ $2, R8
	VBROADCASTSS b+56(FP), Y12
	MOVQ masks+64(FP), AX
	VMOVDQU 0(AX), Y14
	VMOVDQU 32(AX), Y15
	XORQ DX, DX
	TESTQ CX, CX
	JLE out2done

out2loop:
	MOVQ SI, BX
	VMASKMOVPS (BX), Y14, Y0
	MOVQ BX, AX
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y1
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y2
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y3
	VADDPS Y1, Y0, Y4
	VADDPS Y2, Y4, Y4
	VSUBPS Y2, Y1, Y8
	VSUBPS Y3, Y8, Y8
	ADDQ R10, BX
	VMASKMOVPS (BX), Y14, Y0
	MOVQ BX, AX
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y1
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y2
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y3
	VADDPS Y1, Y0, Y5
	VADDPS Y2, Y5, Y5
	VSUBPS Y2, Y1, Y9
	VSUBPS Y3, Y9, Y9
	ADDQ R10, BX
	VMASKMOVPS (BX), Y14, Y0
	MOVQ BX, AX
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y1
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y2
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y3
	VADDPS Y1, Y0, Y6
	VADDPS Y2, Y6, Y6
	VSUBPS Y2, Y1, Y10
	VSUBPS Y3, Y10, Y10
	ADDQ R10, BX
	VMASKMOVPS (BX), Y14, Y0
	MOVQ BX, AX
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y1
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y2
	LEAQ (AX)(R10*4), AX
	VMASKMOVPS (AX), Y14, Y3
	VADDPS Y1, Y0, Y7
	VADDPS Y2, Y7, Y7
	VSUBPS Y2, Y1, Y11
	VSUBPS Y3, Y11, Y11
	VADDPS Y5, Y4, Y0
	VADDPS Y6, Y0, Y0
	VADDPS Y12, Y0, Y0 // even columns
	VSUBPS Y6, Y5, Y1
	VSUBPS Y7, Y1, Y1
	VADDPS Y12, Y1, Y1 // odd columns
	VUNPCKLPS Y1, Y0, Y2
	VUNPCKHPS Y1, Y0, Y3
	VINSERTF128 $1, X3, Y2, Y2
	VMASKMOVPS Y2, Y15, (DI)
	VADDPS Y9, Y8, Y0
	VADDPS Y10, Y0, Y0
	VADDPS Y12, Y0, Y0 // even columns
	VSUBPS Y10, Y9, Y1
	VSUBPS Y11, Y1, Y1
	VADDPS Y12, Y1, Y1 // odd columns
	VUNPCKLPS Y1, Y0, Y2
	VUNPCKHPS Y1, Y0, Y3
	VINSERTF128 $1, X3, Y2, Y2
	LEAQ 1(DX), AX
	CMPQ AX, R12
	JGE out2next
	VMASKMOVPS Y2, Y15, (DI)(R8*1)

out2next:
	ADDQ R9, SI
	LEAQ (DI)(R8*2), DI
	ADDQ $2, DX
	DECQ CX
	JNZ out2loop

out2done:
	VZEROUPPER
	RET

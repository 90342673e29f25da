//go:build amd64 && !purego

package cpu

import (
	"golang.org/x/sys/cpu"
)

//go:generate go run gen_wino.go

// useAVX512 is whether the AVX-512 routines of this package (im2colRows,
// col2imAcc, winoIn, winoDyT, winoOut) run: the CPU and
// OS support AVX-512F, and ALEXCL_AVX512 is not off (which makes the device
// behave as on a CPU without it: Go loops here, the AVX2 GEMM kernel).
var useAVX512 = cpu.X86.HasAVX512F && !envOff("ALEXCL_AVX512")

// useAVX2 is whether the AVX2 routines (lrnFwd5AVX2, lrnBwd5AVX2,
// winoInAVX2, winoOutAVX2) can run.
var useAVX2 = cpu.X86.HasAVX2

// im2colRows writes one im2col row of output rows of up to 32 floats with
// masked AVX-512 loads and stores; see im2col_amd64.s.
//
//go:noescape
func im2colRows(dst, src *float32, off, oh0, oh1, oh, w, ow int, lmask, smask uint32)

// winoIn and winoOut are the Winograd input and output transforms of one
// channel plane whose tile rows fit a vector (tw ≤ 7); see wino_amd64.s.
//
//go:noescape
func winoIn(plane *float32, h, w, th, tw int, out *float32, es int)

//go:noescape
func winoOut(m *float32, es, th, tw int, y *float32, h, w int, b float32)

// col2imAcc adds the rows of one (channel, filter row) of col2im into the
// input gradient, a row at a time in registers; see im2col_amd64.s.
//
//go:noescape
func col2imAcc(dx *float32, rows, w int, src *float32, ld, ow, s, pad int, masks *[32]uint32)

// winoDyT is winoDy's transform of one plane whose tile rows fit a vector;
// see wino_amd64.s.
//
//go:noescape
func winoDyT(plane *float32, h, w, th, tw int, out *float32, es int)

// lrnFwd5AVX2 and lrnBwd5AVX2 are lrnFwd5Go and lrnBwd5Go on n (a
// multiple of 8) pixels, 8 at a time; see lrn_amd64.s.
//
//go:noescape
func lrnFwd5AVX2(n int, xc, xo, yo, so *float32, ring *[5]*float32, k, aos float32)

//go:noescape
func lrnBwd5AVX2(n int, dyc, yc, sc, dxc, xj, dxj *float32, ring *[5]*float32, coef float32)

// winoInAVX2 and winoOutAVX2 are winoIn and winoOut for planes whose tile
// rows fit 8 floats (tw ≤ 3), for CPUs without AVX-512; masks are the
// lanes to load and store (see wino_amd64.s).
//
//go:noescape
func winoInAVX2(plane *float32, h, w, th, tw int, out *float32, es int, masks *[2][8]int32)

//go:noescape
func winoOutAVX2(m *float32, es, th, tw int, y *float32, h, w int, b float32, masks *[2][8]int32)

// gatherStrided copies n floats src[0], src[stride], … into dst with
// AVX-512 gathers; see im2col_amd64.s.
//
//go:noescape
func gatherStrided(dst, src *float32, n, stride int)

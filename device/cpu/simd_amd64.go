//go:build amd64 && !purego

package cpu

import "golang.org/x/sys/cpu"

// hasMaskedRows is whether the AVX-512 routines of this package (im2colRows,
// lrnFwd5, lrnBwd5, winoIn, winoOut) can run: AVX-512F, with OS support.
var hasMaskedRows = cpu.X86.HasAVX512F

// im2colRows writes one im2col row of output rows of up to 32 floats with
// masked AVX-512 loads and stores; see im2col_amd64.s.
//
//go:noescape
func im2colRows(dst, src *float32, off, oh0, oh1, oh, w, ow int, lmask, smask uint32)

// lrnFwd5 and lrnBwd5 are lrnFwd5Go and lrnBwd5Go on n pixels, 16 at a
// time; see lrn_amd64.s.
//
//go:noescape
func lrnFwd5(n int, xc, xo, yo, so *float32, ring *[5]*float32, k, aos float32)

//go:noescape
func lrnBwd5(n int, dyc, yc, sc, dxc, xj, dxj *float32, ring *[5]*float32, coef float32)

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

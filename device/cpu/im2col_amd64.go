//go:build amd64 && !purego

package cpu

import "golang.org/x/sys/cpu"

// hasMaskedRows is whether im2colRows can run (AVX-512F, with OS support).
var hasMaskedRows = cpu.X86.HasAVX512F

// im2colRows writes one im2col row of output rows of up to 32 floats with
// masked AVX-512 loads and stores; see im2col_amd64.s.
//
//go:noescape
func im2colRows(dst, src *float32, off, oh0, oh1, oh, w, ow int, lmask, smask uint32)

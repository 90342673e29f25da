//go:build amd64 && !purego

package sgemm

import (
	"os"

	"golang.org/x/sys/cpu"
)

//go:generate go run gen_kernel.go

func init() {
	// x/sys/cpu reports AVX-512F and AVX2 only when the OS also saves the
	// wider registers on context switches. ALEXCL_AVX512=off hides
	// AVX-512, to measure or rule out that path.
	AVX512.ok = cpu.X86.HasAVX512F && os.Getenv("ALEXCL_AVX512") != "off"
	AVX512.tile, AVX512.copyRows = kernelAVX512, copy32
	AVX2.ok = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	AVX2.tile, AVX2.copyRows = kernelAVX2, copy16
	hasAVX = cpu.X86.HasAVX
}

//go:noescape
func kernelAVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernelAVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// transpose8 writes, for b in [0, blocks), the transposed 8×8 block at
// src[0:8, 8b:8b+8] (row stride lds) to dst[8b:8b+8, 0:8] (row stride ldd).
// It needs AVX.
//
//go:noescape
func transpose8(dst *float32, ldd int, src *float32, lds int, blocks int)

// transpose6 writes, for b in [0, blocks), the transposed 6×8 block at
// src[0:6, 8b:8b+8] (row stride lds) to dst[8b:8b+8, 0:6], packed. It
// needs AVX.
//
//go:noescape
func transpose6(dst *float32, src *float32, lds int, blocks int)

// copy32 and copy16 copy 32 (AVX-512) or 16 (AVX) floats from each of rows
// rows of src (row stride lds) into dst, packed.
//
//go:noescape
func copy32(dst, src *float32, lds int, rows int)

//go:noescape
func copy16(dst, src *float32, lds int, rows int)

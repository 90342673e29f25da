//go:build amd64 && !purego

package sgemm

import "golang.org/x/sys/cpu"

//go:noescape
func kernelAVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:generate go run gen_kernel.go

// hasAVX512 is whether the CPU and the OS support AVX-512F (the ZMM state
// is saved on context switches).
var hasAVX512 = cpu.X86.HasAVX512F

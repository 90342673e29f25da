//go:build !amd64 || purego

package sgemm

// No kernel is available off amd64 (or with the purego tag): every Kernel's
// ok stays false, and the CPU device uses its other GEMM paths.

func transpose8(dst *float32, ldd int, src *float32, lds int, blocks int) {
	panic("sgemm: no transpose kernel on this platform")
}

func transpose6(dst *float32, src *float32, lds int, blocks int) {
	panic("sgemm: no transpose kernel on this platform")
}

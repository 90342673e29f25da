//go:build !amd64 || purego

package sgemm

const hasAVX512 = false

func kernelAVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32) {
	panic("sgemm: no AVX-512 kernel on this platform")
}

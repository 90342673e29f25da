//go:build !amd64 || purego

package cpu

const hasMaskedRows = false

func im2colRows(dst, src *float32, off, oh0, oh1, oh, w, ow int, lmask, smask uint32) {
	panic("cpu: im2colRows needs AVX-512")
}

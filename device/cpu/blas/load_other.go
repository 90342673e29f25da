//go:build !(linux || darwin || freebsd || netbsd)

package blas

import (
	"fmt"
	"runtime"
)

// Supported reports whether this platform can load a BLAS library at all.
const Supported = false

func dlopen(path string) (uintptr, error) {
	return 0, fmt.Errorf("loading a BLAS library is not supported on %s", runtime.GOOS)
}

func dlsym(h uintptr, name string) uintptr { return 0 }

func callInts(fn uintptr, args ...uintptr) uintptr { return 0 }

func callSgemm(fn uintptr, f *Frame, a, b, c *float32) {}

func registerCBLAS(fptr *func(order, tA, tB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32), fn uintptr) {
}

func cstringFunc(h uintptr, name string) string { return "" }

//go:build linux || darwin || freebsd || netbsd

package blas

import (
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Supported reports whether this platform can load a BLAS library at all.
const Supported = true

func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

// dlsym returns the address of name in h, or 0 when it has none.
func dlsym(h uintptr, name string) uintptr {
	a, err := purego.Dlsym(h, name)
	if err != nil {
		return 0
	}
	return a
}

// callInts calls the C function fn with integer arguments only.
func callInts(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

// callSgemm calls sgemm_(transa, transb, m, n, k, alpha, a, lda, b, ldb,
// beta, c, ldc, len(transa), len(transb)): every argument is a pointer
// (f's fields, or the matrices), plus gfortran's two hidden string lengths.
//
// The argument list is built in f.args rather than in a variadic list, which
// would be allocated on every call. That hides the pointers from the
// compiler, so the objects are kept alive explicitly; they do not move
// during the call (Go's heap does not move, f escapes through args, and a
// goroutine's stack is not moved while it is in a C call).
func callSgemm(fn uintptr, f *Frame, a, b, c *float32) {
	f.args = [15]uintptr{
		uintptr(unsafe.Pointer(&f.ta)), uintptr(unsafe.Pointer(&f.tb)),
		uintptr(unsafe.Pointer(&f.m)), uintptr(unsafe.Pointer(&f.n)), uintptr(unsafe.Pointer(&f.k)),
		uintptr(unsafe.Pointer(&f.alpha)),
		uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&f.lda)),
		uintptr(unsafe.Pointer(b)), uintptr(unsafe.Pointer(&f.ldb)),
		uintptr(unsafe.Pointer(&f.beta)),
		uintptr(unsafe.Pointer(c)), uintptr(unsafe.Pointer(&f.ld)),
		1, 1,
	}
	purego.SyscallN(fn, f.args[:]...)
	runtime.KeepAlive(f)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
}

// registerCBLAS binds fptr to cblas_sgemm at fn. It mixes integer and float
// arguments, which SyscallN cannot pass, so it goes through RegisterFunc
// (which allocates a little per call).
func registerCBLAS(fptr *func(order, tA, tB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32), fn uintptr) {
	purego.RegisterFunc(fptr, fn)
}

// cstringFunc calls name, a C function of no arguments returning a
// NUL-terminated string, and returns the string ("" when h has no name).
func cstringFunc(h uintptr, name string) string {
	fn := dlsym(h, name)
	if fn == 0 {
		return ""
	}
	var get func() string
	purego.RegisterFunc(&get, fn)
	return get()
}

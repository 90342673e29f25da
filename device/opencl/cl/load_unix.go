//go:build linux || darwin || freebsd || netbsd

package cl

import (
	"runtime"

	"github.com/ebitengine/purego"
)

// libraryNames lists the files tried, in order, to find the OpenCL ICD loader.
func libraryNames() []string {
	if runtime.GOOS == "darwin" {
		return []string{"/System/Library/Frameworks/OpenCL.framework/OpenCL"}
	}
	return []string{"libOpenCL.so.1", "libOpenCL.so"}
}

func openLibrary(name string) (uintptr, error) {
	return purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func lookupSymbol(h uintptr, name string) (uintptr, error) {
	return purego.Dlsym(h, name)
}

// call calls the C function at fn with integer and pointer arguments and
// returns its integer result. go:uintptrescapes keeps the objects of
// pointers converted to uintptr in the argument list on the heap and alive
// for the duration of the call, as for syscall.Syscall.
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

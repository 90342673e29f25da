//go:build !(linux || darwin || freebsd || netbsd)

package cl

import (
	"fmt"
	"runtime"
)

func libraryNames() []string { return []string{"OpenCL"} }

func openLibrary(name string) (uintptr, error) {
	return 0, fmt.Errorf("the OpenCL binding does not support %s yet", runtime.GOOS)
}

func lookupSymbol(h uintptr, name string) (uintptr, error) {
	return 0, fmt.Errorf("the OpenCL binding does not support %s yet", runtime.GOOS)
}

// call is never reached: load fails first.
func call(fn uintptr, args ...uintptr) uintptr {
	panic("cl: OpenCL is not supported on " + runtime.GOOS)
}

package cl

import "runtime"

// Rules for Go memory handed to OpenCL in this package:
//
//   - A pointer converted to uintptr directly in call's argument list is
//     kept on the heap and alive for the call (call is go:uintptrescapes).
//   - A pointer computed earlier (arrays of sizes, of event ids, of pointers
//     to sources or binaries) points into memory pinned with runtime.Pinner
//     (which also forces it onto the heap) and unpinned after the call.
//   - OpenCL never keeps a pointer to Go memory past a call, except the host
//     pointer of a non-blocking read or write, which the caller keeps.

// pinnedUintptrs returns a slice of n uintptrs (size_t, pointers or handles)
// on the heap, pinned by pin so that its address may be passed to OpenCL.
func pinnedUintptrs(pin *runtime.Pinner, n int) []uintptr {
	s := make([]uintptr, n)
	pin.Pin(&s[0])
	return s
}

package cl

import (
	"fmt"
	"os"
	"sync"
)

// fns holds the address of every OpenCL entry point the binding calls.
var fns struct {
	GetPlatformIDs          uintptr
	GetPlatformInfo         uintptr
	GetDeviceIDs            uintptr
	GetDeviceInfo           uintptr
	CreateContext           uintptr
	ReleaseContext          uintptr
	CreateCommandQueue      uintptr
	ReleaseCommandQueue     uintptr
	Finish                  uintptr
	Flush                   uintptr
	CreateBuffer            uintptr
	ReleaseMemObject        uintptr
	EnqueueReadBuffer       uintptr
	EnqueueWriteBuffer      uintptr
	EnqueueCopyBuffer       uintptr
	EnqueueFillBuffer       uintptr
	CreateProgramWithSource uintptr
	CreateProgramWithBinary uintptr
	BuildProgram            uintptr
	GetProgramInfo          uintptr
	GetProgramBuildInfo     uintptr
	ReleaseProgram          uintptr
	CreateKernel            uintptr
	CreateKernelsInProgram  uintptr
	GetKernelInfo           uintptr
	GetKernelWorkGroupInfo  uintptr
	SetKernelArg            uintptr
	ReleaseKernel           uintptr
	EnqueueNDRangeKernel    uintptr
	WaitForEvents           uintptr
	GetEventInfo            uintptr
	GetEventProfilingInfo   uintptr
	RetainEvent             uintptr
	ReleaseEvent            uintptr
}

// symbols pairs each entry point with the field that receives its address.
func symbols() []struct {
	name string
	addr *uintptr
} {
	return []struct {
		name string
		addr *uintptr
	}{
		{"clGetPlatformIDs", &fns.GetPlatformIDs},
		{"clGetPlatformInfo", &fns.GetPlatformInfo},
		{"clGetDeviceIDs", &fns.GetDeviceIDs},
		{"clGetDeviceInfo", &fns.GetDeviceInfo},
		{"clCreateContext", &fns.CreateContext},
		{"clReleaseContext", &fns.ReleaseContext},
		{"clCreateCommandQueue", &fns.CreateCommandQueue},
		{"clReleaseCommandQueue", &fns.ReleaseCommandQueue},
		{"clFinish", &fns.Finish},
		{"clFlush", &fns.Flush},
		{"clCreateBuffer", &fns.CreateBuffer},
		{"clReleaseMemObject", &fns.ReleaseMemObject},
		{"clEnqueueReadBuffer", &fns.EnqueueReadBuffer},
		{"clEnqueueWriteBuffer", &fns.EnqueueWriteBuffer},
		{"clEnqueueCopyBuffer", &fns.EnqueueCopyBuffer},
		{"clEnqueueFillBuffer", &fns.EnqueueFillBuffer},
		{"clCreateProgramWithSource", &fns.CreateProgramWithSource},
		{"clCreateProgramWithBinary", &fns.CreateProgramWithBinary},
		{"clBuildProgram", &fns.BuildProgram},
		{"clGetProgramInfo", &fns.GetProgramInfo},
		{"clGetProgramBuildInfo", &fns.GetProgramBuildInfo},
		{"clReleaseProgram", &fns.ReleaseProgram},
		{"clCreateKernel", &fns.CreateKernel},
		{"clCreateKernelsInProgram", &fns.CreateKernelsInProgram},
		{"clGetKernelInfo", &fns.GetKernelInfo},
		{"clGetKernelWorkGroupInfo", &fns.GetKernelWorkGroupInfo},
		{"clSetKernelArg", &fns.SetKernelArg},
		{"clReleaseKernel", &fns.ReleaseKernel},
		{"clEnqueueNDRangeKernel", &fns.EnqueueNDRangeKernel},
		{"clWaitForEvents", &fns.WaitForEvents},
		{"clGetEventInfo", &fns.GetEventInfo},
		{"clGetEventProfilingInfo", &fns.GetEventProfilingInfo},
		{"clRetainEvent", &fns.RetainEvent},
		{"clReleaseEvent", &fns.ReleaseEvent},
	}
}

var (
	loadOnce   sync.Once
	loadErr    error
	loadedFrom string
)

// load opens the OpenCL library once and resolves every entry point. It
// returns an error wrapping ErrNoRuntime when that fails; it never panics.
func load() error {
	loadOnce.Do(func() {
		names := libraryNames()
		if env := os.Getenv("ALEXCL_OPENCL_LIBRARY"); env != "" {
			names = []string{env}
		}
		var firstErr error
		for _, name := range names {
			h, err := openLibrary(name)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			for _, s := range symbols() {
				addr, err := lookupSymbol(h, s.name)
				if err != nil || addr == 0 {
					loadErr = fmt.Errorf("%w: %s has no %s (an OpenCL 1.2 loader is needed): %v", ErrNoRuntime, name, s.name, err)
					return
				}
				*s.addr = addr
			}
			loadedFrom = name
			return
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("no library to try on this system")
		}
		loadErr = fmt.Errorf("%w: loading %s: %v", ErrNoRuntime, names[0], firstErr)
	})
	return loadErr
}

// Library reports the file name of the OpenCL library the binding loaded,
// loading it if needed.
func Library() (string, error) {
	if err := load(); err != nil {
		return "", err
	}
	return loadedFrom, nil
}

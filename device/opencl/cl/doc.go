// Package cl is a thin binding to OpenCL 1.2, just large enough for alexcl.
//
// It loads the ICD loader (libOpenCL.so.1 on Linux) at run time with
// github.com/ebitengine/purego, so alexcl builds with CGO_ENABLED=0 and runs
// on machines without any OpenCL runtime: there, GetPlatforms returns an
// error (wrapping ErrNoRuntime) instead of the program failing at start.
// ALEXCL_OPENCL_LIBRARY names another library file to load.
//
// The API follows the shape of github.com/jgillich/go-opencl (GetPlatforms,
// Platform.GetDevices, CreateContext, Context.CreateCommandQueue,
// CreateProgramWithSource, Program.BuildProgram, Program.CreateKernel,
// Kernel.SetArgs, CommandQueue.EnqueueNDRangeKernel, ...) so that swapping one
// for the other is mechanical. Differences: objects are released explicitly
// with Release (no finalizers), and every error is an *Error that names the
// OpenCL call and the status, e.g.
//
//	clEnqueueNDRangeKernel: CL_OUT_OF_RESOURCES (-5)
//
// errors.Is(err, cl.OutOfResources) tests for a status.
//
// Memory passed to OpenCL: host pointers given to Enqueue{Read,Write}Buffer
// must stay valid until the command completes, which for blocking calls is
// when the call returns; for non-blocking calls the caller keeps the memory
// alive (and, if it is Go memory, pinned with runtime.Pinner) until the
// returned event completes. Every other pointer the binding passes is used by
// OpenCL only during the call.
package cl

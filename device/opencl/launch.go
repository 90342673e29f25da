package opencl

// This file fixes the internal contract between the device infrastructure
// (device.go: context, queue, program, buffers) and the op methods (ops.go).
//
// launch queues kernel `name` (a kernel of the program built from
// clkernels.Sources) over an NDRange of global work items, with work-group
// size local (nil lets the driver choose; otherwise len(local)==len(global)
// and global[i] is rounded up by the caller to a multiple of local[i]).
// args are set in order; each is one of:
//
//	device.Buffer  (allocated by this Device)  -> __global pointer
//	int            -> int (cl_int; out-of-range values are an error)
//	int32, uint32  -> int / uint
//	float32        -> float
//	Local(n)       -> __local memory of n bytes
//
// launch never waits for the kernel to finish; errors from setting
// arguments or queueing (CL_INVALID_WORK_GROUP_SIZE, ...) are returned with
// the kernel name and the OpenCL status name.
//
//	func (d *Device) launch(name string, global, local []int, args ...any) error

// Local asks launch for a __local memory argument of the given bytes.
type Local int

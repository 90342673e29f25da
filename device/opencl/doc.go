// Package opencl runs alexcl's device.Device on any OpenCL 1.2 device: an
// NVIDIA, AMD or Intel GPU, or a CPU through POCL. It loads the OpenCL
// runtime at run time (package cl), so a machine without one still runs
// alexcl on the pure-Go CPU device.
//
// One Device holds one context and one in-order command queue (profiling
// enabled) on one OpenCL device, and the program built once from
// clkernels.Sources with the -D tunables of Options. Ops are queued and
// return at once; Read and Sync wait (see device/doc.go).
//
// Compiled program binaries are cached under
// os.UserCacheDir()/alexcl/kernels, keyed by a SHA-256 of the sources, the
// build options, the platform, device and driver, and alexcl's version.
// ALEXCL_KERNEL_CACHE=off disables the cache; ALEXCL_KERNEL_CACHE_DIR moves it.
//
// Devices are numbered over all platforms in order: cl0, cl1, ... (List).
package opencl

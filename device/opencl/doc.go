// Package opencl runs alexcl's device.Device on any OpenCL 1.2 device: an
// NVIDIA, AMD or Intel GPU, or a CPU through POCL. It loads the OpenCL
// runtime at run time (package cl), so a machine without one still runs
// alexcl on the pure-Go CPU device.
//
// One Device holds one context and one in-order command queue (profiling
// enabled) on one OpenCL device, and the program built once from
// clkernels.Sources with the -D tunables of Options. Ops are queued and
// return at once; Read and Sync wait (see device/doc.go). WriteAsync
// (device.AsyncWriter) copies on a second in-order queue, and the compute
// queue's next command waits for the copy's event, so the next batch
// uploads while the current step computes.
//
// Compiled program binaries are cached under
// os.UserCacheDir()/alexcl/kernels, keyed by a SHA-256 of the sources, the
// build options, the platform, device and driver, and alexcl's version.
// ALEXCL_KERNEL_CACHE=off disables the cache; ALEXCL_KERNEL_CACHE_DIR moves it.
// A program the driver's compiler rejects fails Open with the build log,
// unless only wino.cl (the Winograd convolutions, an optional path) is at
// fault: then the program is built without it, Options.Logf says why, and
// every convolution takes its usual path (program.go, optionalSources);
// a Winograd define the user set to anything but off still fails Open.
//
// With Options.Tune (or ALEXCL_TUNE=on), the first Open of a device
// autotunes its -D tunables before building the program: it times a few
// candidate GEMM kernel families and tiles (and, where a GPU family wins,
// the forward convolution's tiles; then, op by op, Winograd F(2×2, 3×3)
// and F(2×2, 5×5) against the usual path for 3×3 and 5×5 convolutions,
// then F(4×4, 3×3) and F(3×3, 5×5) against the op's winner, wino.go and
// tune_paths.go, and on GPUs the implicit data gradient) on AlexNet-like
// shapes with profiling events, checks every candidate's results against
// device/ref, and keeps the fastest, within about 15 s of timing on a GPU
// (the candidates' builds come on top: 37 s in all on an H200) and 20 s
// under POCL. Where the chosen GEMM tiles are larger than 64×64 it also
// keeps the fastest set of at most 64×64, which Open builds beside the
// program and the products that the large tiles would pad most run on
// (gemmset.go; ALEXCL_CL_LEGACY=small builds one set only).
// The choice is saved as tune-<key>.json beside the kernel binaries (same
// key ingredients) and read by later Opens; a corrupt or stale record is
// re-tuned. ALEXCL_TUNE=off keeps the vendor defaults (the kernel family
// chosen by device type, the .cl files' default tiles), ALEXCL_TUNE=force
// re-tunes, and Options.Defines that set a tuned name turn tuning off,
// except those of the convolutions' paths (CONV_WINO, CONV_WINO43,
// CONV_WINO5, CONV_WINO35, CONV_BWDATA), which override the tuner's choice
// of that path only, and the small GEMM set's (GEMMS_*), which replace the
// tuned set as a whole.
// With tuning on and no path set by the user, the paths are then chosen
// again per layer shape, at each shape's first use: every path that can
// take the op is checked against the usual one and timed on the layer's
// own shape, and the fastest is kept in paths-<key>-<tunables>.json beside the
// tuning record, which later Opens read (shapes.go; ALEXCL_CL_LEGACY=shapes
// keeps the tuner's choice per filter size instead).
// Tunables reports what the device runs with, ConvPaths the paths chosen
// per shape.
//
// Devices are numbered over all platforms in order: cl0, cl1, ... (List).
package opencl

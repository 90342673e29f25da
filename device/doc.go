// Package device is the interface between alexcl's model code and the
// hardware that runs it: buffers and the kernels a training step needs.
//
// Two implementations exist: device/cpu (pure Go, parallel over cores) and
// device/opencl (any OpenCL 1.2 device, kernels from package clkernels).
// The model code never asks which one it has.
//
// # Contract
//
// Every Device implementation keeps these rules; device/devicetest checks them.
//
// Ownership. A Buffer belongs to the Device that allocated it and is freed
// exactly once, by Free or by Close. Using a freed buffer returns an error
// wrapping ErrFreed; passing a buffer of another device is an error. Host
// slices passed to Write and Read are only used during the call.
//
// Layout. Buffers hold float32 elements (int32 for labels, pooling indices and
// ranks) in row-major order; images are NCHW. The dimension letters are the
// same everywhere: N batch, C input channels, H, W input size, K output
// channels, R, S filter size, OH, OW output size.
//
// Sizes. Every op checks that each buffer is large enough for the shape it
// is given and returns an error naming the op, the buffer and both sizes
// before anything is queued. Zero-size allocations are an error.
//
// Asynchrony. Ops and Copy/Fill may be queued and return before the work is
// done (the OpenCL device does; the CPU device runs them at once). Work runs
// in the order it was queued. Write returns once src may be reused. Read and
// Sync wait for all earlier work. An error raised while queued work runs (an
// out-of-resources on the GPU, say) is reported by the next Read or Sync.
// A label outside [0, classes) given to SoftmaxCrossEntropy is such an
// error: the CPU device returns it from the op; the OpenCL device does not
// read labels back, so it writes a NaN loss for that sample and reports the
// error, once, from the next Read or Sync.
//
// Gradients. Ops that produce gradients of parameters (Conv2DBackwardFilter's
// dw and db, BiasGrad's db) accumulate: they add to what the buffer holds,
// so the caller zeroes them (Fill 0) at the start of a step, as PyTorch's
// zero_grad does. Ops that produce gradients of activations (dx of every
// backward) overwrite. Every op is deterministic: the same inputs give the
// same bits on the same device, run after run; no op needs atomics.
//
// Randomness. Dropout masks come from Philox4x32-10 keyed by DropoutKey and
// the element index (see DropoutKeep), so every device draws the same mask.
package device

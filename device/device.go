package device

import (
	"errors"
	"fmt"
)

// Buffer is a block of device memory. Sizes and offsets are in bytes; the
// ops read and write it as float32 (or int32 where an op says so), 4 bytes
// an element, in row-major order. A Buffer belongs to the Device that
// allocated it and must only be passed to that Device.
type Buffer interface {
	// Size is the size in bytes the buffer was allocated with.
	Size() int
}

// Info describes a device for `alexcl list-devices` and for error messages.
type Info struct {
	ID           string `json:"id"`       // what a user types: cpu, gpu0, cl1, ...
	Name         string `json:"name"`     // e.g. "NVIDIA H200"
	Vendor       string `json:"vendor"`   // e.g. "NVIDIA Corporation"
	Platform     string `json:"platform"` // OpenCL platform name; "Go" for the CPU device
	Type         string `json:"type"`     // "GPU", "CPU", "ACCELERATOR", ...
	ComputeUnits int    `json:"compute_units"`
	ClockMHz     int    `json:"clock_mhz"`
	GlobalMem    int64  `json:"global_mem_bytes"`
	MaxAlloc     int64  `json:"max_alloc_bytes"`
	LocalMem     int64  `json:"local_mem_bytes"`
	CVersion     string `json:"opencl_c_version,omitempty"`
	Driver       string `json:"driver_version,omitempty"`
	FP16         bool   `json:"fp16"`
	FP64         bool   `json:"fp64"`
}

// MemStats is the device memory alloc/free accounting of one Device.
type MemStats struct {
	InUse   int64 // bytes allocated and not yet freed
	Peak    int64 // largest InUse seen
	Buffers int   // live buffers
}

// ConvShape describes a 2-D convolution, as torch.nn.Conv2d with a square
// stride and symmetric zero padding. Groups splits C and K into Groups
// independent towers (AlexNet's two GPUs are Groups=2).
//
//	x  is (N, C, H, W)
//	w  is (K, C/Groups, R, S)
//	b  is (K)
//	y  is (N, K, OH, OW)
type ConvShape struct {
	N, C, H, W int // input
	K, R, S    int // output channels, filter height and width
	Stride     int
	Pad        int
	Groups     int
}

// OH is the output height.
func (s ConvShape) OH() int { return (s.H+2*s.Pad-s.R)/s.Stride + 1 }

// OW is the output width.
func (s ConvShape) OW() int { return (s.W+2*s.Pad-s.S)/s.Stride + 1 }

// Validate reports whether the shape describes a convolution that can be
// computed, and why not.
func (s ConvShape) Validate() error {
	switch {
	case s.N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.K < 1 || s.R < 1 || s.S < 1:
		return fmt.Errorf("conv shape %+v: sizes must be positive", s)
	case s.Stride < 1 || s.Pad < 0 || s.Groups < 1:
		return fmt.Errorf("conv shape %+v: stride and groups must be >= 1, pad >= 0", s)
	case s.C%s.Groups != 0 || s.K%s.Groups != 0:
		return fmt.Errorf("conv shape %+v: C=%d and K=%d must be divisible by groups=%d", s, s.C, s.K, s.Groups)
	case s.H+2*s.Pad < s.R || s.W+2*s.Pad < s.S:
		return fmt.Errorf("conv shape %+v: %dx%d filter larger than padded %dx%d input", s, s.R, s.S, s.H+2*s.Pad, s.W+2*s.Pad)
	}
	return nil
}

// PoolShape describes max pooling with a Size×Size window moved by Stride,
// no padding (AlexNet's overlapping pool is Size=3, Stride=2).
//
//	x   is (N, C, H, W)
//	y   is (N, C, OH, OW)
//	idx is (N, C, OH, OW) int32: h*W+w of the window's first maximum
type PoolShape struct {
	N, C, H, W   int
	Size, Stride int
}

// OH is the output height.
func (s PoolShape) OH() int { return (s.H-s.Size)/s.Stride + 1 }

// OW is the output width.
func (s PoolShape) OW() int { return (s.W-s.Size)/s.Stride + 1 }

// Validate reports whether the shape can be pooled, and why not.
func (s PoolShape) Validate() error {
	if s.N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.Size < 1 || s.Stride < 1 {
		return fmt.Errorf("pool shape %+v: sizes must be positive", s)
	}
	if s.H < s.Size || s.W < s.Size {
		return fmt.Errorf("pool shape %+v: %dx%d window larger than %dx%d input", s, s.Size, s.Size, s.H, s.W)
	}
	return nil
}

// LRNShape describes local response normalisation across channels, as
// torch.nn.LocalResponseNorm:
//
//	y[c] = x[c] / (K + Alpha/Size * Σ x[c']²)^Beta,  c' in [c-Size/2, c+(Size-1)/2]
//
// The paper writes the same formula with α applied to the plain sum, so its
// α=1e-4 with n=5 corresponds to Alpha=5e-4 here; alexcl follows PyTorch and
// uses Alpha=1e-4 as the reference module does.
//
//	x, y, scale are (N, C, H, W); scale holds K + Alpha/Size * Σ x²
type LRNShape struct {
	N, C, H, W int
	Size       int
	Alpha      float32
	Beta       float32
	K          float32
}

// Validate reports whether the parameters are usable, and why not.
func (s LRNShape) Validate() error {
	if s.N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.Size < 1 {
		return fmt.Errorf("lrn shape %+v: sizes must be positive", s)
	}
	if s.K <= 0 {
		return fmt.Errorf("lrn shape %+v: k must be > 0", s)
	}
	return nil
}

// DropoutKey selects one dropout mask. The mask of element i is a pure
// function of (Seed, Step, Layer, i) through Philox4x32-10, so every device
// draws the same mask and the backward pass recomputes it instead of storing it.
type DropoutKey struct {
	Seed  uint64
	Step  uint64
	Layer uint32
}

// SGDParams is the paper's update rule with weight decay:
//
//	v ← Momentum·v − WeightDecay·LR·w − LR·g
//	w ← w + v
type SGDParams struct {
	LR, Momentum, WeightDecay float32
}

// AsyncWriter is implemented by devices that can copy host data into a
// buffer while earlier work still runs: the OpenCL device copies on a second
// queue, so a GPU's copy engine uploads the next batch during the current
// step. Devices without it (the CPU device) are served by Write.
type AsyncWriter interface {
	// WriteAsync starts copying src into dst at byte offset off and
	// returns without waiting for the copy or for earlier work. Work
	// queued after the call sees the new bytes; work queued before it
	// must not use dst (callers alternate between two buffers). src must
	// not change until the Transfer's Wait returns.
	WriteAsync(dst Buffer, off int, src []byte) (Transfer, error)
}

// Transfer is a copy started by WriteAsync.
type Transfer interface {
	// Wait blocks until the copy has finished, so that its source may be
	// reused, and reports an error it raised. Later calls return the same.
	Wait() error
}

// Device runs alexcl's ops on one piece of hardware. See doc.go for the
// contract every implementation keeps.
type Device interface {
	// Info describes the device.
	Info() Info
	// Close releases every buffer and the device itself.
	Close() error

	// Alloc returns a buffer of size bytes (size > 0). Its contents are undefined.
	Alloc(size int) (Buffer, error)
	// Free releases b. Using b afterwards is an error.
	Free(b Buffer) error
	// Write copies src into dst at byte offset off. src may be reused on return.
	Write(dst Buffer, off int, src []byte) error
	// Read copies len(dst) bytes from src at byte offset off into dst. It
	// waits for all earlier work and reports any error that work raised.
	Read(src Buffer, off int, dst []byte) error
	// Copy copies n bytes from src at srcOff to dst at dstOff on the device.
	Copy(dst Buffer, dstOff int, src Buffer, srcOff int, n int) error
	// Fill sets every float32 element of b to v.
	Fill(b Buffer, v float32) error
	// Sync waits until all queued work has finished and reports the first
	// error it raised.
	Sync() error
	// MemStats reports allocation accounting.
	MemStats() MemStats

	// Gemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices,
	// op(A) is M×K, op(B) is K×N and C is M×N; op transposes when tA/tB is set.
	// A is (M, K) or, transposed, (K, M); likewise B is (K, N) or (N, K).
	Gemm(tA, tB bool, M, N, K int, alpha float32, A, B Buffer, beta float32, C Buffer) error
	// AddBias adds b (cols) to every row of y (rows, cols).
	AddBias(y, b Buffer, rows, cols int) error
	// BiasGrad accumulates db (cols) += Σ_rows dy (rows, cols).
	BiasGrad(dy, db Buffer, rows, cols int) error

	// Conv2DForward computes y = conv(x, w) + b.
	Conv2DForward(x, w, b, y Buffer, s ConvShape) error
	// Conv2DBackwardData overwrites dx (N, C, H, W) with the gradient w.r.t. x.
	Conv2DBackwardData(dy, w, dx Buffer, s ConvShape) error
	// Conv2DBackwardFilter accumulates dw += ∂L/∂w and db += ∂L/∂b.
	Conv2DBackwardFilter(x, dy, dw, db Buffer, s ConvShape) error

	// ReLUForward sets y = max(x, 0) over n elements; x and y may be the same buffer.
	ReLUForward(x, y Buffer, n int) error
	// ReLUBackward overwrites dx = dy where y > 0, else 0; dy and dx may be the same buffer.
	ReLUBackward(y, dy, dx Buffer, n int) error

	// MaxPoolForward writes y and, into idx (int32), the position h*W+w of
	// each window's first maximum in row-major window order.
	MaxPoolForward(x, y, idx Buffer, s PoolShape) error
	// MaxPoolBackward overwrites dx (N, C, H, W) by routing each dy to idx.
	MaxPoolBackward(idx, dy, dx Buffer, s PoolShape) error

	// LRNForward writes y and scale (kept for the backward pass).
	LRNForward(x, y, scale Buffer, s LRNShape) error
	// LRNBackward overwrites dx with the gradient w.r.t. x; dx must not be
	// x, y, scale or dy.
	LRNBackward(x, y, scale, dy, dx Buffer, s LRNShape) error

	// DropoutForward sets y = x·mask/(1−p) over n elements, mask drawn from key;
	// x and y may be the same buffer. p must be in [0, 1).
	DropoutForward(x, y Buffer, n int, p float32, key DropoutKey) error
	// DropoutBackward overwrites dx = dy·mask/(1−p) with the same mask.
	DropoutBackward(dy, dx Buffer, n int, p float32, key DropoutKey) error

	// SoftmaxCrossEntropy takes logits (N, classes) and labels (N) int32 and
	// writes loss (N) per-sample cross-entropy, rank (N) int32 the number of
	// classes ranked above the label (rank < 1: top-1 hit, rank < 5: top-5 hit;
	// ties go to the lower class index; a NaN logit ranks above the label,
	// and a NaN label logit gives rank = classes, so that weights gone to
	// NaN never score a hit), and dlogits (N, classes) the gradient
	// of the batch mean loss, (softmax − onehot)/N. dlogits may be nil.
	SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits Buffer, n, classes int) error

	// SGDUpdate applies one SGDParams step to w (n) with gradient g and velocity v.
	SGDUpdate(w, g, v Buffer, n int, p SGDParams) error
}

// ErrFreed is returned when a freed buffer is used.
var ErrFreed = errors.New("buffer already freed")

package opencl

// This file holds the op methods of device.Device: each validates its shape
// and every buffer's size (errors name the op, before anything is queued),
// then queues one or two kernels of clkernels through d.launch. Zero-size
// work is a no-op. The kernels, their buffer shapes and their tunables are
// described in the header comment of each clkernels/*.cl file.
//
// Work-group sizes. Elementwise and gather kernels use 1-D groups of
// elemWG work items with the global size rounded up (the kernels guard
// i >= n). 128 is legal on every OpenCL GPU and CPU alexcl targets (NVIDIA,
// AMD, Intel allow at least 256; POCL's CPU device thousands) and leaves
// room for register-heavy kernels where a driver lowers the per-kernel
// limit. gemm, conv2d_forward, conv2d_backward_bias and
// softmax_cross_entropy declare reqd_work_group_size from their -D
// tunables; ops.go reads the same tunables from Options.Defines (falling
// back to the .cl defaults) and launches with exactly that size.
// Their defaults give 256 work items (16 x 16) for the tiled kernels.

import (
	"fmt"
	"math"
	"strconv"

	"github.com/alexcl/alexcl/device"
)

const elemWG = 128 // 1-D work-group size of elementwise and gather kernels

// tiling is the register-blocked tiling of gemm (GEMM_*) and conv2d_forward
// (CONV_*): a work-group computes a TSM x TSN tile with (TSM/WPTM) x
// (TSN/WPTN) work items.
type tiling struct{ TSM, TSN, WPTM, WPTN int }

// tunable returns the -D value of name from Options.Defines, or def when it
// is not set (or not an integer, which the compiler would reject anyway).
func (d *Device) tunable(name string, def int) int {
	if v, err := strconv.Atoi(d.opts.Defines[name]); err == nil && v > 0 {
		return v
	}
	return def
}

// tilingOf returns the tiling a kernel was built with; prefix is "GEMM" or
// "CONV", and the defaults are those of gemm.cl and conv.cl.
func (d *Device) tilingOf(prefix string) tiling {
	return tiling{
		TSM:  d.tunable(prefix+"_TSM", 64),
		TSN:  d.tunable(prefix+"_TSN", 64),
		WPTM: d.tunable(prefix+"_WPTM", 4),
		WPTN: d.tunable(prefix+"_WPTN", 4),
	}
}

// ndrange returns the 2-D global and local sizes covering an m x n output.
func (t tiling) ndrange(m, n int) (global, local []int) {
	return []int{ceilMul(n, t.TSN) / t.WPTN, ceilMul(m, t.TSM) / t.WPTM},
		[]int{t.TSN / t.WPTN, t.TSM / t.WPTM}
}

var _ device.Device = (*Device)(nil)

// ceilMul rounds n up to a multiple of m.
func ceilMul(n, m int) int { return (n + m - 1) / m * m }

// launch1D queues kernel over n work items in groups of elemWG.
func (d *Device) launch1D(kernel string, n int, args ...any) error {
	return d.launch(kernel, []int{ceilMul(n, elemWG)}, []int{elemWG}, args...)
}

// checkElems returns an error naming op when a count is negative or an
// element count is too large for the kernels' int indexing. counts are
// name, value pairs.
func checkElems(op string, counts ...any) error {
	for i := 0; i+1 < len(counts); i += 2 {
		name, v := counts[i].(string), counts[i+1].(int)
		if v < 0 {
			return fmt.Errorf("%s: %s = %d must not be negative", op, name, v)
		}
		if v > math.MaxInt32 {
			return fmt.Errorf("%s: %s = %d elements is more than the OpenCL kernels index (%d)", op, name, v, math.MaxInt32)
		}
	}
	return nil
}

// mulSat multiplies non-negative sizes, saturating above MaxInt32 so that
// checkElems reports the overflow instead of a wrapped product.
func mulSat(xs ...int) int {
	p := 1
	for _, x := range xs {
		if x < 0 {
			return -1
		}
		if x != 0 && p > math.MaxInt32/x {
			return math.MaxInt32 + 1
		}
		p *= x
	}
	return p
}

// checkBufs runs device.CheckBuf over name, buffer, elems triples.
func checkBufs(op string, bufs ...any) error {
	for i := 0; i+2 < len(bufs); i += 3 {
		b, _ := bufs[i+1].(device.Buffer)
		if err := device.CheckBuf(op, bufs[i].(string), b, bufs[i+2].(int)); err != nil {
			return err
		}
	}
	return nil
}

// Gemm computes C = alpha·op(A)·op(B) + beta·C (gemm.cl).
func (d *Device) Gemm(tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error {
	const op = "Gemm"
	if err := checkElems(op, "M", M, "N", N, "K", K,
		"A", mulSat(M, K), "B", mulSat(K, N), "C", mulSat(M, N)); err != nil {
		return err
	}
	if M == 0 || N == 0 {
		return nil
	}
	if err := device.CheckBuf(op, "C", C, M*N); err != nil {
		return err
	}
	if K == 0 {
		// op(A)·op(B) is zero; A and B are not read and may be nil.
		A, B = C, C
	} else if err := checkBufs(op, "A", A, M*K, "B", B, K*N); err != nil {
		return err
	}
	global, local := d.tilingOf("GEMM").ndrange(M, N)
	return d.launch("gemm", global, local,
		b2i(tA), b2i(tB), M, N, K, alpha, A, B, beta, C)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AddBias adds b (cols) to every row of y (rows, cols) (bias.cl).
func (d *Device) AddBias(y, b device.Buffer, rows, cols int) error {
	const op = "AddBias"
	if err := checkElems(op, "rows", rows, "cols", cols, "y", mulSat(rows, cols)); err != nil {
		return err
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	if err := checkBufs(op, "y", y, rows*cols, "b", b, cols); err != nil {
		return err
	}
	return d.launch1D("add_bias", rows*cols, y, b, rows, cols)
}

// BiasGrad accumulates db (cols) += Σ_rows dy (rows, cols) (bias.cl).
func (d *Device) BiasGrad(dy, db device.Buffer, rows, cols int) error {
	const op = "BiasGrad"
	if err := checkElems(op, "rows", rows, "cols", cols, "dy", mulSat(rows, cols)); err != nil {
		return err
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	if err := checkBufs(op, "dy", dy, rows*cols, "db", db, cols); err != nil {
		return err
	}
	return d.launch1D("bias_grad", cols, dy, db, rows, cols)
}

// convSizes validates s and returns the element counts of x, w, y.
func convSizes(op string, s device.ConvShape) (nx, nw, ny int, err error) {
	if err := s.Validate(); err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	nx = mulSat(s.N, s.C, s.H, s.W)
	nw = mulSat(s.K, s.C/s.Groups, s.R, s.S)
	ny = mulSat(s.N, s.K, s.OH(), s.OW())
	return nx, nw, ny, checkElems(op, "x", nx, "w", nw, "y", ny)
}

// convArgs are the shape arguments every conv.cl kernel ends with.
func convArgs(s device.ConvShape) []any {
	return []any{s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.Stride, s.Pad, s.Groups, s.OH(), s.OW()}
}

// Conv2DForward computes y = conv(x, w) + b (conv.cl).
func (d *Device) Conv2DForward(x, w, b, y device.Buffer, s device.ConvShape) error {
	const op = "Conv2DForward"
	nx, nw, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, nx, "w", w, nw, "b", b, s.K, "y", y, ny); err != nil {
		return err
	}
	// Implicit GEMM per group: rows Kg output channels, columns N*OH*OW.
	global, local := d.tilingOf("CONV").ndrange(s.K/s.Groups, s.N*s.OH()*s.OW())
	global, local = append(global, s.Groups), append(local, 1)
	return d.launch("conv2d_forward", global, local, append([]any{x, w, b, y}, convArgs(s)...)...)
}

// Conv2DBackwardData overwrites dx (N, C, H, W) with ∂L/∂x (conv.cl).
func (d *Device) Conv2DBackwardData(dy, w, dx device.Buffer, s device.ConvShape) error {
	const op = "Conv2DBackwardData"
	nx, nw, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "dy", dy, ny, "w", w, nw, "dx", dx, nx); err != nil {
		return err
	}
	return d.launch1D("conv2d_backward_data", nx, append([]any{dy, w, dx}, convArgs(s)...)...)
}

// Conv2DBackwardFilter accumulates dw += ∂L/∂w and db += ∂L/∂b (conv.cl:
// conv2d_backward_filter, then conv2d_backward_bias).
func (d *Device) Conv2DBackwardFilter(x, dy, dw, db device.Buffer, s device.ConvShape) error {
	const op = "Conv2DBackwardFilter"
	nx, nw, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, nx, "dy", dy, ny, "dw", dw, nw, "db", db, s.K); err != nil {
		return err
	}
	if err := d.launch1D("conv2d_backward_filter", nw, append([]any{x, dy, dw}, convArgs(s)...)...); err != nil {
		return err
	}
	wg := d.tunable("CONV_BIAS_WG", 256)
	return d.launch("conv2d_backward_bias", []int{s.K * wg}, []int{wg},
		dy, db, s.N, s.K, s.OH(), s.OW())
}

// ReLUForward sets y = max(x, 0) over n elements (relu.cl).
func (d *Device) ReLUForward(x, y device.Buffer, n int) error {
	const op = "ReLUForward"
	if err := checkElems(op, "n", n); err != nil || n == 0 {
		return err
	}
	if err := checkBufs(op, "x", x, n, "y", y, n); err != nil {
		return err
	}
	return d.launch1D("relu_forward", n, x, y, n)
}

// ReLUBackward overwrites dx = dy where y > 0, else 0 (relu.cl).
func (d *Device) ReLUBackward(y, dy, dx device.Buffer, n int) error {
	const op = "ReLUBackward"
	if err := checkElems(op, "n", n); err != nil || n == 0 {
		return err
	}
	if err := checkBufs(op, "y", y, n, "dy", dy, n, "dx", dx, n); err != nil {
		return err
	}
	return d.launch1D("relu_backward", n, y, dy, dx, n)
}

// poolSizes validates s and returns the element counts of x and y.
func poolSizes(op string, s device.PoolShape) (nx, ny int, err error) {
	if err := s.Validate(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	nx = mulSat(s.N, s.C, s.H, s.W)
	ny = mulSat(s.N, s.C, s.OH(), s.OW())
	return nx, ny, checkElems(op, "x", nx, "y", ny)
}

// MaxPoolForward writes y and the first-maximum positions idx (pool.cl).
func (d *Device) MaxPoolForward(x, y, idx device.Buffer, s device.PoolShape) error {
	const op = "MaxPoolForward"
	nx, ny, err := poolSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, nx, "y", y, ny, "idx", idx, ny); err != nil {
		return err
	}
	return d.launch1D("max_pool_forward", ny, x, y, idx,
		s.N, s.C, s.H, s.W, s.Size, s.Stride, s.OH(), s.OW())
}

// MaxPoolBackward overwrites dx by routing each dy to its idx (pool.cl).
func (d *Device) MaxPoolBackward(idx, dy, dx device.Buffer, s device.PoolShape) error {
	const op = "MaxPoolBackward"
	nx, ny, err := poolSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "idx", idx, ny, "dy", dy, ny, "dx", dx, nx); err != nil {
		return err
	}
	return d.launch1D("max_pool_backward", nx, idx, dy, dx,
		s.N, s.C, s.H, s.W, s.Size, s.Stride, s.OH(), s.OW())
}

// lrnSize validates s and returns the element count of x.
func lrnSize(op string, s device.LRNShape) (int, error) {
	if err := s.Validate(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	n := mulSat(s.N, s.C, s.H, s.W)
	return n, checkElems(op, "x", n)
}

// LRNForward writes y and scale (lrn.cl).
func (d *Device) LRNForward(x, y, scale device.Buffer, s device.LRNShape) error {
	const op = "LRNForward"
	n, err := lrnSize(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, n, "y", y, n, "scale", scale, n); err != nil {
		return err
	}
	return d.launch1D("lrn_forward", n, x, y, scale,
		s.N, s.C, s.H, s.W, s.Size, s.Alpha, s.Beta, s.K)
}

// LRNBackward overwrites dx with ∂L/∂x (lrn.cl).
func (d *Device) LRNBackward(x, y, scale, dy, dx device.Buffer, s device.LRNShape) error {
	const op = "LRNBackward"
	n, err := lrnSize(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, n, "y", y, n, "scale", scale, n, "dy", dy, n, "dx", dx, n); err != nil {
		return err
	}
	return d.launch1D("lrn_backward", n, x, y, scale, dy, dx,
		s.N, s.C, s.H, s.W, s.Size, s.Alpha, s.Beta, s.K)
}

// dropoutArgs validates n and p and returns the kernel arguments after the
// two buffers and n: threshold, scale, seed lo/hi, layer, step lo/hi.
func dropoutArgs(op string, n int, p float32, key device.DropoutKey) ([]any, error) {
	if err := checkElems(op, "n", n); err != nil {
		return nil, err
	}
	if !(p >= 0 && p < 1) { // also rejects NaN
		return nil, fmt.Errorf("%s: drop probability p = %v must be in [0, 1)", op, p)
	}
	return []any{device.DropoutThreshold(p), device.DropoutScale(p),
		uint32(key.Seed), uint32(key.Seed >> 32), key.Layer,
		uint32(key.Step), uint32(key.Step >> 32)}, nil
}

// DropoutForward sets y = x·mask/(1−p) over n elements (dropout.cl).
func (d *Device) DropoutForward(x, y device.Buffer, n int, p float32, key device.DropoutKey) error {
	const op = "DropoutForward"
	args, err := dropoutArgs(op, n, p, key)
	if err != nil || n == 0 {
		return err
	}
	if err := checkBufs(op, "x", x, n, "y", y, n); err != nil {
		return err
	}
	return d.launch1D("dropout_forward", n, append([]any{x, y, n}, args...)...)
}

// DropoutBackward overwrites dx = dy·mask/(1−p) with the forward mask (dropout.cl).
func (d *Device) DropoutBackward(dy, dx device.Buffer, n int, p float32, key device.DropoutKey) error {
	const op = "DropoutBackward"
	args, err := dropoutArgs(op, n, p, key)
	if err != nil || n == 0 {
		return err
	}
	if err := checkBufs(op, "dy", dy, n, "dx", dx, n); err != nil {
		return err
	}
	return d.launch1D("dropout_backward", n, append([]any{dy, dx, n}, args...)...)
}

// SoftmaxCrossEntropy writes per-sample loss and rank and, unless dlogits
// is nil, the gradient of the mean loss (loss.cl).
func (d *Device) SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits device.Buffer, n, classes int) error {
	const op = "SoftmaxCrossEntropy"
	if err := checkElems(op, "n", n, "classes", classes, "logits", mulSat(n, classes)); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if classes < 1 {
		return fmt.Errorf("%s: classes = %d must be positive", op, classes)
	}
	if err := checkBufs(op, "logits", logits, n*classes, "labels", labels, n,
		"loss", loss, n, "rank", rank, n); err != nil {
		return err
	}
	if err := d.checkLabels(op, labels, n, classes); err != nil {
		return err
	}
	writeGrad := 0
	if dlogits != nil {
		if err := device.CheckBuf(op, "dlogits", dlogits, n*classes); err != nil {
			return err
		}
		writeGrad = 1
	} else {
		dlogits = loss // not written: write_grad is 0
	}
	wg := d.tunable("LOSS_WG", 64)
	return d.launch("softmax_cross_entropy", []int{n * wg}, []int{wg},
		logits, labels, loss, rank, dlogits, n, classes, writeGrad)
}

// SGDUpdate applies one momentum SGD step with weight decay to w (sgd.cl).
func (d *Device) SGDUpdate(w, g, v device.Buffer, n int, p device.SGDParams) error {
	const op = "SGDUpdate"
	if err := checkElems(op, "n", n); err != nil || n == 0 {
		return err
	}
	if err := checkBufs(op, "w", w, n, "g", g, n, "v", v, n); err != nil {
		return err
	}
	return d.launch1D("sgd_update", n, w, g, v, n, p.LR, p.Momentum, p.WeightDecay)
}

// checkLabels reads the n labels back and returns an error naming the first
// sample whose label is outside [0, classes). A kernel cannot return an
// error, and a bad label would otherwise surface only as a NaN loss (what
// softmax_cross_entropy writes for one). The read waits for queued work; the
// labels are n int32s, and a training step reads its loss back anyway.
func (d *Device) checkLabels(op string, labels device.Buffer, n, classes int) error {
	got := make([]int32, n)
	if err := d.Read(labels, 0, device.Int32Bytes(got)); err != nil {
		return fmt.Errorf("%s: reading labels: %w", op, err)
	}
	for i, l := range got {
		if l < 0 || int(l) >= classes {
			return fmt.Errorf("%s: label %d of sample %d is outside [0, %d)", op, l, i, classes)
		}
	}
	return nil
}

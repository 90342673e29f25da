package opencl

// This file holds the op methods of device.Device: each validates its shape
// and every buffer's size (errors name the op, before anything is queued),
// then queues kernels of clkernels through d.launch. Zero-size work is a
// no-op. The kernels, their buffer shapes and their tunables are described
// in the header comment of each clkernels/*.cl file.
//
// Two kernel families. GPUs (and any device whose type is not CPU) use
// local-memory tiled kernels with one work item per output element or
// register block: gemm, the implicit-GEMM conv2d_forward, the element-wise
// LRN and pooling kernels. CPU devices (POCL, Intel's CPU runtime) use
// kernels written for vector registers and caches, with no barriers and
// no division per element: gemm_vec and gemm_dot, im2col + gemm_vec for
// the forward convolution, lrn_*_vec, max_pool_*_plane. gemm.go picks the
// family (Options.Defines["GEMM_KIND"] = "tiled" or "vector" overrides it).
// Both families compute the same sums in a fixed order; the tests run both
// on POCL. The backward convolutions are GEMMs over im2col workspaces on
// both (workspace.go), in chunks of images.
//
// Nothing here waits for the device: no op reads back or calls Finish
// (SoftmaxCrossEntropy's label check included: see there), and nothing
// allocates per call once the workspace has grown to the largest layer.
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
	return atoiOr(d.opts.Defines[name], def)
}

// atoiOr returns s as a positive integer, or def.
func atoiOr(s string, def int) int {
	if s == "" { // before Atoi, whose error would be an allocation per launch
		return def
	}
	if v, err := strconv.Atoi(s); err == nil && v > 0 {
		return v
	}
	return def
}

// tilingOf returns the tiling a kernel was built with; prefix is "GEMM" or
// "CONV", and the defaults are those of gemm.cl and conv.cl.
func (d *Device) tilingOf(prefix string) tiling {
	return tilingOfDefines(d.opts.Defines, prefix)
}

// tilingOfDefines is tilingOf on the defines defs.
func tilingOfDefines(defs map[string]string, prefix string) tiling {
	return tiling{
		TSM:  atoiOr(defs[prefix+"_TSM"], 64),
		TSN:  atoiOr(defs[prefix+"_TSN"], 64),
		WPTM: atoiOr(defs[prefix+"_WPTM"], 4),
		WPTN: atoiOr(defs[prefix+"_WPTN"], 4),
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

// Gemm computes C = alpha·op(A)·op(B) + beta·C (gemm.cl, through d.gemm).
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
	g := plainGemm(tA, tB, M, N, K, alpha, A, B, beta, C)
	if d.byTranspose(tA, tB, M, N, K) {
		return d.gemmByTranspose(g)
	}
	if s := d.gemmSplits(M, N, K, 1); s > 1 {
		d.ws.mu.Lock()
		defer d.ws.mu.Unlock()
		return d.gemmSplit(g, s)
	}
	return d.gemm(g)
}

// gemmByTranspose computes g, C (M, N) = alpha·A·Bᵀ + beta·C with A (M, K)
// and B (N, K) row-major (a linear layer's forward x·Wᵀ), on CPU devices
// as (B·Aᵀ)ᵀ: gemm_transpose writes Aᵀ (K, M) to workspace slot 0,
// gemm_vec the product B·Aᵀ (N, M) to slot 1, and gemm_transpose adds
// its transpose to beta·C. Under POCL gemm_dot took fc6's x·Wᵀ at batch
// 32 (32×4096×9216) in 41.5 ms and gemm_vec B·Aᵀ in 7.5 ms, the
// transposes reading and writing 1.7 MB. Where a slot cannot be
// allocated, gemm_dot takes the product.
func (d *Device) gemmByTranspose(g gemmCall) error {
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	at, err := d.slot(0, g.K*g.M)
	if err != nil {
		return d.gemm(g)
	}
	ct, err := d.slot(1, g.N*g.M)
	if err != nil {
		return d.gemm(g)
	}
	if err := d.launch1D("gemm_transpose", g.M*g.K, g.A, at, g.M, g.K, float32(0)); err != nil {
		return err
	}
	err = d.gemm(gemmCall{M: g.N, N: g.M, K: g.K, alpha: g.alpha,
		A: g.B, sam: g.K, sak: 1, B: at, sbk: g.M, sbn: 1, C: ct, ldc: g.M})
	if err != nil {
		return err
	}
	return d.launch1D("gemm_transpose", g.N*g.M, ct, g.C, g.N, g.M, g.beta)
}

// byTranspose reports whether Device.Gemm takes op(A)·op(B) by
// gemmByTranspose: on the vector family, for A·Bᵀ with K > 0, at least one
// whole gemm_vec column block of rows in A (M >= 2·GEMMV_VW: below that
// gemm_vec runs its scalar edge loop, and fc6's product at M = 16 took
// 292 ms against gemm_dot's 22), and Aᵀ and the product within
// the workspace cap.
func (d *Device) byTranspose(tA, tB bool, M, N, K int) bool {
	return d.vector() && tB && !tA && K > 0 && M >= 2*d.tunable("GEMMV_VW", 16) &&
		4*int64(M)*(int64(K)+int64(N)) <= d.wsCap()
}

// plainGemm is the gemmCall of C (M, N) = alpha·op(A)·op(B) + beta·C for
// row-major A (M, K), or (K, M) when tA, and B (K, N), or (N, K) when tB.
func plainGemm(tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) gemmCall {
	g := gemmCall{M: M, N: N, K: K, alpha: alpha, beta: beta, A: A, B: B, C: C, ldc: N,
		sam: K, sak: 1, sbk: N, sbn: 1}
	if tA { // A is (K, M)
		g.sam, g.sak = 1, M
	}
	if tB { // B is (N, K)
		g.sbk, g.sbn = 1, K
	}
	return g
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

// convForwardKernel names the implicit-GEMM forward convolution of a GPU
// device: conv2d_forward_blk where the convolution is blocked (convKind)
// and its CONV_* tiles allow it to be built (register blocks of multiples
// of 4), else conv2d_forward.
func (d *Device) convForwardKernel() string {
	if convKind(d.opts.Defines) == gemmBlocked && d.kernels["conv2d_forward_blk"] != nil {
		return "conv2d_forward_blk"
	}
	return "conv2d_forward"
}

// convKind is the forward convolution's kernel family in a program built
// with defs: CONV_KIND, else blocked where GEMM_KIND is, else tiled. The
// tuner picks it apart from the GEMM's, so either family's matrix
// products may go with either forward convolution.
func convKind(defs map[string]string) string {
	if k := defs["CONV_KIND"]; k != "" {
		return k
	}
	if defs["GEMM_KIND"] == gemmBlocked {
		return gemmBlocked
	}
	return gemmTiled
}

// Conv2DForward computes y = conv(x, w) + b: on GPUs the implicit GEMM
// conv2d_forward or conv2d_forward_blk (conv.cl), on CPUs conv_im2col then
// gemm_vec per chunk of images (y_g = w_g · col_g + b for each image and
// group).
func (d *Device) Conv2DForward(x, w, b, y device.Buffer, s device.ConvShape) error {
	const op = "Conv2DForward"
	nx, nw, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, nx, "w", w, nw, "b", b, s.K, "y", y, ny); err != nil {
		return err
	}
	return d.conv2DForward(d.convPath(s, winoOpForward, x, w, b), x, w, b, y, s)
}

// conv2DForward is Conv2DForward on path, its shape and buffers checked.
func (d *Device) conv2DForward(path convPath, x, w, b, y device.Buffer, s device.ConvShape) error {
	const op = "Conv2DForward"
	if v, ok := path.wino(); ok {
		return wrapOp(op, d.winoConv(v, x, w, b, y, s, false))
	}
	if !d.vector() {
		// Implicit GEMM per group: rows Kg output channels, columns N*OH*OW.
		global, local := d.tilingOf("CONV").ndrange(s.K/s.Groups, s.N*s.OH()*s.OW())
		global, local = append(global, s.Groups), append(local, 1)
		return d.launch(d.convForwardKernel(), global, local, append([]any{x, w, b, y}, convArgs(s)...)...)
	}
	G, Kg, Q, OHW := s.Groups, s.K/s.Groups, s.C/s.Groups*s.R*s.S, s.OH()*s.OW()
	return d.convChunks(op, s, nil, func(n0, nc int, col, _ *buffer) error {
		if err := d.im2col(x, col, n0, nc, s, false); err != nil {
			return err
		}
		// Batch (b1, b2) = (image, group): y (Kg, OHW) = w_g (Kg, Q) · col (Q, OHW) + b_g.
		return d.gemm(gemmCall{M: Kg, N: OHW, K: Q, alpha: 1,
			A: w, sam: Q, sak: 1, as2: Kg * Q,
			B: col, sbk: OHW, sbn: 1, bs1: G * Q * OHW, bs2: Q * OHW,
			C: y, coff: n0 * s.K * OHW, ldc: OHW, cs1: s.K * OHW, cs2: Kg * OHW,
			bias: b, biass2: Kg, nb1: nc, nb2: G})
	})
}

// Conv2DBackwardData overwrites dx (N, C, H, W) with ∂L/∂x. On GPUs, for
// stride 1 and with CONV_BWDATA=implicit, as one forward convolution of
// dy (implicitBackwardData); otherwise per chunk of images dcol_g (Q,
// OHW) = w_gᵀ (Q, Kg) · dy_g (Kg, OHW) (gemm.cl), then conv_col2im
// (conv_col2im_gpu on GPUs) gathers dcol into dx (conv.cl).
func (d *Device) Conv2DBackwardData(dy, w, dx device.Buffer, s device.ConvShape) error {
	const op = "Conv2DBackwardData"
	nx, nw, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "dy", dy, ny, "w", w, nw, "dx", dx, nx); err != nil {
		return err
	}
	return d.conv2DBackwardData(d.convPath(s, winoOpData, dy, w, nil), dy, w, dx, s)
}

// conv2DBackwardData is Conv2DBackwardData on path, its shape and buffers
// checked.
func (d *Device) conv2DBackwardData(path convPath, dy, w, dx device.Buffer, s device.ConvShape) error {
	const op = "Conv2DBackwardData"
	_, nw, _, _ := convSizes(op, s)
	if v, ok := path.wino(); ok {
		return wrapOp(op, d.winoConv(v, dy, w, nil, dx, s, true))
	}
	if path == pathImplicit {
		return d.backwardDataImplicit(op, dy, w, dx, s, nw)
	}
	G, Kg, Q, OHW := s.Groups, s.K/s.Groups, s.C/s.Groups*s.R*s.S, s.OH()*s.OW()
	return d.convChunks(op, s, nil, func(n0, nc int, col, _ *buffer) error {
		err := d.gemm(gemmCall{M: Q, N: OHW, K: Kg, alpha: 1,
			A: w, sam: 1, sak: Q, as2: Kg * Q,
			B: dy, boff: n0 * s.K * OHW, sbk: OHW, sbn: 1, bs1: s.K * OHW, bs2: Kg * OHW,
			C: col, ldc: OHW, cs1: G * Q * OHW, cs2: Q * OHW,
			nb1: nc, nb2: G})
		if err != nil {
			return err
		}
		if d.gpuGather() {
			return d.launch1D("conv_col2im_gpu", nc*s.C*s.H*s.W, col, dx, n0, nc,
				s.C, s.H, s.W, s.R, s.S, s.Stride, s.Pad, s.Groups, s.OH(), s.OW())
		}
		return d.launch1D("conv_col2im", nc*s.C*s.H, col, dx, n0, nc,
			s.C, s.H, s.W, s.R, s.S, s.Stride, s.Pad, s.Groups, s.OH(), s.OW())
	})
}

// implicitBackwardData reports whether a GPU family computes the data
// gradient of s as one implicit-GEMM forward convolution: for stride 1,
// square filters and pad <= R-1, dx is dy convolved with the flipped,
// channel-swapped filters (conv_flip_weights) and padding R-1-pad, so the
// whole batch is one launch of the tuned conv2d_forward (or _blk), with no
// unrolled patches written and read back and no col2im. The host-only
// define CONV_BWDATA=implicit turns it on: the tuner sets it where it
// times faster on the device (tune_paths.go), or the user
// (ALEXCL_CL_DEFINES, over the tuner's choice). Under POCL it is slower
// than the GEMM into unrolled patches (AlexNet's conv2 6.9 against 9.2
// GFLOP/s, conv3 8.6 against 8.9); on a GPU the one long-K product may
// win. Where Winograd takes the data gradient (winoAllDefines), it
// comes first.
func (d *Device) implicitBackwardData(s device.ConvShape) bool {
	return d.opts.Defines["CONV_BWDATA"] == "implicit" && d.implicitShape(s)
}

// implicitShape reports whether the implicit data gradient can take
// shape s: a GPU family, stride 1, square filters and pad <= R-1.
func (d *Device) implicitShape(s device.ConvShape) bool {
	return !d.vector() && s.Stride == 1 && s.R == s.S && s.Pad <= s.R-1
}

// backwardDataImplicit is Conv2DBackwardData as implicitBackwardData
// describes: the flipped filters go to workspace slot 0, a bias of zeros
// is slot 2.
func (d *Device) backwardDataImplicit(op string, dy, w, dx device.Buffer, s device.ConvShape, nw int) error {
	t := device.ConvShape{N: s.N, C: s.K, H: s.OH(), W: s.OW(), K: s.C, R: s.R, S: s.S,
		Stride: 1, Pad: s.R - 1 - s.Pad, Groups: s.Groups}
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	wt, err := d.slot(0, nw)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	zero, err := d.zeros(s.C)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := d.launch1D("conv_flip_weights", nw, w, wt, s.K, s.C/s.Groups, s.R, s.S, s.Groups); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	global, local := d.tilingOf("CONV").ndrange(t.K/t.Groups, t.N*t.OH()*t.OW())
	global, local = append(global, t.Groups), append(local, 1)
	if err := d.launch(d.convForwardKernel(), global, local, append([]any{dy, wt, zero, dx}, convArgs(t)...)...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Conv2DBackwardFilter accumulates dw += ∂L/∂w and db += ∂L/∂b. Per chunk
// of images x is unrolled: on CPUs transposed, col (OHW, Q), and one
// gemm_vec sums dy_g (Kg, OHW) · col over the chunk's images into dw (narrow
// filters take col (Q, OHW) and gemm_dot); on GPUs col (Q, OHW) by
// conv_im2col_gpu, read as colᵀ, and the chunk is cut into runs of consecutive images
// (filterRuns): gemm sums each run's products into a partial gradient,
// and conv_sum_images adds the partials to dw in run order, which gives a
// GPU the work-groups it needs without atomics and in a fixed order.
// conv2d_backward_bias adds db.
func (d *Device) Conv2DBackwardFilter(x, dy, dw, db device.Buffer, s device.ConvShape) error {
	const op = "Conv2DBackwardFilter"
	nx, nw, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, nx, "dy", dy, ny, "dw", dw, nw, "db", db, s.K); err != nil {
		return err
	}
	return d.conv2DBackwardFilter(d.convPath(s, winoOpFilter, x, dy, nil), x, dy, dw, db, s)
}

// conv2DBackwardFilter is Conv2DBackwardFilter on path, its shape and
// buffers checked.
func (d *Device) conv2DBackwardFilter(path convPath, x, dy, dw, db device.Buffer, s device.ConvShape) error {
	const op = "Conv2DBackwardFilter"
	_, nw, _, _ := convSizes(op, s)
	if v, ok := path.wino(); ok {
		if err := d.winoBackwardFilter(v, x, dy, dw, s); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return d.convBiasGrad(dy, db, s)
	}
	G, Kg, Q, OHW := s.Groups, s.K/s.Groups, s.C/s.Groups*s.R*s.S, s.OH()*s.OW()
	// GPUs: the partial gradients of a chunk's runs of images (filterRuns).
	var partElems func(nc int) int
	tiling := d.gemmFor(Kg, Q, OHW).t
	tiles := ceilMul(Kg, tiling.TSM) / tiling.TSM * (ceilMul(Q, tiling.TSN) / tiling.TSN) * G
	if !d.vector() {
		partElems = func(nc int) int {
			if runs := d.filterRuns(nc, tiles); runs > 1 {
				return mulSat(runs, nw)
			}
			return 0
		}
	}
	// Narrow filters (Q below gemm_vec's vector block, like a 5x5 conv of
	// one channel) take the dot-product form on im2col's (Q, OHW) layout,
	// and so do GPUs, whose conv_im2col_gpu writes that layout: the GEMM
	// then reads both operands along OHW.
	dot := (d.vector() && Q < 2*d.tunable("GEMMV_VW", 16)) || d.gpuGather()
	err := d.convChunks(op, s, partElems, func(n0, nc int, col, part *buffer) error {
		if err := d.im2col(x, col, n0, nc, s, !dot); err != nil {
			return err
		}
		g := gemmCall{M: Kg, N: Q, K: OHW, alpha: 1,
			A: dy, aoff: n0 * s.K * OHW, sam: OHW, sak: 1, as2: Kg * OHW,
			B: col, sbk: Q, sbn: 1, bs2: OHW * Q,
			ldc: Q, cs2: Kg * Q, nb2: G}
		if dot { // col is (Q, OHW): opB(p, q) = col[q][p]
			g.sbk, g.sbn = 1, OHW
		}
		if part == nil {
			// Σ over the chunk's images inside the GEMM, in image order.
			g.C, g.beta = dw, 1
			g.nt, g.ast, g.bst = nc, s.K*OHW, G*OHW*Q
			return d.gemm(g)
		}
		// Runs of per consecutive images, each summed inside one GEMM
		// into its own partial gradient; conv_sum_images adds the runs in
		// order. One run is the whole chunk, summed straight into dw.
		runs := d.filterRuns(nc, tiles)
		per := ceilMul(nc, runs) / runs
		runs = ceilMul(nc, per) / per
		if runs == 1 {
			g.C, g.beta = dw, 1
			g.nt, g.ast, g.bst = nc, s.K*OHW, G*OHW*Q
			return d.gemm(g)
		}
		g.C, g.beta = part, 0
		g.nt, g.ast, g.bst = per, s.K*OHW, G*OHW*Q
		g.as1, g.bs1, g.cs1 = per*s.K*OHW, per*G*OHW*Q, nw
		full := nc / per
		if full > 0 {
			g.nb1 = full
			if err := d.gemm(g); err != nil {
				return err
			}
		}
		if rest := nc - full*per; rest > 0 { // the last, shorter run
			g.nb1, g.nt = 1, rest
			g.aoff += full * g.as1
			g.boff += full * g.bs1
			g.coff += full * nw
			if err := d.gemm(g); err != nil {
				return err
			}
		}
		return d.launch1D("conv_sum_images", nw, part, dw, runs, nw)
	})
	if err != nil {
		return err
	}
	return d.convBiasGrad(dy, db, s)
}

// convBiasGrad adds the bias gradient of a convolution to db
// (conv2d_backward_bias).
func (d *Device) convBiasGrad(dy, db device.Buffer, s device.ConvShape) error {
	if d.vector() {
		return d.launch1D("conv2d_backward_bias_vec", s.K, dy, db, s.N, s.K, s.OH(), s.OW())
	}
	wg := d.tunable("CONV_BIAS_WG", 256)
	return d.launch("conv2d_backward_bias", []int{s.K * wg}, []int{wg},
		dy, db, s.N, s.K, s.OH(), s.OW())
}

// wrapOp prefixes a non-nil err with op.
func wrapOp(op string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// filterRuns returns into how many runs of consecutive images a GPU cuts
// a chunk of nc images for the filter gradient, whose GEMM has tiles
// work-groups per run: enough runs for about filterGroupsPerCU
// work-groups per compute unit, so that long runs (a long K per
// work-group, few partial gradients to write and add) still fill the
// device; ALEXCL_CL_LEGACY=filter makes every image its own run (the
// scheme before runs, kept to measure against).
func (d *Device) filterRuns(nc, tiles int) int {
	if d.legacy.filterPerImage {
		return nc
	}
	want := d.tunable("CONV_FILTER_GROUPS", filterGroupsPerCU) * max(d.info.ComputeUnits, 1)
	return max(1, min(nc, ceilMul(want, tiles)/max(tiles, 1)))
}

// filterGroupsPerCU is the work-groups per compute unit filterRuns aims at
// (host-only define CONV_FILTER_GROUPS).
var filterGroupsPerCU = 4

// convChunks runs f over the batch of s in chunks of nc images, holding
// the workspace: col has room for the chunk's unrolled patches (nc *
// C*R*S*OH*OW floats) and, when part(nc) > 0, part for part(nc) floats
// (nil otherwise; part may be nil). Errors are prefixed with op.
func (d *Device) convChunks(op string, s device.ConvShape, part func(nc int) int, f func(n0, nc int, col, part *buffer) error) error {
	colPer := s.C * s.R * s.S * s.OH() * s.OW()
	partOf := func(nc int) int {
		if part == nil {
			return 0
		}
		return part(nc)
	}
	if err := checkElems(op, "unrolled patches of one image", colPer, "partial gradients of one image", partOf(1)); err != nil {
		return err
	}
	nc := d.chunkImages(s.N, func(nc int) (int, int) { return mulSat(nc, colPer), partOf(nc) })
	partElems := partOf(nc)
	if err := checkElems(op, "unrolled patches of a chunk", mulSat(nc, colPer), "partial gradients of a chunk", partElems); err != nil {
		return err
	}
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	col, err := d.slot(0, nc*colPer)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pbuf *buffer
	if partElems > 0 {
		if pbuf, err = d.slot(1, partElems); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return evenChunks(s.N, nc, func(n0, c int) error {
		return wrapOp(op, f(n0, c, col, pbuf))
	})
}

// gpuGather reports whether im2col and col2im take the GPU kernels, a
// work item per element (conv_im2col_gpu, conv_col2im_gpu): on GPU
// families unless ALEXCL_CL_LEGACY=im2col.
func (d *Device) gpuGather() bool { return !d.vector() && !d.legacy.rowIm2col }

// im2col queues the unrolling of images n0 .. n0+nc-1 of x into col, laid
// out (nc, groups, Q, OHW), or (nc, groups, OHW, Q) when transposed
// (conv_im2col; conv_im2col_gpu for the first layout where gpuGather).
func (d *Device) im2col(x device.Buffer, col *buffer, n0, nc int, s device.ConvShape, transposed bool) error {
	if !transposed && d.gpuGather() {
		// 1-D: a second dimension of nc*C groups could pass a GPU's grid limit.
		pad := ceilMul(s.OH()*s.OW(), im2colWG)
		if err := checkElems("im2col", "work items", mulSat(nc, s.C, pad)); err != nil {
			return err
		}
		return d.launch("conv_im2col_gpu", []int{nc * s.C * pad}, []int{im2colWG},
			x, col, n0, nc, s.C, s.H, s.W, s.R, s.S, s.Stride, s.Pad, s.Groups, s.OH(), s.OW(), pad)
	}
	t, rows := 0, nc*s.C*s.R*s.S // (image, group, q) rows of OHW
	if transposed {
		t, rows = 1, nc*s.Groups*s.OH()*s.OW() // (image, group, p) rows of Q
	}
	return d.launch1D("conv_im2col", rows, x, col, n0, nc,
		s.C, s.H, s.W, s.R, s.S, s.Stride, s.Pad, s.Groups, s.OH(), s.OW(), t)
}

// im2colWG is conv_im2col_gpu's work-group width along the output pixels.
const im2colWG = 64

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

// MaxPoolForward writes y and the first-maximum positions idx (pool.cl:
// max_pool_forward, or max_pool_forward_plane on CPU devices).
func (d *Device) MaxPoolForward(x, y, idx device.Buffer, s device.PoolShape) error {
	const op = "MaxPoolForward"
	nx, ny, err := poolSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, nx, "y", y, ny, "idx", idx, ny); err != nil {
		return err
	}
	if d.vector() {
		return d.launch1D("max_pool_forward_plane", s.N*s.C, x, y, idx,
			s.N, s.C, s.H, s.W, s.Size, s.Stride, s.OH(), s.OW())
	}
	return d.launch1D("max_pool_forward", ny, x, y, idx,
		s.N, s.C, s.H, s.W, s.Size, s.Stride, s.OH(), s.OW())
}

// MaxPoolBackward overwrites dx by routing each dy to its idx (pool.cl:
// max_pool_backward, or max_pool_backward_plane on CPU devices).
func (d *Device) MaxPoolBackward(idx, dy, dx device.Buffer, s device.PoolShape) error {
	const op = "MaxPoolBackward"
	nx, ny, err := poolSizes(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "idx", idx, ny, "dy", dy, ny, "dx", dx, nx); err != nil {
		return err
	}
	if d.vector() {
		return d.launch1D("max_pool_backward_plane", s.N*s.C, idx, dy, dx,
			s.N, s.C, s.H, s.W, s.Size, s.Stride, s.OH(), s.OW())
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

// LRNForward writes y and scale (lrn.cl: lrn_forward, or lrn_forward_vec on
// CPU devices).
func (d *Device) LRNForward(x, y, scale device.Buffer, s device.LRNShape) error {
	const op = "LRNForward"
	n, err := lrnSize(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, n, "y", y, n, "scale", scale, n); err != nil {
		return err
	}
	if d.vector() {
		vw := d.tunable("LRNV_VW", 16)
		return d.launch1D("lrn_forward_vec", s.N*ceilMul(s.H*s.W, vw)/vw, x, y, scale,
			s.N, s.C, s.H, s.W, s.Size, s.Alpha, s.Beta, s.K)
	}
	return d.launch1D("lrn_forward", n, x, y, scale,
		s.N, s.C, s.H, s.W, s.Size, s.Alpha, s.Beta, s.K)
}

// LRNBackward overwrites dx with ∂L/∂x (lrn.cl: lrn_backward, or
// lrn_backward_vec on CPU devices).
func (d *Device) LRNBackward(x, y, scale, dy, dx device.Buffer, s device.LRNShape) error {
	const op = "LRNBackward"
	n, err := lrnSize(op, s)
	if err != nil {
		return err
	}
	if err := checkBufs(op, "x", x, n, "y", y, n, "scale", scale, n, "dy", dy, n, "dx", dx, n); err != nil {
		return err
	}
	if d.vector() {
		vw := d.tunable("LRNV_VW", 16)
		return d.launch1D("lrn_backward_vec", s.N*ceilMul(s.H*s.W, vw)/vw, x, y, scale, dy, dx,
			s.N, s.C, s.H, s.W, s.Size, s.Alpha, s.Beta, s.K)
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
	if d.vector() {
		return d.launch1D("dropout_forward_vec", ceilMul(n, 16)/16, append([]any{x, y, n}, args...)...)
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
	if d.vector() {
		return d.launch1D("dropout_backward_vec", ceilMul(n, 16)/16, append([]any{dy, dx, n}, args...)...)
	}
	return d.launch1D("dropout_backward", n, append([]any{dy, dx, n}, args...)...)
}

// SoftmaxCrossEntropy writes per-sample loss and rank and, unless dlogits
// is nil, the gradient of the mean loss (loss.cl).
//
// Labels are not read back: a label outside [0, classes) makes the kernel
// write NaN loss (and rank = classes) for that sample and set the device's
// label status flag, which the next Sync or Read reports as an error, once
// (workspace.go). So a bad label is an error raised by the queued work, as
// device/doc.go's Asynchrony rule describes, and no training step waits
// for the host between its upload and its loss read-back.
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
	writeGrad := 0
	if dlogits != nil {
		if err := device.CheckBuf(op, "dlogits", dlogits, n*classes); err != nil {
			return err
		}
		writeGrad = 1
	} else {
		dlogits = loss // not written: write_grad is 0
	}
	status, err := d.labelStatusBuffer()
	if err != nil {
		return err
	}
	wg := d.tunable("LOSS_WG", 64)
	if err := d.launch("softmax_cross_entropy", []int{n * wg}, []int{wg},
		logits, labels, loss, rank, dlogits, status, n, classes, writeGrad); err != nil {
		return err
	}
	d.labels.classes.Store(int64(classes))
	d.labels.pending.Store(true)
	return nil
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

package cpu

import (
	"fmt"

	"github.com/alexcl/alexcl/device"
)

// Convolution as im2col + GEMM over chunks of Q samples of one group g,
// with P = OH·OW, CRS = Cg·R·S and sample i of a chunk in columns
// [i·P, (i+1)·P):
//
//	col   (CRS, Q·P)  the receptive fields of the chunk's samples
//	yc    (Kg, Q·P)  = w_g (Kg, CRS) · col, scattered to y (N, K, OH, OW) + b   forward
//	dcol  (CRS, Q·P) = w_gᵀ · dyc;  dx = col2im(dcol)                            backward data
//	dw_g  (Kg, CRS) += dyc · colᵀ                                                backward filter
//
// Q is chosen from the shape alone (convPlan): enough samples to make the
// GEMM wide (small feature maps), few enough that a chunk's columns stay
// around colBudget floats. A task is one (chunk, group); forward and
// backward data run the tasks in parallel, each with a single-threaded GEMM
// and its own scratch. Backward filter reduces over samples: chunk c goes to
// lane c mod L (L = min(maxLanes, chunks), again from the shape alone); a
// lane accumulates its chunks in order, lane 0 straight into dw, the others
// into partial sums that are then added to dw in lane order. So every
// result's bits depend on the shape only.
//
// With Q = 1 the GEMMs read dy and write y in place, and a pointwise
// convolution (1×1, stride 1, no pad) reads x as its own columns.

// colBudget is the target size, in floats, of one chunk's im2col columns
// (4 MiB: a few chunks stay in the shared L3 next to the packed GEMM
// operands). A variable only so that tests can shrink it to reach every
// chunking path on small shapes.
var colBudget = 1 << 20

// maxLanes bounds the partial sums of the backward filter pass.
const maxLanes = 8

// convPlan is how a convolution is cut into GEMMs.
type convPlan struct {
	Cg, Kg, P, CRS, HW int
	Q, chunks          int  // samples per chunk, number of chunks
	direct             bool // Q = 1 and pointwise: x is its own col
}

func planConv(s device.ConvShape) convPlan {
	p := convPlan{Cg: s.C / s.Groups, Kg: s.K / s.Groups, P: s.OH() * s.OW(), HW: s.H * s.W}
	p.CRS = p.Cg * s.R * s.S
	p.Q = max(1, colBudget/(p.CRS*p.P))
	p.Q = min(p.Q, max(1, (s.N+7)/8)) // at least 8 chunks when N allows
	p.chunks = (s.N + p.Q - 1) / p.Q
	p.direct = p.Q == 1 && isPointwise(s)
	return p
}

// colSize is the scratch a task needs for its columns (0 when direct),
// rounded to 64 bytes so that every worker's region starts aligned alike
// (see alignedFloats).
func (p convPlan) colSize() int {
	if p.direct {
		return 0
	}
	return round16(p.CRS * p.Q * p.P)
}

// outSize is the scratch a task needs for its gathered (Kg, Q·P) block of y
// or dy (0 when Q = 1: y and dy are used in place).
func (p convPlan) outSize() int {
	if p.Q == 1 {
		return 0
	}
	return round16(p.Kg * p.Q * p.P)
}

// chunkCols fills col (CRS, ld) with the columns of samples [n0, n0+q) of
// group g, or returns x itself when the plan is direct. It returns the
// columns and their row stride.
func (p convPlan) chunkCols(xs, col []float32, s device.ConvShape, n0, q, g int) ([]float32, int) {
	if p.direct {
		return xs[(n0*s.C+g*p.Cg)*p.HW : (n0*s.C+(g+1)*p.Cg)*p.HW], p.P
	}
	ld := q * p.P
	for i := 0; i < q; i++ {
		xg := xs[((n0+i)*s.C+g*p.Cg)*p.HW : ((n0+i)*s.C+(g+1)*p.Cg)*p.HW] // (Cg, H, W)
		im2col(xg, col[i*p.P:], ld, s)
	}
	return col[:p.CRS*ld], ld
}

// chunkDy returns dy (Kg, ld) of samples [n0, n0+q) of group g: dy itself
// when q = 1, else gathered into buf.
func (p convPlan) chunkDy(dys, buf []float32, s device.ConvShape, n0, q, g int) ([]float32, int) {
	if q == 1 {
		return dys[(n0*s.K+g*p.Kg)*p.P : (n0*s.K+(g+1)*p.Kg)*p.P], p.P
	}
	ld := q * p.P
	for k := 0; k < p.Kg; k++ {
		for i := 0; i < q; i++ {
			copy(buf[k*ld+i*p.P:k*ld+(i+1)*p.P], dys[((n0+i)*s.K+g*p.Kg+k)*p.P:])
		}
	}
	return buf[:p.Kg*ld], ld
}

// convCheck validates s and the four buffers' sizes.
func (d *Device) convCheck(op string, s device.ConvShape, names [4]string, bufs [4]device.Buffer, sizes [4]int) ([4][]float32, error) {
	var out [4][]float32
	if err := s.Validate(); err != nil {
		return out, fmt.Errorf("%s: %w", op, err)
	}
	for i := range bufs {
		f, err := d.floats(op, names[i], bufs[i], sizes[i])
		if err != nil {
			return out, err
		}
		out[i] = f
	}
	return out, nil
}

// convSizes returns the element counts of x, w, b and y, or an error when
// they are too large to address.
func convSizes(op string, s device.ConvShape) (nx, nw, nb, ny int, err error) {
	if err = s.Validate(); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	if nx, err = product(op, s.N, s.C, s.H, s.W); err != nil {
		return
	}
	if nw, err = product(op, s.K, s.C/s.Groups, s.R, s.S); err != nil {
		return
	}
	if ny, err = product(op, s.N, s.K, s.OH(), s.OW()); err != nil {
		return
	}
	if _, err = product(op, s.C/s.Groups, s.R, s.S, s.OH(), s.OW()); err != nil {
		return
	}
	return nx, nw, s.K, ny, nil
}

// isPointwise reports whether col is the input itself (1×1, stride 1, no pad).
func isPointwise(s device.ConvShape) bool {
	return s.R == 1 && s.S == 1 && s.Stride == 1 && s.Pad == 0
}

// validCols returns the range [lo, hi) of output columns ow whose input
// column ow·Stride − Pad + q lies inside [0, W).
func validCols(s device.ConvShape, q int) (lo, hi int) {
	OW := s.OW()
	if a := s.Pad - q; a > 0 {
		lo = (a + s.Stride - 1) / s.Stride
	}
	b := s.W - 1 + s.Pad - q
	if b < 0 {
		return 0, 0
	}
	hi = min(OW, b/s.Stride+1)
	return min(lo, hi), hi
}

// im2col fills col (Cg·R·S, ld), columns [0, OH·OW) of each row, from xg
// (Cg, H, W), the channels of one group of one sample. Padding reads as zero.
func im2col(xg, col []float32, ld int, s device.ConvShape) {
	rows := len(xg) / (s.H * s.W) * s.R * s.S
	if useAVX512 && s.Stride == 1 && s.OW() <= 32 && s.S <= 32 {
		im2colMasked(xg, col, ld, s, rows)
		return
	}
	im2colLoops(xg, col, ld, s, rows, useAVX512)
}

// im2colLoops is im2col with copy and clear for each output row; with
// gather (AVX-512 only), a strided row is read with vector gathers
// (gatherStrided) instead of a loop.
func im2colLoops(xg, col []float32, ld int, s device.ConvShape, rows int, gather bool) {
	OH, OW := s.OH(), s.OW()
	for row := 0; row < rows; row++ {
		c, r, q := row/(s.R*s.S), (row/s.S)%s.R, row%s.S
		plane := xg[c*s.H*s.W : (c+1)*s.H*s.W] // (H, W)
		dst := col[row*ld : row*ld+OH*OW]      // (OH, OW)
		lo, hi := validCols(s, q)
		for oh := 0; oh < OH; oh++ {
			h := oh*s.Stride - s.Pad + r
			out := dst[oh*OW : (oh+1)*OW]
			if h < 0 || h >= s.H || lo >= hi {
				clear(out)
				continue
			}
			clear(out[:lo])
			clear(out[hi:])
			src := plane[h*s.W : (h+1)*s.W]
			w0 := lo*s.Stride - s.Pad + q
			if s.Stride == 1 {
				copy(out[lo:hi], src[w0:])
				continue
			}
			o := out[lo:hi]
			if gather {
				_ = src[w0+(len(o)-1)*s.Stride]
				gatherStrided(&o[0], &src[w0], len(o), s.Stride)
				continue
			}
			for i := range o {
				o[i] = src[w0+i*s.Stride]
			}
		}
	}
}

// im2colMasked is im2col for stride 1 and output rows of at most 32 floats
// (every AlexNet layer but conv1), where copy and clear calls per short row
// cost more than the data: each output row is one masked load and store
// (im2colRows), the valid columns [lo, hi) as the load mask.
func im2colMasked(xg, col []float32, ld int, s device.ConvShape, rows int) {
	OH, OW := s.OH(), s.OW()
	smask := uint32(uint64(1)<<OW - 1)
	var lmask [32]uint32 // by q
	for q := 0; q < s.S; q++ {
		lo, hi := validCols(s, q)
		lmask[q] = uint32((uint64(1)<<hi - 1) &^ (uint64(1)<<lo - 1))
	}
	row := 0
	for c := 0; c < rows/(s.R*s.S); c++ {
		plane := xg[c*s.H*s.W : (c+1)*s.H*s.W] // (H, W)
		for r := 0; r < s.R; r++ {
			// Output rows oh read input row h = oh − Pad + r, in [0, H)
			// for oh in [oh0, oh1); the others are zero.
			oh0, oh1 := max(0, s.Pad-r), min(OH, s.H+s.Pad-r)
			h0 := min(max(0, oh0-s.Pad+r), s.H-1)
			if oh1 > oh0 {
				_ = plane[(h0+oh1-oh0-1)*s.W+s.W-1]
			}
			for q := 0; q < s.S; q++ {
				dst := col[row*ld : row*ld+OH*OW] // (OH, OW)
				im2colRows(&dst[0], &plane[h0*s.W], q-s.Pad, oh0, oh1, OH, s.W, OW, lmask[q], smask)
				row++
			}
		}
	}
}

// col2im overwrites dxg (Cg, H, W) with the sum of the columns of dcol
// (Cg·R·S, ld), columns [0, OH·OW) of each row, that read each pixel. A
// pixel's sum runs over (r, s, oh, ow) in that order.
func col2im(dcol []float32, ld int, dxg []float32, s device.ConvShape) {
	if useAVX512 && s.Stride == 1 && s.W <= 32 && s.S <= 32 {
		col2imMasked(dcol, ld, dxg, s)
		return
	}
	col2imLoops(dcol, ld, dxg, s)
}

// col2imMasked is col2im for stride 1 and rows of at most 32 floats: for
// each (c, r) and input row h, the row is held in registers while the S
// filter columns add their shifted, masked output rows (col2imAcc), in the
// order of col2imLoops, so the sums are the same.
func col2imMasked(dcol []float32, ld int, dxg []float32, s device.ConvShape) {
	OH, OW := s.OH(), s.OW()
	Cg := len(dxg) / (s.H * s.W)
	// masks[q]: the input columns w whose output column w + Pad − q is in
	// the valid range [lo, hi) of filter column q.
	var masks [32]uint32
	for q := 0; q < s.S; q++ {
		lo, hi := validCols(s, q)
		if lo < hi {
			a, b := lo-s.Pad+q, hi-s.Pad+q
			masks[q] = uint32((uint64(1)<<b - 1) &^ (uint64(1)<<a - 1))
		}
	}
	for c := 0; c < Cg; c++ {
		plane := dxg[c*s.H*s.W : (c+1)*s.H*s.W] // (H, W)
		clear(plane)
		for r := 0; r < s.R; r++ {
			oh0, oh1 := max(0, s.Pad-r), min(OH, s.H+s.Pad-r)
			if oh0 >= oh1 {
				continue
			}
			h0 := oh0 - s.Pad + r
			_ = plane[(h0+oh1-oh0-1)*s.W+s.W-1]
			src := dcol[(c*s.R+r)*s.S*ld:]
			_ = src[(s.S-1)*ld+oh1*OW-1]
			col2imAcc(&plane[h0*s.W], oh1-oh0, s.W, &src[oh0*OW], ld, OW, s.S, s.Pad, &masks)
		}
	}
}

// col2imLoops is col2im with a loop for each output row.
func col2imLoops(dcol []float32, ld int, dxg []float32, s device.ConvShape) {
	OH, OW := s.OH(), s.OW()
	Cg := len(dxg) / (s.H * s.W)
	for c := 0; c < Cg; c++ {
		plane := dxg[c*s.H*s.W : (c+1)*s.H*s.W] // (H, W)
		clear(plane)
		for r := 0; r < s.R; r++ {
			for q := 0; q < s.S; q++ {
				src := dcol[((c*s.R+r)*s.S+q)*ld:] // (OH, OW)
				lo, hi := validCols(s, q)
				if lo >= hi {
					continue
				}
				w0 := lo*s.Stride - s.Pad + q
				for oh := 0; oh < OH; oh++ {
					h := oh*s.Stride - s.Pad + r
					if h < 0 || h >= s.H {
						continue
					}
					in := src[oh*OW+lo : oh*OW+hi]
					if s.Stride == 1 {
						dst := plane[h*s.W+w0 : h*s.W+w0+len(in)]
						for i, v := range in {
							dst[i] += v
						}
						continue
					}
					dst := plane[h*s.W:]
					for i, v := range in {
						dst[w0+i*s.Stride] += v
					}
				}
			}
		}
	}
}

// Conv2DForward computes y = conv(x, w) + b.
func (d *Device) Conv2DForward(x, w, b, y device.Buffer, s device.ConvShape) error {
	const op = "conv2d_forward"
	nx, nw, nb, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	f, err := d.convCheck(op, s, [4]string{"x", "w", "b", "y"}, [4]device.Buffer{x, w, b, y}, [4]int{nx, nw, nb, ny})
	if err != nil {
		return err
	}
	xs, ws, bs, ys := f[0], f[1], f[2], f[3] // (N,C,H,W) (K,Cg,R,S) (K) (N,K,OH,OW)
	if d.useWinograd(s) {
		d.winograd(xs, ws, bs, ys, s.N, s.Groups, s.C/s.Groups, s.K/s.Groups, s.H, s.W, false)
		return nil
	}
	p := planConv(s)
	ar := d.acquire()
	defer d.release(ar)
	nw8 := min(d.workers, p.chunks*s.Groups)
	cols, outs := ar.take(nw8*p.colSize()), ar.take(nw8*p.outSize())
	d.run(ar, p.chunks*s.Groups, func(wk *worker, t int) {
		c, g := t/s.Groups, t%s.Groups
		n0 := c * p.Q
		q := min(p.Q, s.N-n0)
		col, ldc := p.chunkCols(xs, cols[wk.idx*p.colSize():], s, n0, q, g)
		wg := ws[g*p.Kg*p.CRS : (g+1)*p.Kg*p.CRS] // (Kg, CRS)
		bg := bs[g*p.Kg : (g+1)*p.Kg]
		if q == 1 {
			yg := ys[(n0*s.K+g*p.Kg)*p.P : (n0*s.K+(g+1)*p.Kg)*p.P] // (Kg, P)
			d.sgemm(wk, false, false, p.Kg, p.P, p.CRS, 1, wg, p.CRS, col, ldc, 0, yg, p.P)
			for k, bias := range bg {
				row := yg[k*p.P : (k+1)*p.P]
				for i := range row {
					row[i] += bias
				}
			}
			return
		}
		ld := q * p.P
		yc := outs[wk.idx*p.outSize() : wk.idx*p.outSize()+p.Kg*ld] // (Kg, q·P)
		d.sgemm(wk, false, false, p.Kg, ld, p.CRS, 1, wg, p.CRS, col, ldc, 0, yc, ld)
		for k, bias := range bg {
			for i := 0; i < q; i++ {
				src := yc[k*ld+i*p.P : k*ld+(i+1)*p.P]
				dst := ys[((n0+i)*s.K+g*p.Kg+k)*p.P:]
				dst = dst[:len(src)]
				for j, v := range src {
					dst[j] = v + bias
				}
			}
		}
	})
	return nil
}

// Conv2DBackwardData overwrites dx with the gradient w.r.t. x.
func (d *Device) Conv2DBackwardData(dy, w, dx device.Buffer, s device.ConvShape) error {
	const op = "conv2d_backward_data"
	nx, nw, _, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	f, err := d.convCheck(op, s, [4]string{"dy", "w", "dx", "w"}, [4]device.Buffer{dy, w, dx, w}, [4]int{ny, nw, nx, nw})
	if err != nil {
		return err
	}
	dys, ws, dxs := f[0], f[1], f[2] // (N,K,OH,OW) (K,Cg,R,S) (N,C,H,W)
	if d.useWinograd(s) {
		d.winograd(dys, ws, nil, dxs, s.N, s.Groups, s.K/s.Groups, s.C/s.Groups, s.H, s.W, true)
		return nil
	}
	p := planConv(s)
	ar := d.acquire()
	defer d.release(ar)
	nw8 := min(d.workers, p.chunks*s.Groups)
	dcols, outs := ar.take(nw8*p.colSize()), ar.take(nw8*p.outSize())
	d.run(ar, p.chunks*s.Groups, func(wk *worker, t int) {
		c, g := t/s.Groups, t%s.Groups
		n0 := c * p.Q
		q := min(p.Q, s.N-n0)
		dyc, ldd := p.chunkDy(dys, outs[wk.idx*p.outSize():], s, n0, q, g)
		wg := ws[g*p.Kg*p.CRS : (g+1)*p.Kg*p.CRS] // (Kg, CRS)
		if p.direct {
			dxg := dxs[(n0*s.C+g*p.Cg)*p.HW : (n0*s.C+(g+1)*p.Cg)*p.HW] // (Cg, H·W) = (CRS, P)
			d.sgemm(wk, true, false, p.CRS, p.P, p.Kg, 1, wg, p.CRS, dyc, ldd, 0, dxg, p.P)
			return
		}
		ld := q * p.P
		dcol := dcols[wk.idx*p.colSize() : wk.idx*p.colSize()+p.CRS*ld] // (CRS, q·P)
		d.sgemm(wk, true, false, p.CRS, ld, p.Kg, 1, wg, p.CRS, dyc, ldd, 0, dcol, ld)
		for i := 0; i < q; i++ {
			n := n0 + i
			col2im(dcol[i*p.P:], ld, dxs[(n*s.C+g*p.Cg)*p.HW:(n*s.C+(g+1)*p.Cg)*p.HW], s)
		}
	})
	return nil
}

// Conv2DBackwardFilter accumulates dw += ∂L/∂w and db += ∂L/∂b.
func (d *Device) Conv2DBackwardFilter(x, dy, dw, db device.Buffer, s device.ConvShape) error {
	const op = "conv2d_backward_filter"
	nx, nw, nb, ny, err := convSizes(op, s)
	if err != nil {
		return err
	}
	f, err := d.convCheck(op, s, [4]string{"x", "dy", "dw", "db"}, [4]device.Buffer{x, dy, dw, db}, [4]int{nx, ny, nw, nb})
	if err != nil {
		return err
	}
	xs, dys, dws, dbs := f[0], f[1], f[2], f[3] // (N,C,H,W) (N,K,OH,OW) (K,Cg,R,S) (K)
	p := planConv(s)

	// db[k] += Σ_n Σ_p dy[n,k,p], one k per goroutine, n then p in order.
	d.parallelFor(s.K, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			var sum float32
			for n := 0; n < s.N; n++ {
				for _, v := range dys[(n*s.K+k)*p.P : (n*s.K+k+1)*p.P] {
					sum += v
				}
			}
			dbs[k] += sum
		}
	})

	if d.useWinograd(s) {
		d.winogradFilterGrad(xs, dys, dws, s.N, s.Groups, s.C/s.Groups, s.K/s.Groups, s.H, s.W)
		return nil
	}
	ar := d.acquire()
	defer d.release(ar)
	lanes := min(maxLanes, p.chunks)
	tasks := lanes * s.Groups
	nw8 := min(d.workers, tasks)
	part := p.Kg * p.CRS // one group's dw
	cols, outs := ar.take(nw8*p.colSize()), ar.take(nw8*p.outSize())
	parts := ar.take((lanes - 1) * s.Groups * part) // lanes 1.. (G, Kg, CRS) each
	d.run(ar, tasks, func(wk *worker, t int) {
		l, g := t/s.Groups, t%s.Groups
		dst, beta := dws[g*part:(g+1)*part], float32(1) // lane 0 accumulates into dw
		if l > 0 {
			dst, beta = parts[((l-1)*s.Groups+g)*part:((l-1)*s.Groups+g+1)*part], 0
		}
		for c := l; c < p.chunks; c += lanes {
			n0 := c * p.Q
			q := min(p.Q, s.N-n0)
			col, ldc := p.chunkCols(xs, cols[wk.idx*p.colSize():], s, n0, q, g)
			dyc, ldd := p.chunkDy(dys, outs[wk.idx*p.outSize():], s, n0, q, g)
			// dst (Kg, CRS) (+)= dyc (Kg, q·P) · colᵀ (q·P, CRS)
			d.sgemm(wk, false, true, p.Kg, p.CRS, q*p.P, 1, dyc, ldd, col, ldc, beta, dst, p.CRS)
			beta = 1
		}
	})
	if lanes > 1 {
		all := s.Groups * part
		d.parallelFor(all, 1<<14, func(lo, hi int) {
			for e := lo; e < hi; e++ {
				sum := parts[e]
				for l := 1; l < lanes-1; l++ {
					sum += parts[l*all+e]
				}
				dws[e] += sum
			}
		})
	}
	return nil
}

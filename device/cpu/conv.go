package cpu

import (
	"fmt"
	"sync"

	"github.com/alexcl/alexcl/device"
)

// Convolution as im2col + GEMM, one sample and one group at a time:
//
//	col   (Cg·R·S, OH·OW)  the receptive fields of one sample's group g
//	y_g   (Kg, OH·OW)  = w_g (Kg, Cg·R·S) · col          forward
//	dcol  (Cg·R·S, OH·OW) = w_gᵀ · dy_g; dx += col2im(dcol)   backward data
//	dw_g  (Kg, Cg·R·S) += dy_g · colᵀ                     backward filter
//
// Forward and backward data run samples in parallel (each with a serial
// GEMM) when the batch covers the workers, otherwise samples in turn with a
// parallel GEMM; both give the same bits because the GEMM's do. Backward
// filter reduces over samples, so it walks them in order with a parallel
// GEMM accumulating into dw.

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

// im2col fills col (Cg·R·S, OH·OW) from xg (Cg, H, W), the channels of one
// group of one sample, rows [lo, hi) only. Padding reads as zero.
func im2col(xg, col []float32, s device.ConvShape, lo, hi int) {
	OH, OW := s.OH(), s.OW()
	for row := lo; row < hi; row++ {
		c, r, q := row/(s.R*s.S), (row/s.S)%s.R, row%s.S
		plane := xg[c*s.H*s.W : (c+1)*s.H*s.W] // (H, W)
		dst := col[row*OH*OW : (row+1)*OH*OW]  // (OH, OW)
		for oh := 0; oh < OH; oh++ {
			h := oh*s.Stride - s.Pad + r
			out := dst[oh*OW : (oh+1)*OW]
			if h < 0 || h >= s.H {
				clear(out)
				continue
			}
			src := plane[h*s.W : (h+1)*s.W]
			if s.Stride == 1 {
				// w = ow − Pad + q runs over a contiguous range.
				for ow := range out {
					w := ow - s.Pad + q
					if w < 0 || w >= s.W {
						out[ow] = 0
					} else {
						out[ow] = src[w]
					}
				}
				continue
			}
			for ow := range out {
				w := ow*s.Stride - s.Pad + q
				if w < 0 || w >= s.W {
					out[ow] = 0
				} else {
					out[ow] = src[w]
				}
			}
		}
	}
}

// col2im overwrites dxg (Cg, H, W) channels [lo, hi) with the sum of the
// columns of dcol (Cg·R·S, OH·OW) that read each pixel. A channel's sum runs
// over (r, s, oh, ow) in that order, whichever goroutine does it.
func col2im(dcol, dxg []float32, s device.ConvShape, lo, hi int) {
	OH, OW := s.OH(), s.OW()
	for c := lo; c < hi; c++ {
		plane := dxg[c*s.H*s.W : (c+1)*s.H*s.W] // (H, W)
		clear(plane)
		for r := 0; r < s.R; r++ {
			for q := 0; q < s.S; q++ {
				src := dcol[((c*s.R+r)*s.S+q)*OH*OW:] // (OH, OW)
				for oh := 0; oh < OH; oh++ {
					h := oh*s.Stride - s.Pad + r
					if h < 0 || h >= s.H {
						continue
					}
					dst := plane[h*s.W : (h+1)*s.W]
					in := src[oh*OW : (oh+1)*OW]
					for ow, v := range in {
						w := ow*s.Stride - s.Pad + q
						if w >= 0 && w < s.W {
							dst[w] += v
						}
					}
				}
			}
		}
	}
}

// colPool recycles im2col scratch between calls.
var colPool sync.Pool

func getCol(n int) *[]float32 {
	if p, ok := colPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// perSample runs fn(n, workersForGemm) for every sample: in parallel over
// samples when there are at least as many samples as workers, else in turn
// with all workers handed to fn.
func (d *Device) perSample(N int, fn func(n, workers int)) {
	if N >= d.workers || d.workers == 1 {
		d.parallelFor(N, 1, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				fn(n, 1)
			}
		})
		return
	}
	for n := 0; n < N; n++ {
		fn(n, d.workers)
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
	Cg, Kg, P := s.C/s.Groups, s.K/s.Groups, s.OH()*s.OW()
	CRS := Cg * s.R * s.S
	d.perSample(s.N, func(n, workers int) {
		var colp *[]float32
		if !isPointwise(s) {
			colp = getCol(CRS * P)
			defer colPool.Put(colp)
		}
		for g := 0; g < s.Groups; g++ {
			xg := xs[(n*s.C+g*Cg)*s.H*s.W : (n*s.C+(g+1)*Cg)*s.H*s.W] // (Cg, H, W)
			col := xg
			if colp != nil {
				col = *colp
				parallelFor(workers, CRS, 16, func(lo, hi int) { im2col(xg, col, s, lo, hi) })
			}
			yg := ys[(n*s.K+g*Kg)*P : (n*s.K+(g+1)*Kg)*P] // (Kg, P)
			for k := 0; k < Kg; k++ {
				bias, row := bs[g*Kg+k], yg[k*P:(k+1)*P]
				for i := range row {
					row[i] = bias
				}
			}
			sgemm(workers, false, false, Kg, P, CRS, 1, ws[g*Kg*CRS:(g+1)*Kg*CRS], col, 1, yg)
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
	Cg, Kg, P := s.C/s.Groups, s.K/s.Groups, s.OH()*s.OW()
	CRS := Cg * s.R * s.S
	d.perSample(s.N, func(n, workers int) {
		for g := 0; g < s.Groups; g++ {
			dyg := dys[(n*s.K+g*Kg)*P : (n*s.K+(g+1)*Kg)*P]             // (Kg, P)
			dxg := dxs[(n*s.C+g*Cg)*s.H*s.W : (n*s.C+(g+1)*Cg)*s.H*s.W] // (Cg, H, W)
			wg := ws[g*Kg*CRS : (g+1)*Kg*CRS]                           // (Kg, CRS)
			if isPointwise(s) {
				sgemm(workers, true, false, CRS, P, Kg, 1, wg, dyg, 0, dxg)
				continue
			}
			colp := getCol(CRS * P)
			dcol := *colp // (CRS, P)
			sgemm(workers, true, false, CRS, P, Kg, 1, wg, dyg, 0, dcol)
			parallelFor(workers, Cg, 1, func(lo, hi int) { col2im(dcol, dxg, s, lo, hi) })
			colPool.Put(colp)
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
	Cg, Kg, P := s.C/s.Groups, s.K/s.Groups, s.OH()*s.OW()
	CRS := Cg * s.R * s.S

	// db[k] += Σ_n Σ_p dy[n,k,p], one k per goroutine, n then p in order.
	d.parallelFor(s.K, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			var sum float32
			for n := 0; n < s.N; n++ {
				for _, v := range dys[(n*s.K+k)*P : (n*s.K+k+1)*P] {
					sum += v
				}
			}
			dbs[k] += sum
		}
	})

	var colp *[]float32
	if !isPointwise(s) {
		colp = getCol(CRS * P)
		defer colPool.Put(colp)
	}
	for n := 0; n < s.N; n++ {
		for g := 0; g < s.Groups; g++ {
			xg := xs[(n*s.C+g*Cg)*s.H*s.W : (n*s.C+(g+1)*Cg)*s.H*s.W] // (Cg, H, W)
			col := xg
			if colp != nil {
				col = *colp
				d.parallelFor(CRS, 16, func(lo, hi int) { im2col(xg, col, s, lo, hi) })
			}
			dyg := dys[(n*s.K+g*Kg)*P : (n*s.K+(g+1)*Kg)*P] // (Kg, P)
			sgemm(d.workers, false, true, Kg, CRS, P, 1, dyg, col, 1, dws[g*Kg*CRS:(g+1)*Kg*CRS])
		}
	}
	return nil
}

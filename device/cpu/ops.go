package cpu

import (
	"fmt"
	"math"

	"github.com/alexcl/alexcl/device"
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C (see device.Device.Gemm).
func (d *Device) Gemm(tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error {
	const op = "gemm"
	mk, err := product(op, M, K)
	if err != nil {
		return err
	}
	kn, err := product(op, K, N)
	if err != nil {
		return err
	}
	mn, err := product(op, M, N)
	if err != nil {
		return err
	}
	a, err := d.floats(op, "A", A, mk)
	if err != nil {
		return err
	}
	b, err := d.floats(op, "B", B, kn)
	if err != nil {
		return err
	}
	c, err := d.floats(op, "C", C, mn)
	if err != nil {
		return err
	}
	sgemm(d.workers, tA, tB, M, N, K, alpha, a, b, beta, c)
	return nil
}

// AddBias adds b (cols) to every row of y (rows, cols).
func (d *Device) AddBias(y, b device.Buffer, rows, cols int) error {
	const op = "add_bias"
	n, err := product(op, rows, cols)
	if err != nil {
		return err
	}
	ys, err := d.floats(op, "y", y, n)
	if err != nil {
		return err
	}
	bs, err := d.floats(op, "b", b, cols)
	if err != nil {
		return err
	}
	d.parallelFor(rows, max(1, 4096/cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := ys[r*cols : (r+1)*cols]
			for c := range row {
				row[c] += bs[c]
			}
		}
	})
	return nil
}

// BiasGrad accumulates db (cols) += Σ_rows dy (rows, cols). Columns are
// split between goroutines; each column is summed in row order.
func (d *Device) BiasGrad(dy, db device.Buffer, rows, cols int) error {
	const op = "bias_grad"
	n, err := product(op, rows, cols)
	if err != nil {
		return err
	}
	dys, err := d.floats(op, "dy", dy, n)
	if err != nil {
		return err
	}
	dbs, err := d.floats(op, "db", db, cols)
	if err != nil {
		return err
	}
	d.parallelFor(cols, 64, func(lo, hi int) {
		sum := make([]float32, hi-lo)
		for r := 0; r < rows; r++ {
			row := dys[r*cols+lo : r*cols+hi]
			for c, v := range row {
				sum[c] += v
			}
		}
		for c, v := range sum {
			dbs[lo+c] += v
		}
	})
	return nil
}

// elementwise checks n and the buffers of a one-to-one op.
func (d *Device) elementwise(op string, n int, names []string, bufs ...device.Buffer) ([][]float32, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%s: n = %d must be positive", op, n)
	}
	out := make([][]float32, len(bufs))
	for i, b := range bufs {
		f, err := d.floats(op, names[i], b, n)
		if err != nil {
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}

const elemGrain = 1 << 14

// ReLUForward sets y = max(x, 0); NaN gives 0, as in device/ref.
func (d *Device) ReLUForward(x, y device.Buffer, n int) error {
	f, err := d.elementwise("relu_forward", n, []string{"x", "y"}, x, y)
	if err != nil {
		return err
	}
	xs, ys := f[0], f[1]
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if v := xs[i]; v > 0 {
				ys[i] = v
			} else {
				ys[i] = 0
			}
		}
	})
	return nil
}

// ReLUBackward overwrites dx = dy where y > 0, else 0.
func (d *Device) ReLUBackward(y, dy, dx device.Buffer, n int) error {
	f, err := d.elementwise("relu_backward", n, []string{"y", "dy", "dx"}, y, dy, dx)
	if err != nil {
		return err
	}
	ys, dys, dxs := f[0], f[1], f[2]
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if ys[i] > 0 {
				dxs[i] = dys[i]
			} else {
				dxs[i] = 0
			}
		}
	})
	return nil
}

// poolSizes validates s and returns the element counts of x and y.
func poolSizes(op string, s device.PoolShape) (nx, ny int, err error) {
	if err = s.Validate(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	if nx, err = product(op, s.N, s.C, s.H, s.W); err != nil {
		return
	}
	ny, err = product(op, s.N, s.C, s.OH(), s.OW())
	return
}

// MaxPoolForward writes y and idx, the first maximum of each window (a NaN
// beats every number; the first NaN is kept), as device/ref does.
func (d *Device) MaxPoolForward(x, y, idx device.Buffer, s device.PoolShape) error {
	const op = "maxpool_forward"
	nx, ny, err := poolSizes(op, s)
	if err != nil {
		return err
	}
	xs, err := d.floats(op, "x", x, nx)
	if err != nil {
		return err
	}
	ys, err := d.floats(op, "y", y, ny)
	if err != nil {
		return err
	}
	is, err := d.ints(op, "idx", idx, ny)
	if err != nil {
		return err
	}
	OH, OW := s.OH(), s.OW()
	d.parallelFor(s.N*s.C, max(1, 4096/(s.H*s.W)), func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			plane := xs[nc*s.H*s.W : (nc+1)*s.H*s.W] // (H, W)
			yp := ys[nc*OH*OW : (nc+1)*OH*OW]        // (OH, OW)
			ip := is[nc*OH*OW : (nc+1)*OH*OW]        // (OH, OW)
			for oh := 0; oh < OH; oh++ {
				for ow := 0; ow < OW; ow++ {
					at0 := oh*s.Stride*s.W + ow*s.Stride
					bestAt, best := at0, plane[at0]
					for r := 0; r < s.Size; r++ {
						row := plane[at0+r*s.W : at0+r*s.W+s.Size]
						for q, v := range row {
							if v > best || (v != v && best == best) {
								best, bestAt = v, at0+r*s.W+q
							}
						}
					}
					yp[oh*OW+ow] = best
					ip[oh*OW+ow] = int32(bestAt)
				}
			}
		}
	})
	return nil
}

// MaxPoolBackward overwrites dx by routing each dy to idx. Every idx must lie
// in [0, H·W); that is checked before dx is touched.
func (d *Device) MaxPoolBackward(idx, dy, dx device.Buffer, s device.PoolShape) error {
	const op = "maxpool_backward"
	nx, ny, err := poolSizes(op, s)
	if err != nil {
		return err
	}
	is, err := d.ints(op, "idx", idx, ny)
	if err != nil {
		return err
	}
	dys, err := d.floats(op, "dy", dy, ny)
	if err != nil {
		return err
	}
	dxs, err := d.floats(op, "dx", dx, nx)
	if err != nil {
		return err
	}
	HW := int32(s.H * s.W)
	for i, v := range is {
		if v < 0 || v >= HW {
			return fmt.Errorf("%s: idx[%d] = %d outside the %dx%d plane", op, i, v, s.H, s.W)
		}
	}
	OHW := s.OH() * s.OW()
	d.parallelFor(s.N*s.C, max(1, 4096/int(HW)), func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			plane := dxs[nc*int(HW) : (nc+1)*int(HW)]
			clear(plane)
			ip, dp := is[nc*OHW:(nc+1)*OHW], dys[nc*OHW:(nc+1)*OHW]
			for p, at := range ip {
				plane[at] += dp[p]
			}
		}
	})
	return nil
}

// powNegBeta returns s^(−beta) rounded to float32, as device/ref computes it
// (in float64); beta 0.75, AlexNet's, takes two square roots instead of Pow.
func powNegBeta(s, beta float32) float32 {
	if beta == 0.75 {
		r := math.Sqrt(float64(s))
		return float32(1 / (r * math.Sqrt(r)))
	}
	return float32(math.Pow(float64(s), -float64(beta)))
}

// lrnTile is the number of pixels one LRN task handles for all channels.
const lrnTile = 256

// lrnTasks splits (N, H·W) into tasks of up to lrnTile pixels and runs fn
// for each on the workers, with a scratch of C·lrnTile floats per goroutine.
func (d *Device) lrnTasks(s device.LRNShape, fn func(n, p0, pn int, scratch []float32)) {
	HW := s.H * s.W
	tilesPer := (HW + lrnTile - 1) / lrnTile
	d.parallelFor(s.N*tilesPer, 1, func(lo, hi int) {
		scratch := make([]float32, s.C*lrnTile)
		for t := lo; t < hi; t++ {
			n, p0 := t/tilesPer, (t%tilesPer)*lrnTile
			fn(n, p0, min(lrnTile, HW-p0), scratch)
		}
	})
}

func lrnSizes(op string, s device.LRNShape) (int, error) {
	if err := s.Validate(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return product(op, s.N, s.C, s.H, s.W)
}

// LRNForward writes y and scale; the window sums run in increasing channel
// order as in device/ref.
func (d *Device) LRNForward(x, y, scale device.Buffer, s device.LRNShape) error {
	const op = "lrn_forward"
	n, err := lrnSizes(op, s)
	if err != nil {
		return err
	}
	f, err := d.elementwise(op, n, []string{"x", "y", "scale"}, x, y, scale)
	if err != nil {
		return err
	}
	xs, ys, ss := f[0], f[1], f[2] // (N, C, H, W)
	HW := s.H * s.W
	alphaOverSize := s.Alpha / float32(s.Size)
	d.lrnTasks(s, func(n, p0, pn int, sq []float32) {
		base := n * s.C * HW
		for c := 0; c < s.C; c++ { // sq is (C, pn): x²
			src := xs[base+c*HW+p0 : base+c*HW+p0+pn]
			dst := sq[c*pn : (c+1)*pn]
			for p, v := range src {
				dst[p] = v * v
			}
		}
		for c := 0; c < s.C; c++ {
			lo, hi := max(0, c-s.Size/2), min(s.C-1, c+(s.Size-1)/2)
			off := base + c*HW + p0
			xo, yo, so := xs[off:off+pn], ys[off:off+pn], ss[off:off+pn]
			for p := range so {
				var sum float32
				for cc := lo; cc <= hi; cc++ {
					sum += sq[cc*pn+p]
				}
				sc := s.K + alphaOverSize*sum
				so[p] = sc
				yo[p] = xo[p] * powNegBeta(sc, s.Beta)
			}
		}
	})
	return nil
}

// LRNBackward overwrites dx with the gradient w.r.t. x (see device/ref for
// the derivation):
//
//	dx[j] = dy[j]·scale[j]^(−β) − (2αβ/n)·x[j]·Σ_{c : j in window(c)} dy[c]·y[c]/scale[c]
func (d *Device) LRNBackward(x, y, scale, dy, dx device.Buffer, s device.LRNShape) error {
	const op = "lrn_backward"
	n, err := lrnSizes(op, s)
	if err != nil {
		return err
	}
	f, err := d.elementwise(op, n, []string{"x", "y", "scale", "dy", "dx"}, x, y, scale, dy, dx)
	if err != nil {
		return err
	}
	xs, ys, ss, dys, dxs := f[0], f[1], f[2], f[3], f[4] // (N, C, H, W)
	HW := s.H * s.W
	coef := 2 * s.Alpha * s.Beta / float32(s.Size)
	d.lrnTasks(s, func(n, p0, pn int, t []float32) {
		base := n * s.C * HW
		for c := 0; c < s.C; c++ { // t is (C, pn): dy·y/scale
			off := base + c*HW + p0
			dyo, yo, so, to := dys[off:off+pn], ys[off:off+pn], ss[off:off+pn], t[c*pn:(c+1)*pn]
			for p := range to {
				to[p] = dyo[p] * yo[p] / so[p]
			}
		}
		for j := 0; j < s.C; j++ {
			lo, hi := max(0, j-(s.Size-1)/2), min(s.C-1, j+s.Size/2)
			off := base + j*HW + p0
			xo, so, dyo, dxo := xs[off:off+pn], ss[off:off+pn], dys[off:off+pn], dxs[off:off+pn]
			for p := range dxo {
				var sum float32
				for c := lo; c <= hi; c++ {
					sum += t[c*pn+p]
				}
				dxo[p] = dyo[p]*powNegBeta(so[p], s.Beta) - coef*xo[p]*sum
			}
		}
	})
	return nil
}

// dropout multiplies in by the mask of key into out, the same mask as
// device/ref's.
func (d *Device) dropout(op string, in, out device.Buffer, n int, p float32, key device.DropoutKey) error {
	if !(p >= 0 && p < 1) {
		return fmt.Errorf("%s: p = %v must be in [0, 1)", op, p)
	}
	if n > math.MaxUint32+1 {
		return fmt.Errorf("%s: n = %d exceeds the 2^32 elements a dropout key indexes", op, n)
	}
	f, err := d.elementwise(op, n, []string{"in", "out"}, in, out)
	if err != nil {
		return err
	}
	is, os := f[0], f[1]
	if p == 0 {
		d.parallelFor(n, elemGrain, func(lo, hi int) { copy(os[lo:hi], is[lo:hi]) })
		return nil
	}
	thr, scale := device.DropoutThreshold(p), device.DropoutScale(p)
	d.parallelFor(n, 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if device.DropoutKeep(key, uint32(i), thr) {
				os[i] = is[i] * scale
			} else {
				os[i] = 0
			}
		}
	})
	return nil
}

// DropoutForward sets y = x·mask/(1−p).
func (d *Device) DropoutForward(x, y device.Buffer, n int, p float32, key device.DropoutKey) error {
	return d.dropout("dropout_forward", x, y, n, p, key)
}

// DropoutBackward overwrites dx = dy·mask/(1−p) with the forward's mask.
func (d *Device) DropoutBackward(dy, dx device.Buffer, n int, p float32, key device.DropoutKey) error {
	return d.dropout("dropout_backward", dy, dx, n, p, key)
}

// SoftmaxCrossEntropy writes per-sample loss, rank and, unless dlogits is
// nil, the gradient of the mean loss; arithmetic as in device/ref. Labels
// outside [0, classes) are an error, reported before anything is written.
func (d *Device) SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits device.Buffer, n, classes int) error {
	const op = "softmax_cross_entropy"
	nc, err := product(op, n, classes)
	if err != nil {
		return err
	}
	zs, err := d.floats(op, "logits", logits, nc)
	if err != nil {
		return err
	}
	ls, err := d.ints(op, "labels", labels, n)
	if err != nil {
		return err
	}
	loss32, err := d.floats(op, "loss", loss, n)
	if err != nil {
		return err
	}
	ranks, err := d.ints(op, "rank", rank, n)
	if err != nil {
		return err
	}
	var ds []float32
	if dlogits != nil {
		if ds, err = d.floats(op, "dlogits", dlogits, nc); err != nil {
			return err
		}
	}
	for i, l := range ls {
		if l < 0 || int(l) >= classes {
			return fmt.Errorf("%s: labels[%d] = %d outside [0, %d)", op, i, l, classes)
		}
	}
	d.parallelFor(n, max(1, 4096/classes), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			z := zs[i*classes : (i+1)*classes]
			label := int(ls[i])
			maxZ := z[0]
			for _, v := range z[1:] {
				if v > maxZ {
					maxZ = v
				}
			}
			var sum float32
			for _, v := range z {
				sum += float32(math.Exp(float64(v - maxZ)))
			}
			loss32[i] = float32(math.Log(float64(sum))) - (z[label] - maxZ)
			r := int32(0)
			zl := z[label]
			for c, v := range z {
				if v > zl || (v == zl && c < label) {
					r++
				}
			}
			ranks[i] = r
			if ds != nil {
				dz := ds[i*classes : (i+1)*classes]
				for c, v := range z {
					prob := float32(math.Exp(float64(v-maxZ))) / sum
					if c == label {
						prob -= 1
					}
					dz[c] = prob / float32(n)
				}
			}
		}
	})
	return nil
}

// SGDUpdate applies one momentum-SGD step in the exact float32 order of
// operations of device/ref (no fused multiply-add), so it matches it bit
// for bit.
func (d *Device) SGDUpdate(w, g, v device.Buffer, n int, p device.SGDParams) error {
	f, err := d.elementwise("sgd_update", n, []string{"w", "g", "v"}, w, g, v)
	if err != nil {
		return err
	}
	ws, gs, vs := f[0], f[1], f[2]
	lr, mom := p.LR, p.Momentum
	wdlr := float32(p.WeightDecay * p.LR)
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			mv := float32(mom * vs[i])
			dw := float32(wdlr * ws[i])
			lg := float32(lr * gs[i])
			vs[i] = float32(float32(mv-dw) - lg)
			ws[i] = float32(ws[i] + vs[i])
		}
	})
	return nil
}

package cpu

import (
	"fmt"
	"math"
	"unsafe"

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
	d.gemm(tA, tB, M, N, K, alpha, a, b, beta, c)
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
	ar := d.acquire()
	defer d.release(ar)
	const tile = 256
	tasks := (cols + tile - 1) / tile
	sums := ar.take(min(d.workers, tasks) * tile)
	d.run(ar, tasks, func(w *worker, t int) {
		lo, hi := t*tile, min(cols, (t+1)*tile)
		sum := sums[w.idx*tile : w.idx*tile+hi-lo]
		clear(sum)
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

// ReLU works on the float bits, without branches (random signs would
// mispredict half the time): positiveMask(b) is all ones exactly when the
// float with bits b is > 0 — b in [1, 0x7f800000], +Inf included, NaN,
// zeros and negatives excluded — matching device/ref's `x > 0`.
func positiveMask(b uint32) uint32 {
	return uint32((int64(b-1) - 0x7f800000) >> 63)
}

// bits views a float32 slice as its uint32 bits.
func bits(f []float32) []uint32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&f[0])), len(f))
}

// ReLUForward sets y = max(x, 0); NaN gives 0, as in device/ref.
func (d *Device) ReLUForward(x, y device.Buffer, n int) error {
	f, err := d.elementwise("relu_forward", n, []string{"x", "y"}, x, y)
	if err != nil {
		return err
	}
	xs, ys := bits(f[0]), bits(f[1])
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		xo, yo := xs[lo:hi], ys[lo:hi]
		yo = yo[:len(xo)]
		for i, b := range xo {
			yo[i] = b & positiveMask(b)
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
	ys, dys, dxs := bits(f[0]), bits(f[1]), bits(f[2])
	d.parallelFor(n, elemGrain, func(lo, hi int) {
		yo, dyo, dxo := ys[lo:hi], dys[lo:hi], dxs[lo:hi]
		dyo, dxo = dyo[:len(yo)], dxo[:len(yo)]
		for i, b := range yo {
			dxo[i] = dyo[i] & positiveMask(b)
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

// poolKey maps float bits to an int32 that orders as device/ref's pooling
// compares: numbers in float order with −0 equal to +0, and every NaN equal
// to the largest key, above +Inf (so a NaN beats every number and, being
// only equal to a later NaN, the first NaN is kept). Branch-free: with
// random data a compare-and-branch per element mispredicts often, so the
// window's maximum key is taken with max (conditional moves) and its first
// position found by a backward scan of equalities.
func poolKey(b uint32) int32 {
	a := int32(b & 0x7fffffff)    // |x|
	nan := (0x7f800000 - a) >> 31 // −1 for a NaN, else 0
	neg := int32(b) >> 31 &^ nan  // −1 for a negative number, else 0
	a |= nan & 0x7fffffff         // every NaN: the largest key
	return (a ^ neg) - neg        // negatives: −|x|, and −0 → 0
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
	xb := bits(xs)
	HW, OHW := s.H*s.W, OH*OW
	rows := (OH-1)*s.Stride + s.Size // input rows any window reads
	// A task is a run of whole planes, about poolGrain input elements: a
	// function of the shape alone, and each plane's result is its own.
	planes := max(1, poolGrain/HW)
	tasks := (s.N*s.C + planes - 1) / planes
	ar := d.acquire()
	defer d.release(ar)
	per := round16(s.W + 2*rows*OW)
	scratch := int32s(ar.take(min(d.workers, tasks) * per))
	d.run(ar, tasks, func(w *worker, t int) {
		sc := scratch[w.idx*per : (w.idx+1)*per]
		keys, hk, hat := sc[:s.W], sc[s.W:s.W+rows*OW], sc[s.W+rows*OW:s.W+2*rows*OW]
		for nc := t * planes; nc < min(s.N*s.C, (t+1)*planes); nc++ {
			plane := xb[nc*HW : (nc+1)*HW] // (H, W)
			yp := ys[nc*OHW : (nc+1)*OHW]  // (OH, OW)
			ip := is[nc*OHW : (nc+1)*OHW]  // (OH, OW)
			if s.Size == 3 {
				maxPool3(plane, yp, ip, keys, hk, hat, s.W, OH, OW, rows, s.Stride, keysAreBits(plane))
			} else {
				maxPoolPlane(plane, yp, ip, keys, hk, hat, s.W, OH, OW, rows, s.Stride, s.Size)
			}
		}
	})
	return nil
}

// poolGrain is the number of input elements a pooling task aims at.
const poolGrain = 1 << 14

// maxPoolPlane pools one (H, W) plane into yp and ip (OH, OW), with keys
// (W) and hk, hat (rows, OW) as scratch.
func maxPoolPlane(plane []uint32, yp []float32, ip []int32, keys, hk, hat []int32, W, OH, OW, rows, stride, size int) {
	// Across each row: hk[h, ow] is the window row's largest key and
	// hat[h, ow] where it first occurs.
	for h := 0; h < rows; h++ {
		row := plane[h*W : (h+1)*W]
		for i, b := range row {
			keys[i] = poolKey(b)
		}
		for ow := 0; ow < OW; ow++ {
			kk := keys[ow*stride : ow*stride+size]
			m := kk[0]
			for _, k := range kk[1:] {
				m = max(m, k)
			}
			at := len(kk) - 1
			for q := len(kk) - 2; q >= 0; q-- {
				if kk[q] == m {
					at = q
				}
			}
			hk[h*OW+ow], hat[h*OW+ow] = m, int32(h*W+ow*stride+at)
		}
	}
	// Down the window rows: the first row holding the maximum wins,
	// which is the first maximum in row-major window order.
	for oh := 0; oh < OH; oh++ {
		h0 := oh * stride
		for ow := 0; ow < OW; ow++ {
			m := hk[h0*OW+ow]
			for r := 1; r < size; r++ {
				m = max(m, hk[(h0+r)*OW+ow])
			}
			at := hat[(h0+size-1)*OW+ow]
			for r := size - 2; r >= 0; r-- {
				if hk[(h0+r)*OW+ow] == m {
					at = hat[(h0+r)*OW+ow]
				}
			}
			yp[oh*OW+ow] = math.Float32frombits(plane[at])
			ip[oh*OW+ow] = at
		}
	}
}

// keysAreBits reports whether every float of plane is +0, positive or +Inf
// (as after a ReLU): then, read as int32, the bits themselves order as
// their poolKeys do — no NaN, no −0 — and the keys need not be computed.
// Out of line, its maxima stay in registers; two of them halve the chain
// of dependent conditional moves.
//
//go:noinline
func keysAreBits(plane []uint32) bool {
	var m0, m1 uint32
	i := 0
	for ; i+1 < len(plane); i += 2 {
		m0, m1 = max(m0, plane[i]), max(m1, plane[i+1])
	}
	if i < len(plane) {
		m0 = max(m0, plane[i])
	}
	return max(m0, m1) <= 0x7f800000
}

// maxPool3 is maxPoolPlane for 3×3 windows, unrolled, its loops over
// contiguous rows; with raw (see keysAreBits) the rows' bits are their
// keys. The row helpers are kept out of line so that each inner loop has
// the registers to itself.
func maxPool3(plane []uint32, yp []float32, ip []int32, keys, hk, hat []int32, W, OH, OW, rows, stride int, raw bool) {
	for h := 0; h < rows; h++ {
		row := plane[h*W : (h+1)*W]
		k := keys[:W]
		if raw {
			k = unsafe.Slice((*int32)(unsafe.Pointer(&row[0])), W)
		} else {
			poolKeys(row, k)
		}
		pool3Row(k, hk[h*OW:(h+1)*OW], hat[h*OW:(h+1)*OW], int32(h*W), stride)
	}
	for oh := 0; oh < OH; oh++ {
		h0 := oh * stride
		pool3Col(plane, hk[h0*OW:(h0+3)*OW], hat[h0*OW:(h0+3)*OW], yp[oh*OW:(oh+1)*OW], ip[oh*OW:(oh+1)*OW])
	}
}

// poolKeys sets keys[i] = poolKey(row[i]).
//
//go:noinline
func poolKeys(row []uint32, keys []int32) {
	keys = keys[:len(row)]
	for i, b := range row {
		keys[i] = poolKey(b)
	}
}

// pool3Row sets hr[ow], ar[ow] to the largest of keys[o..o+2]
// (o = ow·stride) and base plus the first position holding it.
//
//go:noinline
func pool3Row(keys, hr, ar []int32, base int32, stride int) {
	ar = ar[:len(hr)]
	for ow := range hr {
		o := ow * stride
		kk := keys[o : o+3]
		k0, k1, k2 := kk[0], kk[1], kk[2]
		m := max(k0, k1, k2)
		at := int32(o + 2)
		if k1 == m {
			at = int32(o + 1)
		}
		if k0 == m {
			at = int32(o)
		}
		hr[ow], ar[ow] = m, base+at
	}
}

// pool3Col takes, for each ow, the first of three window rows (hk, hat are
// three rows of len(yo)) holding the largest key: a later row wins only
// when its key is greater. The choices are made with gtMask: written as
// ifs or max, the compiler emits branches here, which random data
// mispredicts about once a window.
//
//go:noinline
func pool3Col(plane []uint32, hk, hat []int32, yo []float32, io []int32) {
	n := len(yo)
	k0, k1, k2 := hk[:n], hk[n:2*n], hk[2*n:3*n]
	hat = hat[:3*n]
	io = io[:n]
	for ow := range yo {
		m, b, c := k0[ow], k1[ow], k2[ow]
		g := gtMask(b, m)
		m ^= (m ^ b) & int32(g) // the larger of rows 0 and 1
		r := n & g              // and the first row holding it
		g = gtMask(c, m)
		r = r&^g | 2*n&g
		at := hat[r+ow]
		yo[ow] = math.Float32frombits(plane[at])
		io[ow] = at
	}
}

// gtMask returns −1 (all ones) if a > b, else 0, without a branch.
func gtMask(a, b int32) int {
	return int((int64(b) - int64(a)) >> 63)
}

// int32s views a float32 scratch slice as int32s.
func int32s(f []float32) []int32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&f[0])), len(f))
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

// powNegBeta returns s^(−beta) for s > 0. For AlexNet's beta 0.75 it is
// 1/(√s·√√s) in float32 (two square roots, ≈2 ulp: well inside the 1e-5
// LRN tolerance of device/devicetest, which allows OpenCL's pow); other
// betas go through math.Pow in float64.
func powNegBeta(s, beta float32) float32 {
	if beta == 0.75 {
		r := float32(math.Sqrt(float64(s))) // compiles to SQRTSS
		return 1 / (r * float32(math.Sqrt(float64(r))))
	}
	return float32(math.Pow(float64(s), -float64(beta)))
}

// lrnTile is the most pixels one LRN task handles, for all channels.
const lrnTile = 1024

// lrnTasks splits (N, H·W) into tasks of up to lrnTile pixels, a plane's
// tiles differing in size by at most one, and runs fn for each on the
// workers, with per floats of scratch per worker from the device's arena.
func (d *Device) lrnTasks(s device.LRNShape, per int, fn func(n, p0, pn int, scratch []float32)) {
	HW := s.H * s.W
	tilesPer := (HW + lrnTile - 1) / lrnTile
	tasks := s.N * tilesPer
	ar := d.acquire()
	defer d.release(ar)
	per = round16(per)
	scratch := ar.take(min(d.workers, tasks) * per)
	d.run(ar, tasks, func(w *worker, t int) {
		n, i := t/tilesPer, t%tilesPer
		p0, p1 := HW*i/tilesPer, HW*(i+1)/tilesPer
		fn(n, p0, p1-p0, scratch[w.idx*per:(w.idx+1)*per])
	})
}

func lrnSizes(op string, s device.LRNShape) (int, error) {
	if err := s.Validate(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return product(op, s.N, s.C, s.H, s.W)
}

// lrnWindowSum writes sum[p] = Σ_{cc=lo..hi} t[cc mod rows, p] for t
// (rows, pn), each sum in increasing channel order (as device/ref's 0 +
// t[lo] + t[lo+1] + …; the terms are squares or products, never −0 where
// it would matter, and 0 + v is v). t holds every channel (rows = C) or
// the ring of the last five (rows = 5).
func lrnWindowSum(sum, t []float32, lo, hi, pn, rows int) {
	copy(sum, t[lo%rows*pn:][:pn])
	for cc := lo + 1; cc <= hi; cc++ {
		row := t[cc%rows*pn:][:pn]
		row = row[:len(sum)]
		for p, v := range row {
			sum[p] += v
		}
	}
}

// LRNForward writes y and scale; the window sums run in increasing channel
// order as in device/ref. A task is (sample, tile of pixels); within it
// every loop runs over contiguous pixels of one channel plane. AlexNet's
// 5-channel windows take lrnForward5, which reads x once; other sizes
// square the tile's channels first, then sum the windows.
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
	K, beta := s.K, s.Beta
	if s.Size == 5 {
		d.lrnTasks(s, 5*lrnTile, func(n, p0, pn int, ring []float32) {
			off := n*s.C*HW + p0
			lrnForward5(xs[off:], ys[off:], ss[off:], ring[:5*pn], s.C, HW, pn, K, alphaOverSize, beta)
		})
		return nil
	}
	d.lrnTasks(s, s.C*lrnTile, func(n, p0, pn int, sq []float32) {
		base := n * s.C * HW
		for c := 0; c < s.C; c++ { // sq is (C, pn): x²
			src := xs[base+c*HW+p0 : base+c*HW+p0+pn]
			dst := sq[c*pn : (c+1)*pn]
			dst = dst[:len(src)]
			for p, v := range src {
				dst[p] = v * v
			}
		}
		for c := 0; c < s.C; c++ {
			lo, hi := max(0, c-s.Size/2), min(s.C-1, c+(s.Size-1)/2)
			off := base + c*HW + p0
			xo, yo, so := xs[off:off+pn], ys[off:off+pn], ss[off:off+pn]
			xo, yo = xo[:len(so)], yo[:len(so)]
			lrnWindowSum(so, sq, lo, hi, pn, s.C)
			for p, sum := range so {
				sc := K + alphaOverSize*sum
				so[p] = sc
				yo[p] = xo[p] * powNegBeta(sc, beta)
			}
		}
	})
	return nil
}

// lrnForward5 is LRNForward for 5-channel windows on one tile: pn pixels of
// each of C channels, channel c at x[c·HW:], y[c·HW:], scale[c·HW:]. ring
// (5, pn) holds x² of the last five channels read, channel c in row c mod
// 5. Each channel is read once: reading channel c completes the window of
// channel c−2, which is then written while its x is still in L1.
func lrnForward5(x, y, scale, ring []float32, C, HW, pn int, K, alphaOverSize, beta float32) {
	row := func(c int) []float32 { return ring[c%5*pn : (c%5+1)*pn] }
	for c := 0; c < C+2; c++ {
		o := c - 2 // the channel whose window c completes
		xo, yo, so := x[max(o, 0)*HW:][:pn], y[max(o, 0)*HW:][:pn], scale[max(o, 0)*HW:][:pn]
		if o >= 2 && c < C && beta == 0.75 { // a whole window: square x[c] on the way
			xc := x[c*HW:][:pn]
			ring := [5][]float32{row(o - 2)[:pn], row(o - 1)[:pn], row(o)[:pn], row(o + 1)[:pn], row(c)[:pn]}
			if n8 := pn &^ 7; useAVX2 && n8 > 0 {
				_, _, _ = xc[n8-1], xo[n8-1], yo[n8-1]
				ptrs := [5]*float32{&ring[0][0], &ring[1][0], &ring[2][0], &ring[3][0], &ring[4][0]}
				lrnFwd5AVX2(n8, &xc[0], &xo[0], &yo[0], &so[0], &ptrs, K, alphaOverSize)
				for i := range ring {
					ring[i] = ring[i][n8:]
				}
				xc, xo, yo, so = xc[n8:], xo[n8:], yo[n8:], so[n8:]
			}
			lrnFwd5Go(xc, xo, yo, so, &ring, K, alphaOverSize)
			continue
		}
		if c < C {
			src, dst := x[c*HW:][:pn], row(c)
			dst = dst[:len(src)]
			for p, v := range src {
				dst[p] = v * v
			}
		}
		if o < 0 {
			continue
		}
		lrnWindowSum(so, ring, max(0, o-2), min(C-1, o+2), pn, 5)
		xo, yo = xo[:len(so)], yo[:len(so)]
		for p, sum := range so {
			sc := K + alphaOverSize*sum
			so[p] = sc
			yo[p] = xo[p] * powNegBeta(sc, beta)
		}
	}
}

// LRNBackward overwrites dx with the gradient w.r.t. x (see device/ref for
// the derivation):
//
//	dx[j] = dy[j]·scale[j]^(−β) − (2αβ/n)·x[j]·Σ_{c : j in window(c)} dy[c]·y[c]/scale[c]
//
// Tasks and loops are cut as in LRNForward; 5-channel windows take
// lrnBackward5. For β = 0.75, 1/scale is (scale^(−3/4)·scale^(1/4))², from
// the two square roots the power takes anyway, so each element costs one
// division instead of two.
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
	beta := s.Beta
	if s.Size == 5 {
		d.lrnTasks(s, 6*lrnTile, func(n, p0, pn int, scratch []float32) {
			off := n*s.C*HW + p0
			lrnBackward5(xs[off:], ys[off:], ss[off:], dys[off:], dxs[off:], scratch[:5*pn], scratch[5*pn:6*pn], s.C, HW, pn, coef, beta)
		})
		return nil
	}
	d.lrnTasks(s, s.C*lrnTile, func(n, p0, pn int, t []float32) {
		base := n * s.C * HW
		// t is (C, pn): dy·y/scale. dx is first set to dy·scale^(−β),
		// then the window terms are subtracted.
		for c := 0; c < s.C; c++ {
			off := base + c*HW + p0
			lrnBackwardTerms(t[c*pn:(c+1)*pn], dxs[off:off+pn], dys[off:off+pn], ys[off:off+pn], ss[off:off+pn], beta)
		}
		for j := 0; j < s.C; j++ {
			lo, hi := max(0, j-(s.Size-1)/2), min(s.C-1, j+s.Size/2)
			off := base + j*HW + p0
			xo, dxo := xs[off:off+pn], dxs[off:off+pn]
			xo = xo[:len(dxo)]
			for p := range dxo {
				sum := t[lo*pn+p]
				for c := lo + 1; c <= hi; c++ {
					sum += t[c*pn+p]
				}
				dxo[p] -= coef * xo[p] * sum
			}
		}
	})
	return nil
}

// lrnBackwardTerms sets, for one channel's pixels, t = dy·y/scale and
// dx = dy·scale^(−β).
func lrnBackwardTerms(t, dx, dy, y, scale []float32, beta float32) {
	dy, y, scale, t = dy[:len(dx)], y[:len(dx)], scale[:len(dx)], t[:len(dx)]
	if beta == 0.75 {
		for p, sc := range scale {
			q := float32(math.Sqrt(float64(sc)))
			pw := 1 / float32(math.Sqrt(float64(q*q*q))) // scale^(−3/4) as 1/√(q³), q = √scale
			t[p] = dy[p] * y[p] * (pw * pw * q)          // 1/scale = scale^(−3/2)·scale^(1/2)
			dx[p] = dy[p] * pw
		}
		return
	}
	for p, sc := range scale {
		t[p] = dy[p] * y[p] / sc
		dx[p] = dy[p] * powNegBeta(sc, beta)
	}
}

// lrnBackward5 is LRNBackward for 5-channel windows on one tile, laid out
// as in lrnForward5; ring (5, pn) holds dy·y/scale of the last five
// channels read, wsum (pn) is scratch for the clipped windows. Reading
// channel c sets dx[c] = dy·scale^(−β) and completes the window sum of
// channel c−2, whose term is then subtracted.
func lrnBackward5(x, y, scale, dy, dx, ring, wsum []float32, C, HW, pn int, coef, beta float32) {
	row := func(c int) []float32 { return ring[c%5*pn : (c%5+1)*pn] }
	for c := 0; c < C+2; c++ {
		j := c - 2 // the channel whose window sum c completes
		xj, dxj := x[max(j, 0)*HW:][:pn], dx[max(j, 0)*HW:][:pn]
		if j >= 2 && c < C && beta == 0.75 { // a whole window: channel c's terms on the way
			dyc, yc, sc, dxc := dy[c*HW:][:pn], y[c*HW:][:pn], scale[c*HW:][:pn], dx[c*HW:][:pn]
			ring := [5][]float32{row(j - 2)[:pn], row(j - 1)[:pn], row(j)[:pn], row(j + 1)[:pn], row(c)[:pn]}
			if n8 := pn &^ 7; useAVX2 && n8 > 0 {
				_, _ = xj[n8-1], dxj[n8-1]
				ptrs := [5]*float32{&ring[0][0], &ring[1][0], &ring[2][0], &ring[3][0], &ring[4][0]}
				lrnBwd5AVX2(n8, &dyc[0], &yc[0], &sc[0], &dxc[0], &xj[0], &dxj[0], &ptrs, coef)
				for i := range ring {
					ring[i] = ring[i][n8:]
				}
				dyc, yc, sc, dxc, xj, dxj = dyc[n8:], yc[n8:], sc[n8:], dxc[n8:], xj[n8:], dxj[n8:]
			}
			lrnBwd5Go(dyc, yc, sc, dxc, xj, dxj, &ring, coef)
			continue
		}
		if c < C {
			lrnBackwardTerms(row(c), dx[c*HW:][:pn], dy[c*HW:][:pn], y[c*HW:][:pn], scale[c*HW:][:pn], beta)
		}
		if j < 0 {
			continue
		}
		lrnWindowSum(wsum, ring, max(0, j-2), min(C-1, j+2), pn, 5)
		xj, wsum = xj[:len(dxj)], wsum[:len(dxj)]
		for p, v := range wsum {
			dxj[p] -= coef * xj[p] * v
		}
	}
}

// lrnFwd5Go is the β = 0.75 inner loop of lrnForward5 for a whole window:
// ring[4] = xc², so = K + α/n·(ring[0] + … + ring[4]), yo = xo·so^(−3/4).
// lrnFwd5AVX2 (assembly) does the same operations in the same order.
func lrnFwd5Go(xc, xo, yo, so []float32, ring *[5][]float32, K, alphaOverSize float32) {
	xc, xo, yo = xc[:len(so)], xo[:len(so)], yo[:len(so)]
	a0, a1, a2, a3, a4 := ring[0][:len(so)], ring[1][:len(so)], ring[2][:len(so)], ring[3][:len(so)], ring[4][:len(so)]
	for p := range so {
		v := xc[p]
		q := v * v
		a4[p] = q
		sum := a0[p] + a1[p] + a2[p] + a3[p] + q
		sc := K + alphaOverSize*sum
		so[p] = sc
		r := float32(math.Sqrt(float64(sc)))
		yo[p] = xo[p] * (1 / (r * float32(math.Sqrt(float64(r)))))
	}
}

// lrnBwd5Go is the β = 0.75 inner loop of lrnBackward5 for a whole window:
// channel c's terms ring[4] = dyc·yc/sc and dxc = dyc·sc^(−3/4), then
// dxj −= coef·xj·(ring[0] + … + ring[4]). lrnBwd5AVX2 (assembly) does the
// same operations in the same order.
func lrnBwd5Go(dyc, yc, sc, dxc, xj, dxj []float32, ring *[5][]float32, coef float32) {
	dyc, yc, sc, xj, dxj = dyc[:len(dxc)], yc[:len(dxc)], sc[:len(dxc)], xj[:len(dxc)], dxj[:len(dxc)]
	t0, t1, t2, t3, t4 := ring[0][:len(dxc)], ring[1][:len(dxc)], ring[2][:len(dxc)], ring[3][:len(dxc)], ring[4][:len(dxc)]
	for p := range dxc {
		q := float32(math.Sqrt(float64(sc[p])))
		pw := 1 / float32(math.Sqrt(float64(q*q*q))) // scale^(−3/4) as 1/√(q³), q = √scale
		t := dyc[p] * yc[p] * (pw * pw * q)          // 1/scale = scale^(−3/2)·scale^(1/2)
		t4[p] = t
		dxc[p] = dyc[p] * pw
		sum := t0[p] + t1[p] + t2[p] + t3[p] + t
		dxj[p] -= coef * xj[p] * sum
	}
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
				if !(v < zl) && !(v == zl && c >= label) { // ref.rankedAbove: a NaN ranks above
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

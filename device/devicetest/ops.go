package devicetest

import (
	"fmt"
	"math"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
)

// b01 formats a bool as 0 or 1 for case names.
func b01(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------
// Gemm, AddBias, BiasGrad

// gemmCases covers all four transposes, beta 0 (C holds NaN garbage, which
// must not leak) and beta ≠ 0, over sizes drawn from {1, 7, 33, 65, 130}.
func gemmCases() []Case {
	sizes := [][3]int{ // M, N, K
		{1, 1, 1}, {1, 130, 65}, {130, 1, 7}, {7, 33, 65}, {65, 7, 130},
		{33, 130, 7}, {130, 65, 33}, {65, 65, 1}, {7, 7, 130},
	}
	var cs []Case
	for _, s := range sizes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				cs = append(cs, gemmCase(tA, tB, s[0], s[1], s[2], 1, 0, "normal"))
				cs = append(cs, gemmCase(tA, tB, s[0], s[1], s[2], 1.5, -0.75, "normal"))
			}
		}
	}
	cs = append(cs, gemmCase(false, true, 33, 65, 7, 1, 0, "negative"))
	cs = append(cs, gemmCase(true, false, 65, 33, 130, -0.5, 1, "negative"))
	return cs
}

// gemmCase checks C = alpha·op(A)·op(B) + beta·C.
func gemmCase(tA, tB bool, M, N, K int, alpha, beta float32, kind string) Case {
	shape := fmt.Sprintf("tA=%d tB=%d M=%d N=%d K=%d alpha=%g beta=%g %s", b01(tA), b01(tB), M, N, K, alpha, beta, kind)
	return Case{"Gemm", shape, func(d device.Device) Result {
		h := newHarness(d, "Gemm", shape)
		a := h.gen(kind, M*K, 1) // (M, K) or (K, M)
		b := h.gen(kind, K*N, 1) // (K, N) or (N, K)
		c0 := nans(M * N)        // (M, N)
		if beta != 0 {
			c0 = h.normal(M*N, 1)
		}
		A, B, C := h.upload(a), h.upload(b), h.upload(c0)
		h.run("Gemm", func() error { return d.Gemm(tA, tB, M, N, K, alpha, A, B, beta, C) })
		got := h.read(C, M*N)
		want := f64(c0)
		ref.Gemm(tA, tB, M, N, K, float64(alpha), f64(a), f64(b), float64(beta), want)
		bound := abs64(c0)
		ref.Gemm(tA, tB, M, N, K, math.Abs(float64(alpha)), abs64(a), abs64(b), math.Abs(float64(beta)), bound)
		h.expect("C", got, want, bound, SumTol(K+2), 2*eps)
		return h.finish()
	}}
}

// biasCases checks AddBias (exact: one addition) and BiasGrad, which
// accumulates into a non-zero db.
func biasCases() []Case {
	var cs []Case
	for _, s := range [][2]int{{1, 1}, {7, 13}, {130, 65}, {3, 4097}, {257, 3}} {
		rows, cols := s[0], s[1]
		shape := fmt.Sprintf("rows=%d cols=%d", rows, cols)
		cs = append(cs, Case{"AddBias", shape, func(d device.Device) Result {
			h := newHarness(d, "AddBias", shape)
			y0 := h.normal(rows*cols, 1) // (rows, cols)
			b := h.normal(cols, 1)       // (cols)
			Y, B := h.upload(y0), h.upload(b)
			h.run("AddBias", func() error { return d.AddBias(Y, B, rows, cols) })
			want := clone32(y0)
			ref.AddBias(want, b, rows, cols)
			h.expectExact("y", h.read(Y, rows*cols), want)
			return h.finish()
		}})
		cs = append(cs, Case{"BiasGrad", shape, func(d device.Device) Result {
			h := newHarness(d, "BiasGrad", shape)
			dy := h.normal(rows*cols, 1) // (rows, cols)
			db0 := h.normal(cols, 1)     // (cols), accumulated into
			DY, DB := h.upload(dy), h.upload(db0)
			h.run("BiasGrad", func() error { return d.BiasGrad(DY, DB, rows, cols) })
			want, bound := f64(db0), abs64(db0)
			ref.BiasGrad(f64(dy), want, rows, cols)
			ref.BiasGrad(abs64(dy), bound, rows, cols)
			h.expect("db", h.read(DB, cols), want, bound, SumTol(rows+1), 2*eps)
			return h.finish()
		}})
	}
	return cs
}

// ---------------------------------------------------------------------------
// Convolution

// convShapes are the convolutions checked, each forward and backward.
var convShapes = []struct {
	name string
	s    device.ConvShape
	kind string
}{
	{"AlexNet conv1", device.ConvShape{N: 1, C: 3, H: 227, W: 227, K: 96, R: 11, S: 11, Stride: 4, Pad: 0, Groups: 1}, "normal"},
	{"grouped 5x5 pad 2", device.ConvShape{N: 2, C: 8, H: 13, W: 13, K: 12, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2}, "normal"},
	{"3x3 pad 1 primes", device.ConvShape{N: 1, C: 5, H: 7, W: 11, K: 7, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}, "normal"},
	{"3x3 pad 1 groups 2", device.ConvShape{N: 3, C: 6, H: 6, W: 6, K: 10, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}, "normal"},
	{"stride 2 uneven", device.ConvShape{N: 2, C: 3, H: 10, W: 9, K: 4, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 1}, "normal"},
	{"1x1", device.ConvShape{N: 1, C: 17, H: 5, W: 5, K: 33, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1}, "normal"},
	{"3x5 filter", device.ConvShape{N: 2, C: 2, H: 8, W: 9, K: 3, R: 3, S: 5, Stride: 1, Pad: 2, Groups: 1}, "normal"},
	{"channels 37 to 19", device.ConvShape{N: 1, C: 37, H: 5, W: 6, K: 19, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}, "normal"},
	// Channels enough for the OpenCL device's Winograd paths where chosen
	// (16 per group at least): the 5x5 one, grouped, on an odd image.
	{"5x5 pad 2, 32 to 40 in 2 groups", device.ConvShape{N: 2, C: 32, H: 9, W: 11, K: 40, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2}, "normal"},
	{"all negative", device.ConvShape{N: 2, C: 4, H: 7, W: 7, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}, "negative"},
	{"all ones 1x1x1", device.ConvShape{N: 1, C: 1, H: 1, W: 1, K: 1, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1}, "normal"},
	{"pad larger than needed", device.ConvShape{N: 1, C: 2, H: 3, W: 3, K: 2, R: 3, S: 3, Stride: 3, Pad: 2, Groups: 1}, "normal"},
}

// convCases checks the three convolution ops on every shape of convShapes.
func convCases() []Case {
	var cs []Case
	for _, c := range convShapes {
		s, kind := c.s, c.kind
		shape := fmt.Sprintf("%s N=%d C=%d H=%d W=%d K=%d R=%d S=%d stride=%d pad=%d groups=%d",
			c.name, s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.Stride, s.Pad, s.Groups)
		nx, nw, ny := s.N*s.C*s.H*s.W, s.K*(s.C/s.Groups)*s.R*s.S, s.N*s.K*s.OH()*s.OW()
		cs = append(cs, Case{"Conv2DForward", shape, func(d device.Device) Result {
			h := newHarness(d, "Conv2DForward", shape)
			x := h.gen(kind, nx, 1)   // (N, C, H, W)
			w := h.gen(kind, nw, 0.1) // (K, C/Groups, R, S)
			b := h.gen(kind, s.K, 1)  // (K)
			X, W, B, Y := h.upload(x), h.upload(w), h.upload(b), h.garbage(ny)
			h.run("Conv2DForward", func() error { return d.Conv2DForward(X, W, B, Y, s) })
			want, bound := make([]float64, ny), make([]float64, ny)
			ref.Conv2DForward(f64(x), f64(w), f64(b), want, s)
			ref.Conv2DForward(abs64(x), abs64(w), abs64(b), bound, s)
			h.expect("y", h.read(Y, ny), want, bound, SumTol(s.C/s.Groups*s.R*s.S+1), 2*eps)
			return h.finish()
		}})
		cs = append(cs, Case{"Conv2DBackwardData", shape, func(d device.Device) Result {
			h := newHarness(d, "Conv2DBackwardData", shape)
			dy := h.gen(kind, ny, 1)  // (N, K, OH, OW)
			w := h.gen(kind, nw, 0.1) // (K, C/Groups, R, S)
			DY, W, DX := h.upload(dy), h.upload(w), h.garbage(nx)
			h.run("Conv2DBackwardData", func() error { return d.Conv2DBackwardData(DY, W, DX, s) })
			want, bound := make([]float64, nx), make([]float64, nx)
			ref.Conv2DBackwardData(f64(dy), f64(w), want, s)
			ref.Conv2DBackwardData(abs64(dy), abs64(w), bound, s)
			h.expect("dx", h.read(DX, nx), want, bound, SumTol(s.K/s.Groups*s.R*s.S), 2*eps)
			return h.finish()
		}})
		cs = append(cs, Case{"Conv2DBackwardFilter", shape, func(d device.Device) Result {
			h := newHarness(d, "Conv2DBackwardFilter", shape)
			x := h.gen(kind, nx, 1)  // (N, C, H, W)
			dy := h.gen(kind, ny, 1) // (N, K, OH, OW)
			dw0 := h.normal(nw, 1)   // (K, C/Groups, R, S), accumulated into
			db0 := h.normal(s.K, 1)  // (K), accumulated into
			X, DY, DW, DB := h.upload(x), h.upload(dy), h.upload(dw0), h.upload(db0)
			h.run("Conv2DBackwardFilter", func() error { return d.Conv2DBackwardFilter(X, DY, DW, DB, s) })
			wantW, wantB := f64(dw0), f64(db0)
			ref.Conv2DBackwardFilter(f64(x), f64(dy), wantW, wantB, s)
			boundW, boundB := abs64(dw0), abs64(db0)
			ref.Conv2DBackwardFilter(abs64(x), abs64(dy), boundW, boundB, s)
			terms := s.N*s.OH()*s.OW() + 1
			h.expect("dw", h.read(DW, nw), wantW, boundW, SumTol(terms), 2*eps)
			h.expect("db", h.read(DB, s.K), wantB, boundB, SumTol(terms), 2*eps)
			return h.finish()
		}})
	}
	return cs
}

// ---------------------------------------------------------------------------
// ReLU

// reluCases checks ReLU forward and backward, exactly, out of place and in place.
func reluCases() []Case {
	var cs []Case
	for _, n := range []int{1, 7, 4097, 65537} {
		for _, inPlace := range []bool{false, true} {
			for _, kind := range []string{"normal", "negative"} {
				if kind == "negative" && (inPlace || n != 4097) {
					continue
				}
				shape := fmt.Sprintf("n=%d in-place=%v %s", n, inPlace, kind)
				cs = append(cs, Case{"ReLUForward", shape, func(d device.Device) Result {
					h := newHarness(d, "ReLUForward", shape)
					x := h.gen(kind, n, 1) // (n)
					x[0] = 0
					if n > 2 {
						x[2] = float32(math.Copysign(0, -1))
					}
					X := h.upload(x)
					Y := X
					if !inPlace {
						Y = h.garbage(n)
					}
					h.run("ReLUForward", func() error { return d.ReLUForward(X, Y, n) })
					want := make([]float32, n)
					ref.ReLUForward(x, want)
					h.expectExact("y", h.read(Y, n), want)
					return h.finish()
				}})
				cs = append(cs, Case{"ReLUBackward", shape, func(d device.Device) Result {
					h := newHarness(d, "ReLUBackward", shape)
					y := h.gen(kind, n, 1) // (n), the forward output
					ref.ReLUForward(y, y)
					dy := h.normal(n, 1) // (n)
					Y, DY := h.upload(y), h.upload(dy)
					DX := DY
					if !inPlace {
						DX = h.garbage(n)
					}
					h.run("ReLUBackward", func() error { return d.ReLUBackward(Y, DY, DX, n) })
					want := make([]float32, n)
					ref.ReLUBackward(y, dy, want)
					h.expectExact("dx", h.read(DX, n), want)
					return h.finish()
				}})
			}
		}
	}
	return cs
}

// ---------------------------------------------------------------------------
// Max pooling

// poolCases checks max pooling; "ties" inputs take few distinct values so
// windows often hold several equal maxima and the first one must win.
func poolCases() []Case {
	shapes := []struct {
		s    device.PoolShape
		kind string
	}{
		{device.PoolShape{N: 1, C: 1, H: 3, W: 3, Size: 3, Stride: 2}, "normal"},
		{device.PoolShape{N: 2, C: 3, H: 13, W: 13, Size: 3, Stride: 2}, "normal"},
		{device.PoolShape{N: 2, C: 3, H: 13, W: 13, Size: 3, Stride: 2}, "ties"},
		{device.PoolShape{N: 1, C: 5, H: 55, W: 55, Size: 3, Stride: 2}, "ties"},
		{device.PoolShape{N: 2, C: 3, H: 12, W: 10, Size: 3, Stride: 2}, "ties"},
		{device.PoolShape{N: 3, C: 2, H: 7, W: 9, Size: 2, Stride: 2}, "negative"},
		{device.PoolShape{N: 1, C: 7, H: 5, W: 5, Size: 1, Stride: 1}, "normal"},
		{device.PoolShape{N: 1, C: 2, H: 11, W: 11, Size: 3, Stride: 2}, "negative"},
	}
	var cs []Case
	for _, c := range shapes {
		s, kind := c.s, c.kind
		shape := fmt.Sprintf("N=%d C=%d H=%d W=%d size=%d stride=%d %s", s.N, s.C, s.H, s.W, s.Size, s.Stride, kind)
		nx, ny := s.N*s.C*s.H*s.W, s.N*s.C*s.OH()*s.OW()
		cs = append(cs, Case{"MaxPoolForward", shape, func(d device.Device) Result {
			h := newHarness(d, "MaxPoolForward", shape)
			x := h.gen(kind, nx, 1) // (N, C, H, W)
			X, Y, IDX := h.upload(x), h.garbage(ny), h.garbage(ny)
			h.run("MaxPoolForward", func() error { return d.MaxPoolForward(X, Y, IDX, s) })
			want, wantIdx := make([]float32, ny), make([]int32, ny)
			ref.MaxPoolForward(x, want, wantIdx, s)
			h.expectExact("y", h.read(Y, ny), want)
			h.expectInt32("idx", h.readInt32(IDX, ny), wantIdx)
			return h.finish()
		}})
		cs = append(cs, Case{"MaxPoolBackward", shape, func(d device.Device) Result {
			h := newHarness(d, "MaxPoolBackward", shape)
			x := h.gen(kind, nx, 1) // (N, C, H, W)
			y, idx := make([]float32, ny), make([]int32, ny)
			ref.MaxPoolForward(x, y, idx, s)
			dy := h.normal(ny, 1) // (N, C, OH, OW)
			IDX, DY, DX := h.uploadInt32(idx), h.upload(dy), h.garbage(nx)
			h.run("MaxPoolBackward", func() error { return d.MaxPoolBackward(IDX, DY, DX, s) })
			want, bound := make([]float64, nx), make([]float64, nx)
			ref.MaxPoolBackward(idx, f64(dy), want, s)
			ref.MaxPoolBackward(idx, abs64(dy), bound, s)
			perInput := (s.Size + s.Stride - 1) / s.Stride // windows covering one input, per axis
			h.expect("dx", h.read(DX, nx), want, bound, SumTol(perInput*perInput), 2*eps)
			return h.finish()
		}})
	}
	return cs
}

// ---------------------------------------------------------------------------
// Local response normalisation

// lrnTol is LRN's tolerance relative to the magnitude of its terms: pow may
// be off by 16 ulp in OpenCL, plus a few ulp for the sum, times 4.
const lrnTol = 1e-5

// lrnCases checks LRN with the paper's parameters and with a large alpha
// that makes the cross-channel terms dominate.
func lrnCases() []Case {
	shapes := []struct {
		s    device.LRNShape
		kind string
	}{
		{device.LRNShape{N: 2, C: 7, H: 5, W: 3, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2}, "normal"},
		{device.LRNShape{N: 1, C: 96, H: 6, W: 5, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2}, "normal"},
		{device.LRNShape{N: 3, C: 9, H: 4, W: 3, Size: 5, Alpha: 2, Beta: 0.75, K: 1}, "normal"},
		{device.LRNShape{N: 1, C: 3, H: 2, W: 7, Size: 5, Alpha: 1.5, Beta: 0.75, K: 2}, "normal"},
		{device.LRNShape{N: 2, C: 1, H: 3, W: 3, Size: 5, Alpha: 1, Beta: 0.75, K: 2}, "normal"},
		{device.LRNShape{N: 1, C: 8, H: 3, W: 5, Size: 4, Alpha: 0.8, Beta: 0.5, K: 1.5}, "normal"},
		{device.LRNShape{N: 2, C: 6, H: 3, W: 3, Size: 5, Alpha: 1, Beta: 0.75, K: 2}, "negative"},
	}
	var cs []Case
	for _, c := range shapes {
		s, kind := c.s, c.kind
		shape := fmt.Sprintf("N=%d C=%d H=%d W=%d size=%d alpha=%g beta=%g k=%g %s", s.N, s.C, s.H, s.W, s.Size, s.Alpha, s.Beta, s.K, kind)
		n := s.N * s.C * s.H * s.W
		cs = append(cs, Case{"LRNForward", shape, func(d device.Device) Result {
			h := newHarness(d, "LRNForward", shape)
			x := h.gen(kind, n, 3) // (N, C, H, W)
			X, Y, SC := h.upload(x), h.garbage(n), h.garbage(n)
			h.run("LRNForward", func() error { return d.LRNForward(X, Y, SC, s) })
			want, scale := make([]float64, n), make([]float64, n)
			ref.LRNForward(f64(x), want, scale, s)
			// scale is a sum of positive terms: relative error only; y = x·scale^−β.
			h.expect("scale", h.read(SC, n), scale, nil, 0, SumTol(s.Size+1))
			h.expect("y", h.read(Y, n), want, nil, 0, lrnTol)
			return h.finish()
		}})
		cs = append(cs, Case{"LRNBackward", shape, func(d device.Device) Result {
			h := newHarness(d, "LRNBackward", shape)
			x := h.gen(kind, n, 3) // (N, C, H, W)
			y64, sc64 := make([]float64, n), make([]float64, n)
			ref.LRNForward(f64(x), y64, sc64, s)
			y, scale := f32(y64), f32(sc64) // the forward outputs a device would keep
			dy := h.normal(n, 1)            // (N, C, H, W)
			X, Y, SC, DY, DX := h.upload(x), h.upload(y), h.upload(scale), h.upload(dy), h.garbage(n)
			h.run("LRNBackward", func() error { return d.LRNBackward(X, Y, SC, DY, DX, s) })
			want := make([]float64, n)
			ref.LRNBackward(f64(x), f64(y), f64(scale), f64(dy), want, s)
			// dx = dy·scale^−β − c·x·Σ dy·y/scale; with x → −|x|, y → |y|, dy → |dy|
			// the same formula gives the sum of the terms' magnitudes.
			negAbsX := abs64(x)
			for i := range negAbsX {
				negAbsX[i] = -negAbsX[i]
			}
			bound := make([]float64, n)
			ref.LRNBackward(negAbsX, abs64(y), f64(scale), abs64(dy), bound, s)
			h.expect("dx", h.read(DX, n), want, bound, lrnTol, 2*eps)
			return h.finish()
		}})
	}
	return cs
}

// ---------------------------------------------------------------------------
// Dropout

// dropoutCases checks that the device draws exactly the mask of
// device.DropoutKeep and scales kept elements exactly as the reference.
func dropoutCases() []Case {
	type dc struct {
		n       int
		p       float32
		key     device.DropoutKey
		inPlace bool
	}
	var list []dc
	keys := []device.DropoutKey{{Seed: 42, Step: 0, Layer: 0}, {Seed: 0xdeadbeefcafe, Step: 1<<32 + 7, Layer: 6}}
	for _, n := range []int{1, 4097, 100003} {
		for _, k := range keys {
			list = append(list, dc{n, 0.5, k, false})
		}
	}
	list = append(list, dc{4097, 0.5, keys[1], true}, dc{1031, 0.1, keys[0], false}, dc{1031, 0.9, keys[1], false}, dc{257, 0, keys[0], false})
	var cs []Case
	for _, c := range list {
		c := c
		shape := fmt.Sprintf("n=%d p=%g seed=%#x step=%d layer=%d in-place=%v", c.n, c.p, c.key.Seed, c.key.Step, c.key.Layer, c.inPlace)
		for _, op := range []string{"DropoutForward", "DropoutBackward"} {
			cs = append(cs, Case{op, shape, func(d device.Device) Result {
				h := newHarness(d, op, shape)
				x := h.normal(c.n, 1) // (n), x or dy
				for i := range x {
					if x[i] == 0 {
						x[i] = 1 // keep zeros out so a zero output means a dropped element
					}
				}
				X := h.upload(x)
				Y := X
				if !c.inPlace {
					Y = h.garbage(c.n)
				}
				if op == "DropoutForward" {
					h.run(op, func() error { return d.DropoutForward(X, Y, c.n, c.p, c.key) })
				} else {
					h.run(op, func() error { return d.DropoutBackward(X, Y, c.n, c.p, c.key) })
				}
				got := h.read(Y, c.n)
				want := make([]float32, c.n)
				ref.DropoutForward(x, want, c.p, c.key)
				if !h.failed() && c.p > 0 {
					thr := device.DropoutThreshold(c.p)
					for i := range got {
						if keep := device.DropoutKeep(c.key, uint32(i), thr); keep != (got[i] != 0) {
							h.res.BadIndex = i
							h.fail("mask[%d]: got %v (output %g), want %v", i, !keep, got[i], keep)
							break
						}
					}
				}
				h.expectExact("y", got, want)
				return h.finish()
			}})
		}
	}
	return cs
}

// ---------------------------------------------------------------------------
// Softmax cross-entropy

// softmaxCases checks loss, rank and dlogits, including logits large
// enough to overflow a naive exp and logits with ties around the label.
func softmaxCases() []Case {
	type sc struct {
		n, classes int
		kind       string // "normal", "big", "ties", "negative", "nan"
		noGrad     bool
	}
	list := []sc{
		{1, 1, "normal", false}, {1, 2, "normal", false}, {7, 13, "normal", false}, {130, 10, "normal", false},
		{3, 1000, "normal", false}, {5, 37, "big", false}, {64, 7, "ties", false}, {9, 5, "ties", true},
		{4, 33, "negative", false}, {6, 10, "nan", false},
	}
	var cs []Case
	for _, c := range list {
		c := c
		shape := fmt.Sprintf("n=%d classes=%d %s dlogits=%v", c.n, c.classes, c.kind, !c.noGrad)
		cs = append(cs, Case{"SoftmaxCrossEntropy", shape, func(d device.Device) Result {
			h := newHarness(d, "SoftmaxCrossEntropy", shape)
			n, classes := c.n, c.classes
			var logits []float32 // (n, classes)
			switch c.kind {
			case "big":
				logits = h.normal(n*classes, 1000) // exp(1000) overflows float32 and float64
			case "ties":
				logits = h.few(n*classes, 3)
			case "negative":
				logits = h.gen("negative", n*classes, 50)
			default:
				logits = h.normal(n*classes, 3)
			}
			labels := make([]int32, n) // (n)
			for i := range labels {
				labels[i] = int32(h.rng.IntN(classes))
			}
			if c.kind == "nan" {
				// Weights gone to NaN: a NaN label logit (rows 0, 3), a NaN
				// elsewhere (rows 1, 4), none (rows 2, 5). No hit may come
				// of a NaN.
				for i := 0; i < n; i++ {
					switch i % 3 {
					case 0:
						logits[i*classes+int(labels[i])] = float32(math.NaN())
					case 1:
						logits[i*classes+(int(labels[i])+1+i)%classes] = float32(math.NaN())
					}
				}
			}
			L, LAB, LOSS, RANK := h.upload(logits), h.uploadInt32(labels), h.garbage(n), h.garbage(n)
			var DL device.Buffer
			if !c.noGrad {
				DL = h.garbage(n * classes)
			}
			h.run("SoftmaxCrossEntropy", func() error { return d.SoftmaxCrossEntropy(L, LAB, LOSS, RANK, DL, n, classes) })
			loss, rank := make([]float64, n), make([]int32, n)
			var dl []float64
			if !c.noGrad {
				dl = make([]float64, n*classes)
			}
			ref.SoftmaxCrossEntropy(f64(logits), labels, loss, rank, dl, n, classes)
			sumErr := 2 * float64(classes+8) * eps
			h.expect("loss", h.read(LOSS, n), loss, nil, sumErr, 8*eps)
			h.expectInt32("rank", h.readInt32(RANK, n), rank)
			if c.kind == "nan" {
				for i, r := range rank {
					if i%3 != 2 && r < 1 || i%3 == 0 && r != int32(classes) {
						h.fail("ref.SoftmaxCrossEntropy: row %d (NaN logits) has rank %d: a NaN must not be a hit", i, r)
					}
				}
			}
			if !c.noGrad {
				h.expect("dlogits", h.read(DL, n*classes), dl, nil, sumErr/float64(n), 4*eps)
			}
			return h.finish()
		}})
	}
	return cs
}

// ---------------------------------------------------------------------------
// SGD

// sgdCases checks one update from a non-zero velocity.
func sgdCases() []Case {
	list := []struct {
		n int
		p device.SGDParams
	}{
		{1, device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}},
		{4097, device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}},
		{1031, device.SGDParams{LR: 0.5, Momentum: 0, WeightDecay: 0}},
		{65, device.SGDParams{LR: 1e-3, Momentum: 0.99, WeightDecay: 0.1}},
	}
	var cs []Case
	for _, c := range list {
		n, p := c.n, c.p
		shape := fmt.Sprintf("n=%d lr=%g momentum=%g weight_decay=%g", n, p.LR, p.Momentum, p.WeightDecay)
		cs = append(cs, Case{"SGDUpdate", shape, func(d device.Device) Result {
			h := newHarness(d, "SGDUpdate", shape)
			w, g, v := h.normal(n, 1), h.normal(n, 1), h.normal(n, 0.01) // (n) each
			W, G, V := h.upload(w), h.upload(g), h.upload(v)
			h.run("SGDUpdate", func() error { return d.SGDUpdate(W, G, V, n, p) })
			wantW, wantV := f64(w), f64(v)
			ref.SGDUpdate(wantW, f64(g), wantV, p)
			// Magnitudes of the terms: |m·v| + |wd·lr·w| + |lr·g| for v; |w| + that for w.
			bv, bw := make([]float64, n), make([]float64, n)
			for i := range bv {
				bv[i] = math.Abs(float64(p.Momentum)*float64(v[i])) + math.Abs(float64(p.WeightDecay)*float64(p.LR)*float64(w[i])) + math.Abs(float64(p.LR)*float64(g[i]))
				bw[i] = math.Abs(float64(w[i])) + bv[i]
			}
			h.expect("v", h.read(V, n), wantV, bv, 4*eps, 0)
			h.expect("w", h.read(W, n), wantW, bw, 4*eps, 0)
			h.expectExact("g (unchanged)", h.read(G, n), g)
			return h.finish()
		}})
	}
	return cs
}

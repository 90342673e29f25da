package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/devicetest"
	"github.com/alexcl/alexcl/device/ref"
)

// winoShapes are 3×3, stride-1, pad-1 convolutions (the Winograd path) of
// awkward sizes: odd and even H and W, 1×1 and prime spatial sizes, groups,
// one channel in or out, batch 1, and enough samples for several chunks.
var winoShapes = []device.ConvShape{
	{N: 1, C: 1, H: 1, W: 1, K: 1, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 1, C: 3, H: 1, W: 1, K: 5, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 2, C: 1, H: 7, W: 11, K: 4, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 1, C: 5, H: 6, W: 8, K: 1, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 3, C: 6, H: 13, W: 13, K: 10, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
	{N: 1, C: 4, H: 2, W: 3, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
	{N: 5, C: 7, H: 5, W: 2, K: 3, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 1, C: 2, H: 1, W: 9, K: 2, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
	{N: 19, C: 37, H: 6, W: 6, K: 19, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 2, C: 130, H: 13, W: 13, K: 66, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
}

// winoTol is device/devicetest's convolution tolerance: |got − want| ≤
// SumTol(n)·Σ|terms| + 2·eps·|want|, n the terms of one output.
func winoTol(n int) float64 { return devicetest.SumTol(n) }

func abs64s(s []float32) []float64 {
	o := f64s(s)
	for i, v := range o {
		o[i] = math.Abs(v)
	}
	return o
}

func expectBound(t *testing.T, what string, s device.ConvShape, got []float32, want, bound []float64, n int) {
	t.Helper()
	const eps = 1.0 / (1 << 23)
	for i, g := range got {
		diff := math.Abs(float64(g) - want[i])
		if tol := winoTol(n)*bound[i] + 2*eps*math.Abs(want[i]); !(diff <= tol) {
			t.Fatalf("%s %+v: [%d] got %.9g, want %.9g (|diff| %.3g > tolerance %.3g)", what, s, i, g, want[i], diff, tol)
		}
	}
}

// TestWinogradCrossCheck runs the Winograd forward, backward-data and
// filter-gradient paths against device/ref in float64 with the device test suite's tolerance, on
// the host-sized device and on one with 13 workers (identical bits).
func TestWinogradCrossCheck(t *testing.T) {
	if winogradOff {
		t.Skip("ALEXCL_WINOGRAD=off")
	}
	// The default chunking, then one sample a chunk (the filter gradient
	// accumulating over chunks).
	saved := winoBudget
	defer func() { winoBudget = saved }()
	for _, budget := range []int{saved, 1} {
		winoBudget = budget
		testWinogradCrossCheck(t)
	}
}

func testWinogradCrossCheck(t *testing.T) {
	type out struct{ y, dx, dw []float32 }
	results := map[int][]out{}
	for di, d := range devices(t) {
		rng := rand.New(rand.NewPCG(9, 9))
		for _, s := range winoShapes {
			if !d.useWinograd(s) {
				t.Fatalf("%+v does not take the Winograd path", s)
			}
			nx, nw, ny := s.N*s.C*s.H*s.W, s.K*(s.C/s.Groups)*9, s.N*s.K*s.H*s.W
			X, Wt, Bv, DY := randF32(rng, nx), randF32(rng, nw), randF32(rng, s.K), randF32(rng, ny)
			x, w, b, dy := d.up(X), d.up(Wt), d.up(Bv), d.up(DY)
			y, dx := d.up(randF32(rng, ny)), d.up(randF32(rng, nx))
			DW0, DB0 := randF32(rng, nw), randF32(rng, s.K)
			dw, db := d.up(DW0), d.up(DB0)
			d.must(d.Conv2DForward(x, w, b, y, s))
			d.must(d.Conv2DBackwardData(dy, w, dx, s))
			d.must(d.Conv2DBackwardFilter(x, dy, dw, db, s))
			o := out{d.down(y, ny), d.down(dx, nx), d.down(dw, nw)}
			results[di] = append(results[di], o)

			want, bound := make([]float64, ny), make([]float64, ny)
			ref.Conv2DForward(f64s(X), f64s(Wt), f64s(Bv), want, s)
			ref.Conv2DForward(abs64s(X), abs64s(Wt), abs64s(Bv), bound, s)
			expectBound(t, "winograd forward", s, o.y, want, bound, s.C/s.Groups*9+1)

			wantX, boundX := make([]float64, nx), make([]float64, nx)
			ref.Conv2DBackwardData(f64s(DY), f64s(Wt), wantX, s)
			ref.Conv2DBackwardData(abs64s(DY), abs64s(Wt), boundX, s)
			expectBound(t, "winograd backward data", s, o.dx, wantX, boundX, s.K/s.Groups*9)

			// The filter gradient accumulates onto DW0.
			wantW, boundW := f64s(DW0), abs64s(DW0)
			ref.Conv2DBackwardFilter(f64s(X), f64s(DY), wantW, make([]float64, s.K), s)
			ref.Conv2DBackwardFilter(abs64s(X), abs64s(DY), boundW, make([]float64, s.K), s)
			expectBound(t, "winograd filter gradient", s, o.dw, wantW, boundW, s.N*s.H*s.W+1)
			for _, bf := range []device.Buffer{x, w, b, dy, y, dx, dw, db} {
				d.must(d.Free(bf))
			}
		}
	}
	for i, s := range winoShapes {
		bitsEqual(t, "winograd forward", s, results[0][i].y, results[1][i].y)
		bitsEqual(t, "winograd backward data", s, results[0][i].dx, results[1][i].dx)
		bitsEqual(t, "winograd filter gradient", s, results[0][i].dw, results[1][i].dw)
	}
}

// miniConv4 is the mini net's conv4 (384→256, 3×3, pad 1, 6×6) at batch 128.
var miniConv4 = device.ConvShape{N: 128, C: 384, H: 6, W: 6, K: 256, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}

// BenchmarkMiniConv4Forward is its forward pass (Winograd unless
// ALEXCL_WINOGRAD=off).
func BenchmarkMiniConv4Forward(b *testing.B) { benchConv(b, miniConv4, "forward") }

// BenchmarkMiniConv4BackwardFilter is its filter gradient (im2col + GEMM).
func BenchmarkMiniConv4BackwardFilter(b *testing.B) { benchConv(b, miniConv4, "filter") }

// BenchmarkMiniConv4BackwardData is its data gradient.
func BenchmarkMiniConv4BackwardData(b *testing.B) { benchConv(b, miniConv4, "data") }

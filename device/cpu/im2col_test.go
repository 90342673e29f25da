package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/alexcl/alexcl/device"
)

// benchShapes are mini's conv2 (64×13×13, 5×5 pad 2) and conv4 (384×6×6,
// 3×3 pad 1) and paper's conv1 (3×227×227, 11×11 stride 4), one sample.
var benchShapes = []device.ConvShape{
	{N: 1, C: 64, H: 13, W: 13, K: 192, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 1},
	{N: 1, C: 384, H: 6, W: 6, K: 256, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 1, C: 3, H: 227, W: 227, K: 96, R: 11, S: 11, Stride: 4, Pad: 0, Groups: 1},
}

// benchColumns runs fn(x, col, ld) on one sample of s, reporting column
// floats a second.
func benchColumns(b *testing.B, name string, s device.ConvShape, fn func(x, col []float32, ld int)) {
	b.Run(fmt.Sprintf("%s%dx%dx%d_%dx%d", name, s.C, s.H, s.W, s.R, s.S), func(b *testing.B) {
		x := make([]float32, s.C*s.H*s.W)
		P := s.OH() * s.OW()
		col := make([]float32, s.C*s.R*s.S*P)
		for b.Loop() {
			fn(x, col, P)
		}
		b.ReportMetric(float64(len(col))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
	})
}

// BenchmarkIm2col times one sample's columns for benchShapes.
func BenchmarkIm2col(b *testing.B) {
	for _, s := range benchShapes {
		benchColumns(b, "", s, func(x, col []float32, ld int) { im2col(x, col, ld, s) })
	}
}

// BenchmarkCol2im times one sample's col2im for the stride-1 benchShapes,
// the dispatching function and the loop path.
func BenchmarkCol2im(b *testing.B) {
	for _, s := range benchShapes[:2] {
		benchColumns(b, "", s, func(x, col []float32, ld int) { col2im(col, ld, x, s) })
		benchColumns(b, "loops_", s, func(x, col []float32, ld int) { col2imLoops(col, ld, x, s) })
	}
}

// TestIm2colMasked checks the masked im2col and col2im against the loop
// paths, bit for bit, on output rows of 1 to 32 floats, pads wider than the
// filter, and a column stride wider than the rows.
func TestIm2colMasked(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512: the masked path does not run here")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range []device.ConvShape{
		{C: 3, H: 13, W: 13, R: 5, S: 5, Pad: 2},
		{C: 2, H: 6, W: 6, R: 3, S: 3, Pad: 1},
		{C: 1, H: 1, W: 1, R: 1, S: 1},
		{C: 2, H: 5, W: 16, R: 3, S: 3, Pad: 1},
		{C: 2, H: 4, W: 17, R: 3, S: 3, Pad: 1},
		{C: 1, H: 3, W: 30, R: 3, S: 3, Pad: 2},
		{C: 2, H: 3, W: 28, R: 1, S: 5, Pad: 2},
		{C: 1, H: 2, W: 3, R: 5, S: 5, Pad: 4},
		{C: 3, H: 9, W: 7, R: 2, S: 4, Pad: 0},
	} {
		s.N, s.K, s.Groups, s.Stride = 1, 1, 1, 1
		if s.OW() > 32 {
			t.Fatalf("%+v: OW %d > 32 would not take the masked path", s, s.OW())
		}
		x := make([]float32, s.C*s.H*s.W)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		P, rows := s.OH()*s.OW(), s.C*s.R*s.S
		ld := P + 3
		got, want := make([]float32, rows*ld), make([]float32, rows*ld)
		for i := range got {
			got[i], want[i] = float32(math.NaN()), float32(math.NaN())
		}
		im2colMasked(x, got, ld, s, rows)
		im2colLoops(x, want, ld, s, rows, false)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: col[%d] (row %d, column %d) = %v, want %v", s, i, i/ld, i%ld, got[i], want[i])
			}
		}

		// col2im of random columns, the sums in the same order.
		for i := range got {
			got[i] = float32(r.NormFloat64())
		}
		dxGot, dxWant := make([]float32, len(x)+1), make([]float32, len(x)+1)
		dxGot[len(x)], dxWant[len(x)] = 3, 3
		col2imMasked(got, ld, dxGot[:len(x)], s)
		col2imLoops(got, ld, dxWant[:len(x)], s)
		for i := range dxGot {
			if math.Float32bits(dxGot[i]) != math.Float32bits(dxWant[i]) {
				t.Fatalf("%+v: col2im dx[%d] = %v, want %v", s, i, dxGot[i], dxWant[i])
			}
		}
	}
}

// TestIm2colGather checks the gathered strided rows against the loop, bit
// for bit, on strides 2 to 4 and rows around the 16-float step.
func TestIm2colGather(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512: the gathers do not run here")
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range []device.ConvShape{
		{C: 3, H: 227, W: 227, R: 11, S: 11, Stride: 4},
		{C: 2, H: 9, W: 9, R: 3, S: 3, Stride: 2, Pad: 1},
		{C: 1, H: 40, W: 37, R: 5, S: 3, Stride: 3, Pad: 2},
		{C: 2, H: 5, W: 66, R: 2, S: 2, Stride: 2},
		{C: 1, H: 3, W: 3, R: 3, S: 3, Stride: 2},
	} {
		s.N, s.K, s.Groups = 1, 1, 1
		x := make([]float32, s.C*s.H*s.W)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		P, rows := s.OH()*s.OW(), s.C*s.R*s.S
		got, want := make([]float32, rows*P), make([]float32, rows*P)
		im2colLoops(x, got, P, s, rows, true)
		im2colLoops(x, want, P, s, rows, false)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: col[%d] = %v, want %v", s, i, got[i], want[i])
			}
		}
	}
}

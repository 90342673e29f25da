package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/alexcl/alexcl/device"
)

// Run with: go test -run '^$' -bench . ./device/cpu/

func benchGemm(b *testing.B, M, N, K int, tA, tB bool) {
	d := testDevice{New(), &testing.T{}}
	defer d.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	A, B, C := d.up(randF32(rng, M*K)), d.up(randF32(rng, K*N)), d.up(make([]float32, M*N))
	b.ResetTimer()
	for b.Loop() {
		if err := d.Gemm(tA, tB, M, N, K, 1, A, B, 0, C); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(M)*float64(N)*float64(K)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGemm1024 is a square 1024³ float32 GEMM.
func BenchmarkGemm1024(b *testing.B) { benchGemm(b, 1024, 1024, 1024, false, false) }

// BenchmarkGemm1024TT is the same with both operands transposed.
func BenchmarkGemm1024TT(b *testing.B) { benchGemm(b, 1024, 1024, 1024, true, true) }

// alexConv2 is AlexNet's conv2 (96→256, 5×5, pad 2, groups 2) at batch 8.
var alexConv2 = device.ConvShape{N: 8, C: 96, H: 27, W: 27, K: 256, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2}

func convFlops(s device.ConvShape) float64 {
	return 2 * float64(s.N*s.K*s.OH()*s.OW()) * float64(s.C/s.Groups*s.R*s.S)
}

func benchConv(b *testing.B, s device.ConvShape, pass string) {
	d := testDevice{New(), &testing.T{}}
	defer d.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	nx, nw, ny := s.N*s.C*s.H*s.W, s.K*(s.C/s.Groups)*s.R*s.S, s.N*s.K*s.OH()*s.OW()
	x, w, bias := d.up(randF32(rng, nx)), d.up(randF32(rng, nw)), d.up(randF32(rng, s.K))
	y, dx, dw := d.up(randF32(rng, ny)), d.up(make([]float32, nx)), d.up(make([]float32, nw))
	b.ResetTimer()
	for b.Loop() {
		var err error
		switch pass {
		case "forward":
			err = d.Conv2DForward(x, w, bias, y, s)
		case "data":
			err = d.Conv2DBackwardData(y, w, dx, s)
		case "filter":
			err = d.Conv2DBackwardFilter(x, y, dw, bias, s)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(convFlops(s)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkConv2Forward is AlexNet conv2's forward pass at batch 8.
func BenchmarkConv2Forward(b *testing.B) { benchConv(b, alexConv2, "forward") }

// BenchmarkConv2BackwardData is AlexNet conv2's data gradient at batch 8.
func BenchmarkConv2BackwardData(b *testing.B) { benchConv(b, alexConv2, "data") }

// BenchmarkConv2BackwardFilter is AlexNet conv2's filter gradient at batch 8.
func BenchmarkConv2BackwardFilter(b *testing.B) { benchConv(b, alexConv2, "filter") }

// paperPool1 and paperLRN1 are AlexNet's first pooling and LRN layers at batch 32.
var (
	paperPool1 = device.PoolShape{N: 32, C: 96, H: 55, W: 55, Size: 3, Stride: 2}
	paperLRN1  = device.LRNShape{N: 32, C: 96, H: 55, W: 55, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2}
)

// BenchmarkMaxPoolForward is paper AlexNet's first max pooling at batch 32.
func BenchmarkMaxPoolForward(b *testing.B) {
	d := testDevice{New(), &testing.T{}}
	defer d.Close()
	s := paperPool1
	rng := rand.New(rand.NewPCG(3, 4))
	x := d.up(randF32(rng, s.N*s.C*s.H*s.W))
	y, idx := d.up(make([]float32, s.N*s.C*s.OH()*s.OW())), d.up(make([]float32, s.N*s.C*s.OH()*s.OW()))
	for b.Loop() {
		if err := d.MaxPoolForward(x, y, idx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.N*s.C*s.H*s.W)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

func benchLRN(b *testing.B, backward bool) { benchLRNShape(b, paperLRN1, backward) }

// BenchmarkLRNForward is paper AlexNet's first LRN at batch 32.
func BenchmarkLRNForward(b *testing.B) { benchLRN(b, false) }

// BenchmarkLRNBackward is its backward pass.
func BenchmarkLRNBackward(b *testing.B) { benchLRN(b, true) }

// miniConv2 is the mini net's conv2 (64→192, 5×5, pad 2) at batch 128.
var miniConv2 = device.ConvShape{N: 128, C: 64, H: 13, W: 13, K: 192, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 1}

// BenchmarkMiniConv2Forward is the mini net's conv2 forward pass at batch 128.
func BenchmarkMiniConv2Forward(b *testing.B) { benchConv(b, miniConv2, "forward") }

// BenchmarkMiniConv2BackwardData is its data gradient.
func BenchmarkMiniConv2BackwardData(b *testing.B) { benchConv(b, miniConv2, "data") }

// BenchmarkMiniConv2BackwardFilter is its filter gradient.
func BenchmarkMiniConv2BackwardFilter(b *testing.B) { benchConv(b, miniConv2, "filter") }

// BenchmarkMiniMaxPool2Forward is mini's second max pooling at batch 128.
func BenchmarkMiniMaxPool2Forward(b *testing.B) {
	d := testDevice{New(), &testing.T{}}
	defer d.Close()
	s := device.PoolShape{N: 128, C: 192, H: 13, W: 13, Size: 3, Stride: 2}
	rng := rand.New(rand.NewPCG(3, 4))
	x := d.up(randF32(rng, s.N*s.C*s.H*s.W))
	y, idx := d.up(make([]float32, s.N*s.C*s.OH()*s.OW())), d.up(make([]float32, s.N*s.C*s.OH()*s.OW()))
	for b.Loop() {
		if err := d.MaxPoolForward(x, y, idx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.N*s.C*s.H*s.W)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

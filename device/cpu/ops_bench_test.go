package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/alexcl/alexcl/device"
)

// The mini net's LRN and pooling layers at batch 128, the shapes `alexcl
// bench --device cpu --preset mini --batch 128` reports as features.2, .3,
// .6 and .7. Run with:
//
//	go test -run '^$' -bench 'Mini(LRN|Pool)' -count 5 ./device/cpu/

var (
	miniLRN1  = device.LRNShape{N: 128, C: 64, H: 28, W: 28, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2}
	miniLRN2  = device.LRNShape{N: 128, C: 192, H: 13, W: 13, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2}
	miniPool1 = device.PoolShape{N: 128, C: 64, H: 28, W: 28, Size: 3, Stride: 2}
	miniPool2 = device.PoolShape{N: 128, C: 192, H: 13, W: 13, Size: 3, Stride: 2}
)

func benchLRNShape(b *testing.B, s device.LRNShape, backward bool) {
	d := testDevice{New(), &testing.T{}}
	defer d.Close()
	n := s.N * s.C * s.H * s.W
	rng := rand.New(rand.NewPCG(3, 4))
	x, y, sc, dy, dx := d.up(randF32(rng, n)), d.up(make([]float32, n)), d.up(make([]float32, n)), d.up(randF32(rng, n)), d.up(make([]float32, n))
	d.must(d.LRNForward(x, y, sc, s))
	for b.Loop() {
		var err error
		if backward {
			err = d.LRNBackward(x, y, sc, dy, dx, s)
		} else {
			err = d.LRNForward(x, y, sc, s)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// benchPoolShape times MaxPoolForward on uniform [−1, 1) inputs, or with
// relu on their positive parts, as the net pools ReLU (and LRN) outputs.
func benchPoolShape(b *testing.B, s device.PoolShape, relu bool) {
	d := testDevice{New(), &testing.T{}}
	defer d.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	xs := randF32(rng, s.N*s.C*s.H*s.W)
	if relu {
		for i, v := range xs {
			xs[i] = max(v, 0)
		}
	}
	x := d.up(xs)
	y, idx := d.up(make([]float32, s.N*s.C*s.OH()*s.OW())), d.up(make([]float32, s.N*s.C*s.OH()*s.OW()))
	for b.Loop() {
		if err := d.MaxPoolForward(x, y, idx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.N*s.C*s.H*s.W)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// BenchmarkMiniLRN1Forward is mini's features.2 (128×64×28×28).
func BenchmarkMiniLRN1Forward(b *testing.B) { benchLRNShape(b, miniLRN1, false) }

// BenchmarkMiniLRN1Backward is its backward pass.
func BenchmarkMiniLRN1Backward(b *testing.B) { benchLRNShape(b, miniLRN1, true) }

// BenchmarkMiniLRN2Forward is mini's features.6 (128×192×13×13).
func BenchmarkMiniLRN2Forward(b *testing.B) { benchLRNShape(b, miniLRN2, false) }

// BenchmarkMiniLRN2Backward is its backward pass.
func BenchmarkMiniLRN2Backward(b *testing.B) { benchLRNShape(b, miniLRN2, true) }

// BenchmarkMiniPool1Forward is mini's features.3, 3×3/2 on 128×64×28×28,
// on non-negative inputs as in the net.
func BenchmarkMiniPool1Forward(b *testing.B) { benchPoolShape(b, miniPool1, true) }

// BenchmarkMiniPool1ForwardSigned is the same on inputs of both signs.
func BenchmarkMiniPool1ForwardSigned(b *testing.B) { benchPoolShape(b, miniPool1, false) }

// BenchmarkMiniPool2Forward is mini's features.7, 3×3/2 on 128×192×13×13,
// on non-negative inputs (BenchmarkMiniMaxPool2Forward has both signs).
func BenchmarkMiniPool2Forward(b *testing.B) { benchPoolShape(b, miniPool2, true) }

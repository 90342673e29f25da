package devicetest_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/device/devicetest"
)

// The suite must fail a device with a bug, never just report it. Each
// mutant below is the CPU device with one plausible bug; the cases of the
// named ops must fail on it.

// mutant wraps the CPU device; its fields replace single methods.
type mutant struct {
	*cpu.Device
	gemm       func(d *cpu.Device, tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error
	biasGrad   func(d *cpu.Device, dy, db device.Buffer, rows, cols int) error
	convFilter func(d *cpu.Device, x, dy, dw, db device.Buffer, s device.ConvShape) error
	poolFwd    func(d *cpu.Device, x, y, idx device.Buffer, s device.PoolShape) error
	lrnFwd     func(d *cpu.Device, x, y, scale device.Buffer, s device.LRNShape) error
	lrnBwd     func(d *cpu.Device, x, y, scale, dy, dx device.Buffer, s device.LRNShape) error
	dropFwd    func(d *cpu.Device, x, y device.Buffer, n int, p float32, key device.DropoutKey) error
	softmax    func(d *cpu.Device, logits, labels, loss, rank, dlogits device.Buffer, n, classes int) error
	sgd        func(d *cpu.Device, w, g, v device.Buffer, n int, p device.SGDParams) error
	free       func(d *cpu.Device, b device.Buffer) error
	write      func(d *cpu.Device, dst device.Buffer, off int, src []byte) error
}

func (m *mutant) Gemm(tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error {
	if m.gemm != nil {
		return m.gemm(m.Device, tA, tB, M, N, K, alpha, A, B, beta, C)
	}
	return m.Device.Gemm(tA, tB, M, N, K, alpha, A, B, beta, C)
}

func (m *mutant) BiasGrad(dy, db device.Buffer, rows, cols int) error {
	if m.biasGrad != nil {
		return m.biasGrad(m.Device, dy, db, rows, cols)
	}
	return m.Device.BiasGrad(dy, db, rows, cols)
}

func (m *mutant) Conv2DBackwardFilter(x, dy, dw, db device.Buffer, s device.ConvShape) error {
	if m.convFilter != nil {
		return m.convFilter(m.Device, x, dy, dw, db, s)
	}
	return m.Device.Conv2DBackwardFilter(x, dy, dw, db, s)
}

func (m *mutant) MaxPoolForward(x, y, idx device.Buffer, s device.PoolShape) error {
	if m.poolFwd != nil {
		return m.poolFwd(m.Device, x, y, idx, s)
	}
	return m.Device.MaxPoolForward(x, y, idx, s)
}

func (m *mutant) LRNForward(x, y, scale device.Buffer, s device.LRNShape) error {
	if m.lrnFwd != nil {
		return m.lrnFwd(m.Device, x, y, scale, s)
	}
	return m.Device.LRNForward(x, y, scale, s)
}

func (m *mutant) LRNBackward(x, y, scale, dy, dx device.Buffer, s device.LRNShape) error {
	if m.lrnBwd != nil {
		return m.lrnBwd(m.Device, x, y, scale, dy, dx, s)
	}
	return m.Device.LRNBackward(x, y, scale, dy, dx, s)
}

func (m *mutant) DropoutForward(x, y device.Buffer, n int, p float32, key device.DropoutKey) error {
	if m.dropFwd != nil {
		return m.dropFwd(m.Device, x, y, n, p, key)
	}
	return m.Device.DropoutForward(x, y, n, p, key)
}

func (m *mutant) SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits device.Buffer, n, classes int) error {
	if m.softmax != nil {
		return m.softmax(m.Device, logits, labels, loss, rank, dlogits, n, classes)
	}
	return m.Device.SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits, n, classes)
}

func (m *mutant) SGDUpdate(w, g, v device.Buffer, n int, p device.SGDParams) error {
	if m.sgd != nil {
		return m.sgd(m.Device, w, g, v, n, p)
	}
	return m.Device.SGDUpdate(w, g, v, n, p)
}

func (m *mutant) Free(b device.Buffer) error {
	if m.free != nil {
		return m.free(m.Device, b)
	}
	return m.Device.Free(b)
}

func (m *mutant) Write(dst device.Buffer, off int, src []byte) error {
	if m.write != nil {
		return m.write(m.Device, dst, off, src)
	}
	return m.Device.Write(dst, off, src)
}

// edit reads n float32 of b, applies f and writes them back.
func edit(d device.Device, b device.Buffer, n int, f func([]float32)) error {
	v, err := device.ReadFloat32(d, b, n)
	if err != nil {
		return err
	}
	f(v)
	return d.Write(b, 0, device.Float32Bytes(v))
}

func TestSuiteCatchesBugs(t *testing.T) {
	mutants := []struct {
		name string
		ops  string // the ops whose cases must fail, separated by commas
		m    *mutant
	}{
		{"gemm reads C when beta is 0", "Gemm", &mutant{gemm: func(d *cpu.Device, tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error {
			if beta == 0 {
				beta = 1e-38 // beta·NaN garbage leaks
			}
			return d.Gemm(tA, tB, M, N, K, alpha, A, B, beta, C)
		}}},
		{"gemm drops the last term of the dot product", "Gemm", &mutant{gemm: func(d *cpu.Device, tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error {
			if tA && !tB && K > 1 { // A (K, M) and B (K, N): the first K−1 rows are a valid problem
				K--
			}
			return d.Gemm(tA, tB, M, N, K, alpha, A, B, beta, C)
		}}},
		{"bias grad overwrites", "BiasGrad", &mutant{biasGrad: func(d *cpu.Device, dy, db device.Buffer, rows, cols int) error {
			d.Fill(db, 0)
			return d.BiasGrad(dy, db, rows, cols)
		}}},
		{"conv filter grad overwrites", "Conv2DBackwardFilter", &mutant{convFilter: func(d *cpu.Device, x, dy, dw, db device.Buffer, s device.ConvShape) error {
			d.Fill(dw, 0)
			return d.Conv2DBackwardFilter(x, dy, dw, db, s)
		}}},
		{"conv filter grad off by a few ulp on one tap", "Conv2DBackwardFilter", &mutant{convFilter: func(d *cpu.Device, x, dy, dw, db device.Buffer, s device.ConvShape) error {
			if err := d.Conv2DBackwardFilter(x, dy, dw, db, s); err != nil {
				return err
			}
			// One of N·OH·OW terms missing is what a tiling bug looks like; here
			// the error is a hundredth of the whole gradient on the last tap.
			return edit(d, dw, s.K*s.C/s.Groups*s.R*s.S, func(v []float32) { v[len(v)-1] *= 1.01 })
		}}},
		{"max pool keeps the last of equal maxima", "MaxPoolForward", &mutant{poolFwd: func(d *cpu.Device, x, y, idx device.Buffer, s device.PoolShape) error {
			if err := d.MaxPoolForward(x, y, idx, s); err != nil {
				return err
			}
			xs, _ := device.ReadFloat32(d, x, s.N*s.C*s.H*s.W)
			OH, OW := s.OH(), s.OW()
			ix := make([]int32, s.N*s.C*OH*OW)
			for nc := 0; nc < s.N*s.C; nc++ {
				for oh := 0; oh < OH; oh++ {
					for ow := 0; ow < OW; ow++ {
						best, at := float32(math.Inf(-1)), 0
						for r := 0; r < s.Size; r++ {
							for q := 0; q < s.Size; q++ {
								p := (oh*s.Stride+r)*s.W + ow*s.Stride + q
								if v := xs[nc*s.H*s.W+p]; v >= best {
									best, at = v, p
								}
							}
						}
						ix[(nc*OH+oh)*OW+ow] = int32(at)
					}
				}
			}
			return d.Write(idx, 0, device.Int32Bytes(ix))
		}}},
		{"lrn alpha not divided by size", "LRNForward", &mutant{lrnFwd: func(d *cpu.Device, x, y, scale device.Buffer, s device.LRNShape) error {
			s.Alpha *= float32(s.Size)
			return d.LRNForward(x, y, scale, s)
		}}},
		{"lrn backward without the cross-channel term", "LRNBackward", &mutant{lrnBwd: func(d *cpu.Device, x, y, scale, dy, dx device.Buffer, s device.LRNShape) error {
			n := s.N * s.C * s.H * s.W
			sc, _ := device.ReadFloat32(d, scale, n)
			g, _ := device.ReadFloat32(d, dy, n)
			for i := range g {
				g[i] *= float32(math.Pow(float64(sc[i]), -float64(s.Beta)))
			}
			return d.Write(dx, 0, device.Float32Bytes(g))
		}}},
		{"dropout drops one element too many", "DropoutForward", &mutant{dropFwd: func(d *cpu.Device, x, y device.Buffer, n int, p float32, key device.DropoutKey) error {
			if err := d.DropoutForward(x, y, n, p, key); err != nil {
				return err
			}
			return edit(d, y, n, func(v []float32) { v[n/2] = 0 })
		}}},
		{"softmax ranks ties to the higher class", "SoftmaxCrossEntropy", &mutant{softmax: func(d *cpu.Device, logits, labels, loss, rank, dlogits device.Buffer, n, classes int) error {
			if err := d.SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits, n, classes); err != nil {
				return err
			}
			z, _ := device.ReadFloat32(d, logits, n*classes)
			lab, _ := device.ReadInt32(d, labels, n)
			r := make([]int32, n)
			for i := range r {
				for c := 0; c < classes; c++ {
					if z[i*classes+c] > z[i*classes+int(lab[i])] || (z[i*classes+c] == z[i*classes+int(lab[i])] && c > int(lab[i])) {
						r[i]++
					}
				}
			}
			return d.Write(rank, 0, device.Int32Bytes(r))
		}}},
		{"sgd ignores weight decay", "SGDUpdate", &mutant{sgd: func(d *cpu.Device, w, g, v device.Buffer, n int, p device.SGDParams) error {
			p.WeightDecay = 0
			return d.SGDUpdate(w, g, v, n, p)
		}}},
		{"free leaks", "MemStats,Free,Write/Read", &mutant{free: func(d *cpu.Device, b device.Buffer) error { return nil }}},
		{"use after free not wrapping ErrFreed", "Free", &mutant{write: func(d *cpu.Device, dst device.Buffer, off int, src []byte) error {
			if err := d.Write(dst, off, src); err != nil {
				return errors.New(err.Error())
			}
			return nil
		}}},
	}
	all := append(devicetest.Cases(), devicetest.TorchCases()...)
	for _, mu := range mutants {
		t.Run(mu.name, func(t *testing.T) {
			mu.m.Device = cpu.New()
			defer mu.m.Device.Close()
			ops := strings.Split(mu.ops, ",")
			ran, failed := 0, 0
			for _, c := range all {
				match := false
				for _, op := range ops {
					match = match || c.Op == op
				}
				if !match {
					continue
				}
				ran++
				if r := c.Run(mu.m); r.Failed() {
					failed++
					if failed == 1 {
						t.Logf("caught by %s %s: %v", c.Op, c.Shape, r.Err)
					}
				}
			}
			if ran == 0 {
				t.Fatalf("no case checks %s", mu.ops)
			}
			if failed == 0 {
				t.Errorf("none of the %d cases of %s failed on a device with the bug %q", ran, mu.ops, mu.name)
			}
		})
	}
}

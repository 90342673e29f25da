package cpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
)

// Every op is run on the CPU device and on device/ref with the same random
// inputs; results must agree within abs + rel·|ref|. The device is also run
// with many more workers than the host has (the other partitioning path),
// and must give identical bits.

func randF32(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

// compare fails on the first element where got and want differ by more than
// abs + rel·|want| (NaN matches only NaN).
func compare(t *testing.T, op string, shape any, got, want []float32, abs, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s %+v: got %d elements, want %d", op, shape, len(got), len(want))
	}
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(w) && math.IsNaN(g) {
			continue
		}
		if !(math.Abs(g-w) <= abs+rel*math.Abs(w)) {
			t.Fatalf("%s %+v: first mismatch at [%d]: got %v, want %v (tolerance %g + %g·|want|)", op, shape, i, g, w, abs, rel)
		}
	}
}

func compareInt(t *testing.T, op string, shape any, got, want []int32) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s %+v: first mismatch at [%d]: got %d, want %d", op, shape, i, got[i], want[i])
		}
	}
}

func bitsEqual(t *testing.T, op string, shape any, a, b []float32) {
	t.Helper()
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s %+v: not deterministic at [%d]: %v vs %v", op, shape, i, a[i], b[i])
		}
	}
}

// testDevice wraps a Device with helpers that fail the test on error.
type testDevice struct {
	*Device
	t *testing.T
}

func (d testDevice) up(s []float32) device.Buffer {
	d.t.Helper()
	b, err := device.Upload(d, s)
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

func (d testDevice) upInt(s []int32) device.Buffer {
	d.t.Helper()
	b, err := device.UploadInt32(d, s)
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

func (d testDevice) down(b device.Buffer, n int) []float32 {
	d.t.Helper()
	s, err := device.ReadFloat32(d, b, n)
	if err != nil {
		d.t.Fatal(err)
	}
	return s
}

func (d testDevice) downInt(b device.Buffer, n int) []int32 {
	d.t.Helper()
	s, err := device.ReadInt32(d, b, n)
	if err != nil {
		d.t.Fatal(err)
	}
	return s
}

func (d testDevice) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// devices returns the host-sized device and one with 13 workers, which
// splits work differently (and, on a small host, takes the other branch of
// the per-sample/parallel-GEMM choice).
func devices(t *testing.T) []testDevice {
	d1 := New()
	d2 := New()
	d2.workers = 13
	t.Cleanup(func() { d1.Close(); d2.Close() })
	return []testDevice{{d1, t}, {d2, t}}
}

func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	type shape struct {
		M, N, K     int
		tA, tB      bool
		alpha, beta float32
	}
	var shapes []shape
	for _, mnk := range [][3]int{{1, 1, 1}, {3, 5, 7}, {17, 31, 13}, {64, 64, 64}, {65, 129, 257}, {100, 9, 300}, {4, 8, 600}, {1, 1000, 37}} {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, ab := range [][2]float32{{1, 0}, {0.5, 2}, {-1, 1}} {
				shapes = append(shapes, shape{mnk[0], mnk[1], mnk[2], tr[0], tr[1], ab[0], ab[1]})
			}
		}
	}
	var first []float32
	for di, d := range devices(t) {
		rng = rand.New(rand.NewPCG(1, 1)) // same inputs on both devices
		for si, s := range shapes {
			A, B, C := randF32(rng, s.M*s.K), randF32(rng, s.K*s.N), randF32(rng, s.M*s.N)
			if s.beta == 0 {
				for i := range C {
					C[i] = float32(math.NaN())
				}
			}
			a, b, c := d.up(A), d.up(B), d.up(C)
			d.must(d.Gemm(s.tA, s.tB, s.M, s.N, s.K, s.alpha, a, b, s.beta, c))
			got := d.down(c, s.M*s.N)
			ref.Gemm(s.tA, s.tB, s.M, s.N, s.K, s.alpha, A, B, s.beta, C)
			compare(t, "gemm", s, got, C, 1e-5*float64(s.K), 1e-4)
			if si == len(shapes)-1 {
				if di == 0 {
					first = got
				} else {
					bitsEqual(t, "gemm", s, first, got)
				}
			}
		}
	}
}

func TestGemmDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const M, N, K = 130, 260, 700
	A, B := randF32(rng, M*K), randF32(rng, K*N)
	var first []float32
	for _, d := range devices(t) {
		a, b, c := d.up(A), d.up(B), d.up(make([]float32, M*N))
		d.must(d.Gemm(false, true, M, N, K, 1, a, b, 0, c))
		got := d.down(c, M*N)
		if first == nil {
			first = got
		} else {
			bitsEqual(t, "gemm", [3]int{M, N, K}, first, got)
		}
	}
}

func TestBias(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, d := range devices(t) {
		for _, rc := range [][2]int{{1, 1}, {7, 13}, {128, 1000}, {3, 5000}} {
			rows, cols := rc[0], rc[1]
			Y, Bv, DB := randF32(rng, rows*cols), randF32(rng, cols), randF32(rng, cols)
			y, b, db := d.up(Y), d.up(Bv), d.up(DB)
			d.must(d.AddBias(y, b, rows, cols))
			d.must(d.BiasGrad(y, db, rows, cols))
			ref.AddBias(Y, Bv, rows, cols)
			ref.BiasGrad(Y, DB, rows, cols)
			compare(t, "add_bias", rc, d.down(y, rows*cols), Y, 0, 0)
			compare(t, "bias_grad", rc, d.down(db, cols), DB, 1e-5*float64(rows), 1e-5)
		}
	}
}

var convShapes = []device.ConvShape{
	{N: 1, C: 1, H: 3, W: 3, K: 1, R: 2, S: 2, Stride: 1, Groups: 1},
	{N: 2, C: 4, H: 7, W: 6, K: 4, R: 3, S: 2, Stride: 2, Pad: 1, Groups: 2},
	{N: 3, C: 3, H: 23, W: 19, K: 5, R: 11, S: 11, Stride: 4, Pad: 0, Groups: 1},
	{N: 1, C: 6, H: 13, W: 13, K: 10, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2},
	{N: 5, C: 8, H: 5, W: 7, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
	{N: 2, C: 7, H: 5, W: 5, K: 11, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1},
	{N: 1, C: 4, H: 6, W: 6, K: 4, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 2},
	{N: 17, C: 3, H: 9, W: 8, K: 2, R: 3, S: 4, Stride: 3, Pad: 2, Groups: 1},
	{N: 2, C: 16, H: 9, W: 9, K: 66, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
}

func TestConv(t *testing.T) {
	var rng *rand.Rand
	type out struct{ y, dx, dw, db []float32 }
	results := map[int][]out{}
	for di, d := range devices(t) {
		rng = rand.New(rand.NewPCG(4, 4)) // same inputs on both devices
		for _, s := range convShapes {
			nx, nw, ny := s.N*s.C*s.H*s.W, s.K*(s.C/s.Groups)*s.R*s.S, s.N*s.K*s.OH()*s.OW()
			X, Wt, Bv, DY := randF32(rng, nx), randF32(rng, nw), randF32(rng, s.K), randF32(rng, ny)
			DW, DB := randF32(rng, nw), randF32(rng, s.K)
			Y := randF32(rng, ny)
			DX := randF32(rng, nx)
			x, w, b, dy, dw, db, y, dx := d.up(X), d.up(Wt), d.up(Bv), d.up(DY), d.up(DW), d.up(DB), d.up(Y), d.up(DX)
			d.must(d.Conv2DForward(x, w, b, y, s))
			d.must(d.Conv2DBackwardData(dy, w, dx, s))
			d.must(d.Conv2DBackwardFilter(x, dy, dw, db, s))
			o := out{d.down(y, ny), d.down(dx, nx), d.down(dw, nw), d.down(db, s.K)}
			results[di] = append(results[di], o)

			ref.Conv2DForward(X, Wt, Bv, Y, s)
			ref.Conv2DBackwardData(DY, Wt, DX, s)
			ref.Conv2DBackwardFilter(X, DY, DW, DB, s)
			crs := float64(s.C / s.Groups * s.R * s.S)
			compare(t, "conv2d_forward", s, o.y, Y, 1e-5*crs, 1e-4)
			compare(t, "conv2d_backward_data", s, o.dx, DX, 1e-5*float64(s.K*s.R*s.S), 1e-4)
			red := float64(s.N * s.OH() * s.OW())
			compare(t, "conv2d_backward_filter dw", s, o.dw, DW, 1e-5*red, 1e-4)
			compare(t, "conv2d_backward_filter db", s, o.db, DB, 1e-5*red, 1e-4)
		}
	}
	for i, s := range convShapes {
		a, b := results[0][i], results[1][i]
		bitsEqual(t, "conv2d_forward", s, a.y, b.y)
		bitsEqual(t, "conv2d_backward_data", s, a.dx, b.dx)
		bitsEqual(t, "conv2d_backward_filter dw", s, a.dw, b.dw)
		bitsEqual(t, "conv2d_backward_filter db", s, a.db, b.db)
	}
}

func TestReLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, d := range devices(t) {
		for _, n := range []int{1, 7, 100003} {
			for _, allNeg := range []bool{false, true} {
				X, DY := randF32(rng, n), randF32(rng, n)
				if allNeg {
					for i := range X {
						X[i] = -1 - X[i]*X[i]
					}
				}
				x, dy := d.up(X), d.up(DY)
				d.must(d.ReLUForward(x, x, n)) // in place
				d.must(d.ReLUBackward(x, dy, dy, n))
				Y := make([]float32, n)
				ref.ReLUForward(X, Y)
				ref.ReLUBackward(Y, DY, DY)
				compare(t, "relu_forward", n, d.down(x, n), Y, 0, 0)
				compare(t, "relu_backward", n, d.down(dy, n), DY, 0, 0)
			}
		}
	}
}

func TestMaxPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	shapes := []device.PoolShape{
		{N: 1, C: 1, H: 3, W: 3, Size: 3, Stride: 2},
		{N: 2, C: 3, H: 13, W: 13, Size: 3, Stride: 2},
		{N: 3, C: 5, H: 7, W: 11, Size: 2, Stride: 1},
		{N: 1, C: 2, H: 55, W: 55, Size: 3, Stride: 2},
	}
	for _, d := range devices(t) {
		for _, s := range shapes {
			nx, ny := s.N*s.C*s.H*s.W, s.N*s.C*s.OH()*s.OW()
			X, DY := randF32(rng, nx), randF32(rng, ny)
			for i := range X { // few distinct values: many ties
				X[i] = float32(math.Round(float64(X[i]*3))) - 5
			}
			X[0] = float32(math.NaN())
			x, y, idx, dy, dx := d.up(X), d.up(make([]float32, ny)), d.upInt(make([]int32, ny)), d.up(DY), d.up(randF32(rng, nx))
			d.must(d.MaxPoolForward(x, y, idx, s))
			d.must(d.MaxPoolBackward(idx, dy, dx, s))
			Y, IDX, DX := make([]float32, ny), make([]int32, ny), make([]float32, nx)
			ref.MaxPoolForward(X, Y, IDX, s)
			ref.MaxPoolBackward(IDX, DY, DX, s)
			compare(t, "maxpool_forward", s, d.down(y, ny), Y, 0, 0)
			compareInt(t, "maxpool_forward idx", s, d.downInt(idx, ny), IDX)
			compare(t, "maxpool_backward", s, d.down(dx, nx), DX, 0, 0)
		}
	}
}

func TestLRN(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	shapes := []device.LRNShape{
		{N: 2, C: 96, H: 9, W: 9, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2},
		{N: 1, C: 3, H: 17, W: 19, Size: 5, Alpha: 0.5, Beta: 0.75, K: 2},
		{N: 3, C: 7, H: 1, W: 300, Size: 4, Alpha: 0.9, Beta: 0.6, K: 1},
		{N: 1, C: 1, H: 1, W: 1, Size: 1, Alpha: 0.3, Beta: 1.5, K: 0.5},
	}
	for _, d := range devices(t) {
		for _, s := range shapes {
			n := s.N * s.C * s.H * s.W
			X, DY := randF32(rng, n), randF32(rng, n)
			for i := range X {
				X[i] *= 4
			}
			x, y, sc, dy, dx := d.up(X), d.up(make([]float32, n)), d.up(make([]float32, n)), d.up(DY), d.up(make([]float32, n))
			d.must(d.LRNForward(x, y, sc, s))
			d.must(d.LRNBackward(x, y, sc, dy, dx, s))
			Y, SC, DX := make([]float32, n), make([]float32, n), make([]float32, n)
			ref.LRNForward(X, Y, SC, s)
			ref.LRNBackward(X, Y, SC, DY, DX, s)
			compare(t, "lrn_forward scale", s, d.down(sc, n), SC, 0, 0)
			compare(t, "lrn_forward", s, d.down(y, n), Y, 1e-6, 1e-6)
			compare(t, "lrn_backward", s, d.down(dx, n), DX, 1e-6, 1e-5)
		}
	}
}

func TestDropout(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, d := range devices(t) {
		for _, n := range []int{1, 13, 70001} {
			for _, p := range []float32{0, 0.5, 0.1} {
				key := device.DropoutKey{Seed: 0xdeadbeef12345, Step: uint64(n), Layer: 2}
				X, DY := randF32(rng, n), randF32(rng, n)
				x, y, dy := d.up(X), d.up(make([]float32, n)), d.up(DY)
				d.must(d.DropoutForward(x, y, n, p, key))
				d.must(d.DropoutBackward(dy, dy, n, p, key))
				Y := make([]float32, n)
				ref.DropoutForward(X, Y, p, key)
				ref.DropoutBackward(DY, DY, p, key)
				shape := fmt.Sprintf("n=%d p=%v", n, p)
				compare(t, "dropout_forward", shape, d.down(y, n), Y, 0, 0)
				compare(t, "dropout_backward", shape, d.down(dy, n), DY, 0, 0)
			}
		}
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, d := range devices(t) {
		for _, nc := range [][2]int{{1, 1}, {1, 10}, {7, 13}, {128, 1000}} {
			n, classes := nc[0], nc[1]
			Z := randF32(rng, n*classes)
			for i := range Z {
				Z[i] = float32(math.Round(float64(Z[i] * 20))) // ties
			}
			L := make([]int32, n)
			for i := range L {
				L[i] = int32(rng.IntN(classes))
			}
			z, l, loss, rank, dz := d.up(Z), d.upInt(L), d.up(make([]float32, n)), d.upInt(make([]int32, n)), d.up(make([]float32, n*classes))
			d.must(d.SoftmaxCrossEntropy(z, l, loss, rank, dz, n, classes))
			LOSS, RANK, DZ := make([]float32, n), make([]int32, n), make([]float32, n*classes)
			ref.SoftmaxCrossEntropy(Z, L, LOSS, RANK, DZ, n, classes)
			compare(t, "softmax_cross_entropy loss", nc, d.down(loss, n), LOSS, 0, 0)
			compareInt(t, "softmax_cross_entropy rank", nc, d.downInt(rank, n), RANK)
			compare(t, "softmax_cross_entropy dlogits", nc, d.down(dz, n*classes), DZ, 0, 0)
			d.must(d.SoftmaxCrossEntropy(z, l, loss, rank, nil, n, classes))
		}
	}
}

func TestSGD(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	for _, d := range devices(t) {
		for _, n := range []int{1, 1000, 65537} {
			W, G, V := randF32(rng, n), randF32(rng, n), randF32(rng, n)
			w, g, v := d.up(W), d.up(G), d.up(V)
			p := device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}
			d.must(d.SGDUpdate(w, g, v, n, p))
			ref.SGDUpdate(W, G, V, p)
			compare(t, "sgd_update w", n, d.down(w, n), W, 0, 0)
			compare(t, "sgd_update v", n, d.down(v, n), V, 0, 0)
		}
	}
}

func TestBufferErrors(t *testing.T) {
	d := testDevice{New(), t}
	defer d.Close()
	other := New()
	defer other.Close()

	if _, err := d.Alloc(0); err == nil {
		t.Fatal("alloc 0: no error")
	}
	small := d.up(make([]float32, 3))
	big := d.up(make([]float32, 100))
	err := d.ReLUForward(small, big, 10)
	if err == nil || !strings.Contains(err.Error(), "relu_forward") || !strings.Contains(err.Error(), "x") {
		t.Fatalf("relu on a too-small buffer: %v", err)
	}
	foreign, _ := other.Alloc(400)
	if err := d.ReLUForward(foreign, big, 10); err == nil {
		t.Fatal("relu on another device's buffer: no error")
	}
	if err := d.Write(small, 8, make([]byte, 8)); err == nil {
		t.Fatal("write past the end: no error")
	}
	if err := d.Copy(big, 396, small, 0, 8); err == nil {
		t.Fatal("copy past the end: no error")
	}
	if err := d.Gemm(false, false, 10, 10, 10, 1, big, big, 0, small); err == nil {
		t.Fatal("gemm into a too-small C: no error")
	}
	if err := d.Conv2DForward(big, big, big, big, device.ConvShape{N: 1, C: 3, H: 4, W: 4, K: 2, R: 3, S: 3, Stride: 1, Groups: 2}); err == nil {
		t.Fatal("conv with C not divisible by groups: no error")
	}
	labels := d.upInt([]int32{0, 10})
	if err := d.SoftmaxCrossEntropy(big, labels, big, big, nil, 2, 10); err == nil || !strings.Contains(err.Error(), "labels[1]") {
		t.Fatalf("softmax with a label out of range: %v", err)
	}
	idx := d.upInt([]int32{100})
	if err := d.MaxPoolBackward(idx, big, big, device.PoolShape{N: 1, C: 1, H: 3, W: 3, Size: 3, Stride: 1}); err == nil {
		t.Fatal("maxpool_backward with idx out of range: no error")
	}
	if err := d.DropoutForward(big, big, 10, 1, device.DropoutKey{}); err == nil {
		t.Fatal("dropout p=1: no error")
	}

	before := d.MemStats()
	if before.Buffers != 4 || before.InUse != 12+400+8+4 {
		t.Fatalf("memstats %+v, want 4 buffers of 424 bytes", before)
	}
	d.must(d.Free(small))
	if err := d.Free(small); !errors.Is(err, device.ErrFreed) {
		t.Fatalf("double free: %v, want ErrFreed", err)
	}
	if err := d.Fill(small, 1); !errors.Is(err, device.ErrFreed) {
		t.Fatalf("fill of a freed buffer: %v, want ErrFreed", err)
	}
	if err := d.ReLUForward(small, big, 1); !errors.Is(err, device.ErrFreed) {
		t.Fatalf("relu on a freed buffer: %v, want ErrFreed", err)
	}
	if st := d.MemStats(); st.Buffers != 3 || st.InUse != 412 || st.Peak != 424 {
		t.Fatalf("memstats after free %+v", st)
	}
	d.must(d.Fill(big, 2.5))
	if got := d.down(big, 100); got[0] != 2.5 || got[99] != 2.5 {
		t.Fatalf("fill: got %v", got)
	}
	d.must(d.Copy(big, 0, big, 4, 8)) // overlapping copy within one buffer
	d.must(d.Close())
	if err := d.Read(big, 0, make([]byte, 4)); !errors.Is(err, device.ErrFreed) {
		t.Fatalf("read after close: %v, want ErrFreed", err)
	}
	if _, err := d.Alloc(4); err == nil {
		t.Fatal("alloc after close: no error")
	}
}

func TestInfo(t *testing.T) {
	info := New().Info()
	if info.ID != "cpu" || info.Type != "CPU" || info.Platform != "Go" || info.ComputeUnits < 1 || info.Name == "" {
		t.Fatalf("info %+v", info)
	}
}

// TestWorkspaceBytes checks that the scratch a convolution leaves in the
// arenas (columns, GEMM packing) is reported.
func TestWorkspaceBytes(t *testing.T) {
	d := testDevice{New(), t}
	defer d.Close()
	if n := d.WorkspaceBytes(); n != 0 {
		t.Fatalf("a new device holds %d bytes of scratch", n)
	}
	s := device.ConvShape{N: 2, C: 3, H: 13, W: 13, K: 4, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 1}
	rng := rand.New(rand.NewPCG(1, 1))
	x, w := d.up(randF32(rng, s.N*s.C*s.H*s.W)), d.up(randF32(rng, s.K*s.C*s.R*s.S))
	b, y := d.up(randF32(rng, s.K)), d.up(make([]float32, s.N*s.K*s.OH()*s.OW()))
	d.must(d.Conv2DForward(x, w, b, y, s))
	// At least one sample's columns (C·R·S × OH·OW floats).
	if n, min := d.WorkspaceBytes(), int64(s.C*s.R*s.S*s.OH()*s.OW()*4); n < min {
		t.Fatalf("after a convolution: %d bytes of scratch reported, want at least %d", n, min)
	}
}

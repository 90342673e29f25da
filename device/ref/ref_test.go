package ref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/alexcl/alexcl/device"
)

// The gradient checks below define a scalar loss L = Σ dy·y(x) with a fixed
// random dy, compute ∂L/∂x with the op's backward, and compare it with
// central finite differences (L(x+h) − L(x−h)) / 2h in float64.

const (
	fdStep = 1e-5
	fdRel  = 1e-6
	fdAbs  = 1e-8
)

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.Float64()*2 - 1
	}
	return s
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// checkGrad compares analytic, the gradient of loss with respect to x, with
// central differences; loss must read x afresh on every call.
func checkGrad(t *testing.T, name string, x, analytic []float64, loss func() float64) {
	t.Helper()
	if len(x) != len(analytic) {
		t.Fatalf("%s: %d inputs but %d gradient entries", name, len(x), len(analytic))
	}
	for i := range x {
		orig := x[i]
		x[i] = orig + fdStep
		lp := loss()
		x[i] = orig - fdStep
		lm := loss()
		x[i] = orig
		num := (lp - lm) / (2 * fdStep)
		if d := math.Abs(num - analytic[i]); d > fdAbs+fdRel*(math.Abs(num)+math.Abs(analytic[i])) || math.IsNaN(d) {
			t.Fatalf("%s: gradient [%d] analytic %.12g, numeric %.12g (diff %.3g)", name, i, analytic[i], num, d)
		}
	}
}

func TestGemmGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const M, N, K = 3, 4, 5
	const alpha = 0.7
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			name := fmt.Sprintf("gemm tA=%v tB=%v", tA, tB)
			A := randSlice(rng, M*K)  // (M, K) or (K, M)
			B := randSlice(rng, K*N)  // (K, N) or (N, K)
			dC := randSlice(rng, M*N) // (M, N)
			C := make([]float64, M*N) // (M, N)
			loss := func() float64 {
				Gemm(tA, tB, M, N, K, alpha, A, B, 0, C)
				return dot(dC, C)
			}
			dA := make([]float64, M*K)
			if tA { // dA (K, M) = α op(B) dCᵀ
				Gemm(tB, true, K, M, N, alpha, B, dC, 0, dA)
			} else { // dA (M, K) = α dC op(B)ᵀ
				Gemm(false, !tB, M, K, N, alpha, dC, B, 0, dA)
			}
			dB := make([]float64, K*N)
			if tB { // dB (N, K) = α dCᵀ op(A)
				Gemm(true, tA, N, K, M, alpha, dC, A, 0, dB)
			} else { // dB (K, N) = α op(A)ᵀ dC
				Gemm(!tA, false, K, N, M, alpha, A, dC, 0, dB)
			}
			checkGrad(t, name+" dA", A, dA, loss)
			checkGrad(t, name+" dB", B, dB, loss)
		}
	}
}

func TestGemmHand(t *testing.T) {
	// [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
	A := []float32{1, 2, 3, 4}
	B := []float32{5, 6, 7, 8}
	C := []float32{1, 1, 1, 1}
	Gemm(false, false, 2, 2, 2, 2, A, B, 3, C)
	want := []float32{41, 47, 89, 103}
	for i := range want {
		if C[i] != want[i] {
			t.Fatalf("gemm hand: C[%d] = %v, want %v", i, C[i], want[i])
		}
	}
	// Aᵀ · Bᵀ = [1 3; 2 4] · [5 7; 6 8] = [23 31; 34 46]
	nan := float32(math.NaN())
	C = []float32{nan, nan, nan, nan}
	Gemm(true, true, 2, 2, 2, 1, A, B, 0, C)
	want = []float32{23, 31, 34, 46}
	for i := range want {
		if C[i] != want[i] {
			t.Fatalf("gemm hand transposed, beta=0 over NaN: C[%d] = %v, want %v", i, C[i], want[i])
		}
	}
}

func TestBiasGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 5, 3
	x := randSlice(rng, rows*cols)  // (rows, cols)
	b := randSlice(rng, cols)       // (cols)
	dy := randSlice(rng, rows*cols) // (rows, cols)
	y := make([]float64, rows*cols)
	loss := func() float64 {
		copy(y, x)
		AddBias(y, b, rows, cols)
		return dot(dy, y)
	}
	db := []float64{10, 20, 30} // BiasGrad accumulates onto this
	BiasGrad(dy, db, rows, cols)
	for i := range db {
		db[i] -= float64(10 * (i + 1))
	}
	checkGrad(t, "bias db", b, db, loss)
	checkGrad(t, "bias dx", x, append([]float64(nil), dy...), loss)
}

func convSize(s device.ConvShape) (x, w, y int) {
	return s.N * s.C * s.H * s.W, s.K * (s.C / s.Groups) * s.R * s.S, s.N * s.K * s.OH() * s.OW()
}

func TestConvGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := []device.ConvShape{
		{N: 2, C: 4, H: 7, W: 6, K: 4, R: 3, S: 2, Stride: 2, Pad: 1, Groups: 2},
		{N: 1, C: 3, H: 5, W: 5, K: 2, R: 3, S: 3, Stride: 1, Pad: 0, Groups: 1},
		{N: 2, C: 2, H: 6, W: 7, K: 6, R: 5, S: 5, Stride: 3, Pad: 2, Groups: 2},
	}
	for _, s := range shapes {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("conv %+v", s)
		nx, nw, ny := convSize(s)
		x := randSlice(rng, nx)  // (N, C, H, W)
		w := randSlice(rng, nw)  // (K, C/G, R, S)
		b := randSlice(rng, s.K) // (K)
		dy := randSlice(rng, ny) // (N, K, OH, OW)
		y := make([]float64, ny) // (N, K, OH, OW)
		loss := func() float64 {
			Conv2DForward(x, w, b, y, s)
			return dot(dy, y)
		}
		dx := randSlice(rng, nx) // garbage: BackwardData overwrites
		Conv2DBackwardData(dy, w, dx, s)
		dw := make([]float64, nw)
		db := make([]float64, s.K)
		for i := range dw {
			dw[i] = 1
		}
		for i := range db {
			db[i] = 2
		}
		Conv2DBackwardFilter(x, dy, dw, db, s) // accumulates
		for i := range dw {
			dw[i] -= 1
		}
		for i := range db {
			db[i] -= 2
		}
		checkGrad(t, name+" dx", x, dx, loss)
		checkGrad(t, name+" dw", w, dw, loss)
		checkGrad(t, name+" db", b, db, loss)
	}
}

func TestConvHand(t *testing.T) {
	// One channel, 3x3 input, 2x2 filter, stride 1, no padding.
	s := device.ConvShape{N: 1, C: 1, H: 3, W: 3, K: 1, R: 2, S: 2, Stride: 1, Groups: 1}
	x := []float32{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9,
	}
	w := []float32{
		1, 0,
		0, -1,
	}
	b := []float32{10}
	y := make([]float32, 4)
	Conv2DForward(x, w, b, y, s)
	want := []float32{10 + 1 - 5, 10 + 2 - 6, 10 + 4 - 8, 10 + 5 - 9}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("conv hand: y[%d] = %v, want %v", i, y[i], want[i])
		}
	}
	// Padding 1, stride 2: output 2x2, the corners see zero padding.
	s.Pad, s.Stride = 1, 2
	y = make([]float32, s.OH()*s.OW())
	Conv2DForward(x, w, b, y, s)
	// Window at (oh,ow) covers input rows 2oh-1..2oh, cols 2ow-1..2ow;
	// y = b + x[2oh-1][2ow-1] − x[2oh][2ow].
	want = []float32{10 + 0 - 1, 10 + 0 - 3, 10 + 0 - 7, 10 + 5 - 9}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("conv hand pad 1 stride 2: y[%d] = %v, want %v", i, y[i], want[i])
		}
	}
}

func TestReLUGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := randSlice(rng, 20)
	for i := range x {
		if math.Abs(x[i]) < 0.01 {
			x[i] = 0.5 // keep away from the kink
		}
	}
	dy := randSlice(rng, 20)
	y := make([]float64, 20)
	loss := func() float64 {
		ReLUForward(x, y)
		return dot(dy, y)
	}
	loss()
	dx := make([]float64, 20)
	ReLUBackward(y, dy, dx)
	checkGrad(t, "relu", x, dx, loss)
}

// distinct returns n distinct values in [-1, 1) spaced at least 1e-3 apart,
// in random order, so that finite differences never change an argmax.
func distinct(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i, p := range rng.Perm(n) {
		v[i] = -1 + 2*float64(p)/float64(n)
	}
	return v
}

func TestMaxPoolGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range []device.PoolShape{
		{N: 2, C: 2, H: 7, W: 7, Size: 3, Stride: 2},
		{N: 1, C: 3, H: 6, W: 5, Size: 2, Stride: 1},
		{N: 1, C: 1, H: 4, W: 4, Size: 2, Stride: 2},
	} {
		name := fmt.Sprintf("maxpool %+v", s)
		nx, ny := s.N*s.C*s.H*s.W, s.N*s.C*s.OH()*s.OW()
		x := distinct(rng, nx)   // (N, C, H, W)
		dy := randSlice(rng, ny) // (N, C, OH, OW)
		y := make([]float64, ny)
		idx := make([]int32, ny)
		loss := func() float64 {
			MaxPoolForward(x, y, idx, s)
			return dot(dy, y)
		}
		loss()
		dx := randSlice(rng, nx) // overwritten
		MaxPoolBackward(idx, dy, dx, s)
		checkGrad(t, name, x, dx, loss)
	}
}

func TestMaxPoolHand(t *testing.T) {
	s := device.PoolShape{N: 1, C: 1, H: 3, W: 5, Size: 3, Stride: 2}
	nan := float32(math.NaN())
	x := []float32{
		1, 7, 2, 0, 0,
		7, 3, 7, nan, 4,
		0, 5, 1, nan, 9,
	}
	y := make([]float32, 2)
	idx := make([]int32, 2)
	MaxPoolForward(x, y, idx, s)
	// First window: max 7 appears at (0,1), (1,0), (1,2); the first wins.
	if y[0] != 7 || idx[0] != 1 {
		t.Fatalf("maxpool hand: window 0 = %v at %d, want 7 at 1", y[0], idx[0])
	}
	// Second window: the first NaN, at (1,3), wins over 9 and over the later NaN.
	if !math.IsNaN(float64(y[1])) || idx[1] != 8 {
		t.Fatalf("maxpool hand: window 1 = %v at %d, want NaN at 8", y[1], idx[1])
	}
	// Overlap: both windows share column 2; route dy to the same input.
	dx := make([]float32, 15)
	MaxPoolBackward([]int32{2, 2}, []float32{1, 3}, dx, s)
	if dx[2] != 4 {
		t.Fatalf("maxpool hand backward: dx[2] = %v, want 4 (overlapping windows add)", dx[2])
	}
}

func TestLRNGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range []device.LRNShape{
		{N: 2, C: 7, H: 2, W: 3, Size: 5, Alpha: 0.5, Beta: 0.75, K: 2},
		{N: 1, C: 6, H: 1, W: 2, Size: 4, Alpha: 0.9, Beta: 0.6, K: 1},
		{N: 1, C: 3, H: 2, W: 2, Size: 1, Alpha: 0.3, Beta: 1.5, K: 0.5},
		{N: 1, C: 2, H: 1, W: 1, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2},
	} {
		name := fmt.Sprintf("lrn %+v", s)
		n := s.N * s.C * s.H * s.W
		x := randSlice(rng, n)
		for i := range x {
			x[i] *= 3
		}
		dy := randSlice(rng, n)
		y := make([]float64, n)
		scale := make([]float64, n)
		loss := func() float64 {
			LRNForward(x, y, scale, s)
			return dot(dy, y)
		}
		loss()
		dx := make([]float64, n)
		LRNBackward(x, y, scale, dy, dx, s)
		checkGrad(t, name, x, dx, loss)
	}
}

func TestLRNHand(t *testing.T) {
	// C = 3, Size = 3: channel 0 sums x0²+x1², channel 1 all three, channel 2 x1²+x2².
	s := device.LRNShape{N: 1, C: 3, H: 1, W: 1, Size: 3, Alpha: 3, Beta: 0.5, K: 1}
	x := []float64{1, 2, 3}
	y := make([]float64, 3)
	scale := make([]float64, 3)
	LRNForward(x, y, scale, s)
	wantScale := []float64{1 + 5, 1 + 14, 1 + 13}
	for c := range wantScale {
		if math.Abs(scale[c]-wantScale[c]) > 1e-12 {
			t.Fatalf("lrn hand: scale[%d] = %v, want %v", c, scale[c], wantScale[c])
		}
		if want := x[c] / math.Sqrt(wantScale[c]); math.Abs(y[c]-want) > 1e-12 {
			t.Fatalf("lrn hand: y[%d] = %v, want %v", c, y[c], want)
		}
	}
	// Size 2 (even): the window is [c−1, c], as PyTorch pads 1 before and 0 after.
	s.Size = 2
	LRNForward(x, y, scale, s)
	wantScale = []float64{1 + 1.5*1, 1 + 1.5*5, 1 + 1.5*13}
	for c := range wantScale {
		if math.Abs(scale[c]-wantScale[c]) > 1e-12 {
			t.Fatalf("lrn hand size 2: scale[%d] = %v, want %v", c, scale[c], wantScale[c])
		}
	}
}

func TestDropoutGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	key := device.DropoutKey{Seed: 42, Step: 7, Layer: 1}
	const n = 50
	x := randSlice(rng, n)
	dy := randSlice(rng, n)
	y := make([]float64, n)
	loss := func() float64 {
		DropoutForward(x, y, 0.3, key)
		return dot(dy, y)
	}
	dx := make([]float64, n)
	DropoutBackward(dy, dx, 0.3, key)
	checkGrad(t, "dropout", x, dx, loss)

	// p = 0 is the identity, bit for bit.
	DropoutForward(x, y, 0, key)
	for i := range x {
		if y[i] != x[i] {
			t.Fatalf("dropout p=0: y[%d] = %v, want %v", i, y[i], x[i])
		}
	}
}

func TestDropoutMask(t *testing.T) {
	const n = 100000
	key := device.DropoutKey{Seed: 1, Step: 2, Layer: 3}
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	y := make([]float32, n)
	DropoutForward(x, y, 0.5, key)
	kept := 0
	for i := range y {
		switch y[i] {
		case 2:
			kept++
		case 0:
		default:
			t.Fatalf("dropout p=0.5: y[%d] = %v, want 0 or 2", i, y[i])
		}
	}
	if kept < n/2-1000 || kept > n/2+1000 {
		t.Fatalf("dropout p=0.5: kept %d of %d", kept, n)
	}
	// A different step draws a different mask.
	y2 := make([]float32, n)
	DropoutForward(x, y2, 0.5, device.DropoutKey{Seed: 1, Step: 3, Layer: 3})
	same := 0
	for i := range y {
		if y[i] == y2[i] {
			same++
		}
	}
	if same > n*6/10 {
		t.Fatalf("dropout: masks of two steps agree on %d of %d elements", same, n)
	}
}

func TestSoftmaxCrossEntropyGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const n, classes = 4, 7
	logits := randSlice(rng, n*classes)
	for i := range logits {
		logits[i] *= 5
	}
	labels := []int32{0, 6, 3, 3}
	loss := make([]float64, n)
	rank := make([]int32, n)
	mean := func() float64 {
		SoftmaxCrossEntropy(logits, labels, loss, rank, nil, n, classes)
		var s float64
		for _, l := range loss {
			s += l
		}
		return s / n
	}
	d := make([]float64, n*classes)
	SoftmaxCrossEntropy(logits, labels, loss, rank, d, n, classes)
	checkGrad(t, "softmax cross-entropy", logits, d, mean)
}

func TestSoftmaxCrossEntropyHand(t *testing.T) {
	// Sample 0: equal logits, loss log 3, label 2 ties with 0 and 1 (lower
	// indices rank above it). Sample 1: huge logits stay finite; label 0 is
	// beaten by class 1 only.
	logits := []float32{
		5, 5, 5,
		1000, 2000, -1000,
	}
	labels := []int32{2, 0}
	loss := make([]float32, 2)
	rank := make([]int32, 2)
	d := make([]float32, 6)
	SoftmaxCrossEntropy(logits, labels, loss, rank, d, 2, 3)
	if math.Abs(float64(loss[0])-math.Log(3)) > 1e-6 || rank[0] != 2 {
		t.Fatalf("softmax hand: sample 0 loss %v rank %d, want %v rank 2", loss[0], rank[0], math.Log(3))
	}
	if loss[1] != 1000 || rank[1] != 1 {
		t.Fatalf("softmax hand: sample 1 loss %v rank %d, want 1000 rank 1", loss[1], rank[1])
	}
	want := []float32{1.0 / 6, 1.0 / 6, -1.0 / 3, -0.5, 0.5, 0}
	for i := range want {
		if math.Abs(float64(d[i]-want[i])) > 1e-6 {
			t.Fatalf("softmax hand: dlogits[%d] = %v, want %v", i, d[i], want[i])
		}
	}
}

func TestSGDHand(t *testing.T) {
	w := []float32{1, -2}
	g := []float32{0.5, 0.25}
	v := []float32{0.1, 0}
	SGDUpdate(w, g, v, device.SGDParams{LR: 0.5, Momentum: 0.9, WeightDecay: 0.1})
	// v0 = 0.9·0.1 − 0.05·1 − 0.5·0.5 = −0.21; v1 = 0 + 0.1 − 0.125 = −0.025.
	wantV := []float32{float32(float32(float32(0.9)*0.1)-0.05) - 0.25, float32(0.1) - 0.125}
	for i := range wantV {
		if v[i] != wantV[i] {
			t.Fatalf("sgd hand: v[%d] = %v, want %v", i, v[i], wantV[i])
		}
	}
	if w[0] != 1+wantV[0] || w[1] != -2+wantV[1] {
		t.Fatalf("sgd hand: w = %v, want [%v %v]", w, 1+wantV[0], -2+wantV[1])
	}
}

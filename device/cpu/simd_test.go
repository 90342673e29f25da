package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLRNAssembly checks lrnFwd5AVX2 and lrnBwd5AVX2 against their Go loops
// bit for bit.
func TestLRNAssembly(t *testing.T) {
	type impl struct {
		name string
		ok   bool
		step int // the routine takes multiples of step pixels
		fwd  func(n int, xc, xo, yo, so *float32, ring *[5]*float32, k, aos float32)
		bwd  func(n int, dyc, yc, sc, dxc, xj, dxj *float32, ring *[5]*float32, coef float32)
	}
	ran := 0
	for _, im := range []impl{{"avx2", useAVX2, 8, lrnFwd5AVX2, lrnBwd5AVX2}} {
		if !im.ok {
			t.Logf("%s: cannot run here", im.name)
			continue
		}
		ran++
		t.Run(im.name, func(t *testing.T) { testLRNAssembly(t, im.step, im.fwd, im.bwd) })
	}
	if ran == 0 {
		t.Skip("no AVX2: the assembly does not run here")
	}
}

func testLRNAssembly(t *testing.T, step int,
	lrnFwd5 func(n int, xc, xo, yo, so *float32, ring *[5]*float32, k, aos float32),
	lrnBwd5 func(n int, dyc, yc, sc, dxc, xj, dxj *float32, ring *[5]*float32, coef float32)) {
	r := rand.New(rand.NewPCG(7, 8))
	vec := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*r.Float64())
		}
		return v
	}
	same := func(what string, n int, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n %d: %s[%d] = %v, want %v", n, what, i, got[i], want[i])
			}
		}
	}
	for _, n := range []int{1, 2, 15, 16, 17, 31, 32, 33, 100, 1024} {
		if n%step != 0 {
			continue
		}
		// Forward: ring rows 0–3 are squares already, row 4 is written.
		xc, xo := vec(n, -3, 3), vec(n, -3, 3)
		var rg, rw [5][]float32
		var ptrs [5]*float32
		for i := range rg {
			rg[i] = vec(n+1, 0, 9) // one float past n: must stay untouched
			rw[i] = append([]float32(nil), rg[i]...)
			ptrs[i] = &rw[i][0]
		}
		yo, so := vec(n+1, 0, 1), vec(n+1, 0, 1)
		yg, sg := append([]float32(nil), yo...), append([]float32(nil), so...)
		lrnFwd5Go(xc, xo, yg[:n], sg[:n], &rg, 2, 1e-4/5)
		lrnFwd5(n, &xc[0], &xo[0], &yo[0], &so[0], &ptrs, 2, 1e-4/5)
		same("y", n, yo, yg)
		same("scale", n, so, sg)
		same("ring[4]", n, rw[4], rg[4])

		// Backward.
		dyc, yc, sc, xj := vec(n, -1, 1), vec(n, -1, 1), vec(n, 1, 3), vec(n, -2, 2)
		dxc, dxj := vec(n+1, -1, 1), vec(n+1, -1, 1)
		dxcG, dxjG := append([]float32(nil), dxc...), append([]float32(nil), dxj...)
		for i := range rg {
			rg[i] = vec(n+1, -1, 1)
			rw[i] = append([]float32(nil), rg[i]...)
			ptrs[i] = &rw[i][0]
		}
		lrnBwd5Go(dyc, yc, sc, dxcG[:n], xj, dxjG[:n], &rg, -3e-5)
		lrnBwd5(n, &dyc[0], &yc[0], &sc[0], &dxc[0], &xj[0], &dxj[0], &ptrs, -3e-5)
		same("dx[c]", n, dxc, dxcG)
		same("dx[j]", n, dxj, dxjG)
		same("ring[4]", n, rw[4], rg[4])
	}
}

// TestWinogradAssembly checks the vector transforms (winoIn, winoDyT and
// winoOut with AVX-512; winoInAVX2 and winoOutAVX2) against the Go loops bit
// for bit, on planes of 1×1 to 14×14 (odd sizes leave half tiles).
func TestWinogradAssembly(t *testing.T) {
	ran := 0
	for _, variant := range []string{"avx512", "avx2"} {
		if (variant == "avx512" && !useAVX512) || (variant == "avx2" && !useAVX2) {
			t.Logf("%s: cannot run here", variant)
			continue
		}
		ran++
		t.Run(variant, func(t *testing.T) { testWinogradAssembly(t, variant == "avx2") })
	}
	if ran == 0 {
		t.Skip("neither AVX-512 nor AVX2: the assembly does not run here")
	}
}

func testWinogradAssembly(t *testing.T, avx2 bool) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, hw := range [][2]int{{1, 1}, {6, 6}, {13, 13}, {14, 14}, {5, 12}, {14, 3}, {7, 9}, {5, 5}, {2, 6}} {
		H, W := hw[0], hw[1]
		p := planWino(3, 5, 4, H, W)
		p.avx2 = avx2
		if !p.vector() && !p.vector8() {
			if avx2 && p.tw > 3 {
				continue // wider than the AVX2 transforms take
			}
			t.Fatalf("%d×%d: not on a vector path", H, W)
		}
		ld := p.Q*p.tiles + 3
		x := make([]float32, p.Ci*H*W)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		pad := make([]float32, p.padSize())
		vGot, vWant := make([]float32, 16*p.Ci*ld), make([]float32, 16*p.Ci*ld)
		for i := range vGot {
			vGot[i], vWant[i] = float32(math.NaN()), float32(math.NaN())
		}
		s := p
		s.scalar = true
		p.winoInput(x, vGot, pad, ld, 2)
		s.winoInput(x, vWant, pad, ld, 2)
		for i := range vGot {
			if math.Float32bits(vGot[i]) != math.Float32bits(vWant[i]) {
				t.Fatalf("%d×%d input: v[%d] = %v, want %v", H, W, i, vGot[i], vWant[i])
			}
		}
		// The output-gradient transform, from the same kind of planes.
		dy := make([]float32, p.Co*H*W)
		for i := range dy {
			dy[i] = float32(r.NormFloat64())
		}
		dy[0] = float32(math.Copysign(0, -1))
		gGot, gWant := make([]float32, 16*p.Co*ld), make([]float32, 16*p.Co*ld)
		for i := range gGot {
			gGot[i], gWant[i] = float32(math.NaN()), float32(math.NaN())
		}
		p.winoDy(dy, gGot, ld, 2)
		s.winoDy(dy, gWant, ld, 2)
		for i := range gGot {
			if math.Float32bits(gGot[i]) != math.Float32bits(gWant[i]) {
				t.Fatalf("%d×%d output gradient: gz[%d] = %v, want %v", H, W, i, gGot[i], gWant[i])
			}
		}

		m := make([]float32, 16*p.Co*ld)
		for i := range m {
			m[i] = float32(r.NormFloat64())
		}
		bias := []float32{0.5, -0.25, 0, float32(math.Copysign(0, -1))}
		for _, b := range [][]float32{nil, bias} {
			yGot, yWant := make([]float32, p.Co*H*W+1), make([]float32, p.Co*H*W+1)
			yGot[len(yGot)-1], yWant[len(yWant)-1] = 7, 7
			p.winoOutput(m, ld, 1, yGot[:p.Co*H*W], b)
			s.winoOutput(m, ld, 1, yWant[:p.Co*H*W], b)
			for i := range yGot {
				if math.Float32bits(yGot[i]) != math.Float32bits(yWant[i]) {
					t.Fatalf("%d×%d output (bias %v): y[%d] = %v, want %v", H, W, b != nil, i, yGot[i], yWant[i])
				}
			}
		}
	}
}

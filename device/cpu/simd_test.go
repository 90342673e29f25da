package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLRNAssembly checks lrnFwd5 and lrnBwd5 against their Go loops bit for
// bit, on lengths around the 16-pixel step and its masked tail.
func TestLRNAssembly(t *testing.T) {
	if !hasMaskedRows {
		t.Skip("no AVX-512: the assembly does not run here")
	}
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

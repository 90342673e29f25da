package cpu

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu/blas"
	"github.com/alexcl/alexcl/device/cpu/sgemm"
	"github.com/alexcl/alexcl/device/ref"
)

// The BLAS path and the pure-Go path are run side by side against
// device/ref (in float64) on the same random inputs, as hash/crc32's
// testCrossCheck does: shapes of 1, primes, and sizes around the cut-offs
// of the fast path (GEMM panels of 64 columns, OpenBLAS's 16/24/32 register
// blocks, conv chunks and lanes). Each path must also give the same bits
// with 2 and with 13 workers.

// pathDevices returns a device for every GEMM path this machine has (the
// pure-Go one always; the BLAS one when a library loads; each assembly
// kernel the CPU runs), each with 2 workers and with 13. Without a library
// the BLAS half is skipped, unless ALEXCL_REQUIRE_BLAS=1 (CI with OpenBLAS
// installed), where it fails.
func pathDevices(t *testing.T) map[string][2]testDevice {
	t.Helper()
	out := map[string][2]testDevice{}
	mk := func(path gemmPath, kern *sgemm.Kernel, lib *blas.Lib) [2]testDevice {
		var p [2]testDevice
		for i, w := range []int{2, 13} {
			d := newDevice(w, path, kern, lib)
			t.Cleanup(func() { d.Close() })
			p[i] = testDevice{d, t}
		}
		return p
	}
	out["go"] = mk(gemmGonum, nil, nil)
	if lib, err := blas.Load(); err == nil {
		out["blas"] = mk(gemmBLAS, nil, lib)
		t.Logf("blas path: %s", lib.Describe())
	} else if os.Getenv("ALEXCL_REQUIRE_BLAS") == "1" && os.Getenv("ALEXCL_BLAS") != "off" {
		t.Fatalf("ALEXCL_REQUIRE_BLAS=1 but no BLAS library loaded: %v", err)
	} else {
		t.Logf("no BLAS library: the BLAS path is not checked")
	}
	for _, k := range []*sgemm.Kernel{sgemm.AVX512, sgemm.AVX2} {
		if k.Available() {
			out[k.Name] = mk(gemmAsm, k, nil)
		} else {
			t.Logf("the CPU has no %s: that path is not checked", k.Name)
		}
	}
	return out
}

// refGemm64 is ref.Gemm in float64 on float32 inputs.
func refGemm64(tA, tB bool, M, N, K int, alpha float32, A, B []float32, beta float32, C []float32) []float64 {
	c := make([]float64, M*N)
	for i := range c {
		c[i] = float64(C[i])
	}
	ref.Gemm(tA, tB, M, N, K, float64(alpha), f64s(A), f64s(B), float64(beta), c)
	return c
}

func f64s(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// close64 fails on the first element of got (float32) farther from want
// (float64) than abs + rel·|want|; NaN in want matches only NaN.
func close64(t *testing.T, what string, shape any, got []float32, want []float64, abs, rel float64) {
	t.Helper()
	for i := range want {
		g, w := float64(got[i]), want[i]
		if math.IsNaN(w) && math.IsNaN(g) {
			continue
		}
		if !(math.Abs(g-w) <= abs+rel*math.Abs(w)) {
			t.Fatalf("%s %+v: first mismatch at [%d]: got %v, want %v (tolerance %g + %g·|want|)", what, shape, i, g, w, abs, rel)
		}
	}
}

func TestGemmPathsCrossCheck(t *testing.T) {
	type shape struct {
		M, N, K     int
		tA, tB      bool
		alpha, beta float32
	}
	rng := rand.New(rand.NewPCG(11, 11))
	dims := []int{1, 2, 3, 5, 7, 13, 16, 17, 31, 63, 64, 65, 127, 129}
	var shapes []shape
	for i := 0; i < 120; i++ {
		M, N, K := dims[rng.IntN(len(dims))], dims[rng.IntN(len(dims))], dims[rng.IntN(len(dims))]
		shapes = append(shapes, shape{M, N, K, i&1 != 0, i&2 != 0, 1, 0})
	}
	// Several panels (gemmPanels), split along N and along M, with
	// remainders; beta 0 over NaN, beta 1 accumulation and a scaled one.
	for _, mnk := range [][3]int{{33, 1025, 300}, {1031, 17, 257}, {128, 1100, 600}, {9, 4099, 31}, {700, 700, 1}} {
		for tr := 0; tr < 4; tr++ {
			for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}} {
				shapes = append(shapes, shape{mnk[0], mnk[1], mnk[2], tr&1 != 0, tr&2 != 0, ab[0], ab[1]})
			}
		}
	}
	for name, devs := range pathDevices(t) {
		for si, s := range shapes {
			srng := rand.New(rand.NewPCG(uint64(si), 3))
			A, B, C := randF32(srng, s.M*s.K), randF32(srng, s.K*s.N), randF32(srng, s.M*s.N)
			if s.beta == 0 {
				for i := range C {
					C[i] = float32(math.NaN())
				}
			}
			want := refGemm64(s.tA, s.tB, s.M, s.N, s.K, s.alpha, A, B, s.beta, C)
			var first []float32
			for _, d := range devs {
				a, b, c := d.up(A), d.up(B), d.up(C)
				d.must(d.Gemm(s.tA, s.tB, s.M, s.N, s.K, s.alpha, a, b, s.beta, c))
				got := d.down(c, s.M*s.N)
				close64(t, name+" gemm", s, got, want, 2e-6*float64(s.K)+1e-6, 1e-5)
				if first == nil {
					first = got
				} else {
					bitsEqual(t, name+" gemm, 2 vs 13 workers", s, first, got)
				}
				for _, buf := range []device.Buffer{a, b, c} {
					d.must(d.Free(buf))
				}
			}
		}
	}
}

// TestConvPathsCrossCheck runs the convolutions of both paths against
// device/ref with the im2col budget shrunk, so that small shapes take every
// branch of convPlan: several samples per chunk, a short last chunk, a last
// chunk of one sample, more chunks than lanes, pointwise convolutions read
// in place and through columns.
func TestConvPathsCrossCheck(t *testing.T) {
	defer func(b int) { colBudget = b }(colBudget)
	shapes := []device.ConvShape{
		{N: 25, C: 4, H: 7, W: 6, K: 6, R: 3, S: 2, Stride: 2, Pad: 1, Groups: 2},
		{N: 17, C: 3, H: 9, W: 8, K: 5, R: 3, S: 4, Stride: 3, Pad: 2, Groups: 1},
		{N: 19, C: 6, H: 5, W: 5, K: 4, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 2},
		{N: 11, C: 5, H: 13, W: 11, K: 7, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 1},
		{N: 3, C: 3, H: 23, W: 19, K: 5, R: 11, S: 11, Stride: 4, Pad: 0, Groups: 1},
		{N: 9, C: 16, H: 6, W: 6, K: 32, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
	}
	devs := pathDevices(t)
	for _, budget := range []int{1 << 20, 2000, 300, 1} {
		colBudget = budget
		for si, s := range shapes {
			p := planConv(s)
			desc := struct {
				device.ConvShape
				Budget, Q, Chunks int
			}{s, budget, p.Q, p.chunks}
			rng := rand.New(rand.NewPCG(uint64(si), 5))
			nx, nw, ny := s.N*s.C*s.H*s.W, s.K*(s.C/s.Groups)*s.R*s.S, s.N*s.K*s.OH()*s.OW()
			X, Wt, Bv, DY := randF32(rng, nx), randF32(rng, nw), randF32(rng, s.K), randF32(rng, ny)
			DW0, DB0 := randF32(rng, nw), randF32(rng, s.K)
			y64, dx64 := make([]float64, ny), make([]float64, nx)
			dw64, db64 := f64s(DW0), f64s(DB0)
			ref.Conv2DForward(f64s(X), f64s(Wt), f64s(Bv), y64, s)
			ref.Conv2DBackwardData(f64s(DY), f64s(Wt), dx64, s)
			ref.Conv2DBackwardFilter(f64s(X), f64s(DY), dw64, db64, s)
			crs := float64(s.C / s.Groups * s.R * s.S)
			red := float64(s.N * s.OH() * s.OW())
			for name, pair := range devs {
				var prev [3][]float32
				for wi, d := range pair {
					x, w, b, dy := d.up(X), d.up(Wt), d.up(Bv), d.up(DY)
					y, dx := d.up(make([]float32, ny)), d.up(make([]float32, nx))
					dw, db := d.up(DW0), d.up(DB0)
					d.must(d.Fill(dx, float32(math.NaN()))) // dx is overwritten
					d.must(d.Conv2DForward(x, w, b, y, s))
					d.must(d.Conv2DBackwardData(dy, w, dx, s))
					d.must(d.Conv2DBackwardFilter(x, dy, dw, db, s))
					got := [3][]float32{d.down(y, ny), d.down(dx, nx), d.down(dw, nw)}
					close64(t, name+" conv2d_forward", desc, got[0], y64, 2e-6*crs+1e-6, 1e-5)
					close64(t, name+" conv2d_backward_data", desc, got[1], dx64, 2e-6*float64(s.K*s.R*s.S)+1e-6, 1e-5)
					close64(t, name+" conv2d_backward_filter dw", desc, got[2], dw64, 2e-6*red+1e-6, 1e-5)
					close64(t, name+" conv2d_backward_filter db", desc, d.down(db, s.K), db64, 2e-6*red+1e-6, 1e-5)
					if wi == 1 {
						for k, what := range []string{"forward", "backward data", "backward filter"} {
							bitsEqual(t, name+" conv2d "+what+", 2 vs 13 workers", desc, prev[k], got[k])
						}
					}
					prev = got
				}
			}
		}
	}
}

// TestGemmEnv checks that Open refuses an ALEXCL_GEMM it cannot honour and
// names the path it took otherwise.
func TestGemmEnv(t *testing.T) {
	t.Setenv("ALEXCL_GEMM", "fast")
	if _, err := Open(); err == nil || !strings.Contains(err.Error(), `ALEXCL_GEMM="fast"`) {
		t.Fatalf("ALEXCL_GEMM=fast: err = %v, want one naming the value", err)
	}
	t.Setenv("ALEXCL_GEMM", "go")
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.path != gemmGonum || !strings.Contains(d.Info().Driver, "gonum") {
		t.Fatalf("ALEXCL_GEMM=go: path %d, driver %q", d.path, d.Info().Driver)
	}
	for _, k := range []*sgemm.Kernel{sgemm.AVX512, sgemm.AVX2} {
		t.Setenv("ALEXCL_GEMM", k.Name)
		d2, err := Open()
		if k.Available() != (err == nil) {
			t.Fatalf("ALEXCL_GEMM=%s with Available()=%v: err = %v", k.Name, k.Available(), err)
		}
		if err == nil {
			if d2.path != gemmAsm || d2.kern != k || !strings.Contains(d2.Info().Driver, k.Name) {
				t.Fatalf("ALEXCL_GEMM=%s: path %d, kernel %v, driver %q", k.Name, d2.path, d2.kern, d2.Info().Driver)
			}
			d2.Close()
		}
	}
}

// TestSwitchEnv: ALEXCL_AVX512 and ALEXCL_WINOGRAD read off, 0, false and
// no as off (any case) and on, 1, true, yes, auto or unset as on; Open
// refuses anything else by name.
func TestSwitchEnv(t *testing.T) {
	for _, name := range switchNames {
		for v, off := range map[string]bool{"off": true, "OFF": true, "0": true, "false": true, "no": true,
			"": false, "on": false, "1": false, "true": false, "yes": false, "auto": false} {
			t.Setenv(name, v)
			if got, err := parseSwitch(name); err != nil || got != off {
				t.Errorf("%s=%q: off %v, %v; want %v", name, v, got, err, off)
			}
		}
		t.Setenv(name, "bogus")
		if d, err := Open(); err == nil || !strings.Contains(err.Error(), name+`="bogus"`) {
			t.Errorf("Open with %s=bogus: %v, want an error naming it", name, err)
			if err == nil {
				d.Close()
			}
		}
		t.Setenv(name, "")
	}
}

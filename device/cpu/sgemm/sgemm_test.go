package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refGemm is C = alpha·op(A)·op(B) + beta·C in float64, and the bound
// Σ|alpha·a·b| + |beta·c| each element's float32 error is measured against.
func refGemm(tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) (want, mag []float64) {
	want = make([]float64, M*N)
	mag = make([]float64, M*N)
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var s, m float64
			for p := 0; p < K; p++ {
				ai, bi := i*lda+p, p*ldb+j
				if tA {
					ai = p*lda + i
				}
				if tB {
					bi = j*ldb + p
				}
				a, b := A[ai], B[bi]
				s += float64(a) * float64(b)
				m += math.Abs(float64(a) * float64(b))
			}
			s *= float64(alpha)
			m *= math.Abs(float64(alpha))
			if beta != 0 {
				s += float64(beta) * float64(C[i*ldc+j])
				m += math.Abs(float64(beta) * float64(C[i*ldc+j]))
			}
			want[i*N+j], mag[i*N+j] = s, m
		}
	}
	return want, mag
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestSgemm runs shapes around every blocking cut-off (mr, nr, kc, mc, nc),
// all four transposes, padded leading dimensions and the alpha/beta cases
// against a float64 reference; with beta 0, C starts as NaN.
func TestSgemm(t *testing.T) {
	for _, kr := range kernels(t) {
		t.Run(kr.Name, func(t *testing.T) { testSgemm(t, kr) })
	}
}

func testSgemm(t *testing.T, kr *Kernel) {
	r := rand.New(rand.NewPCG(1, 2))
	type shape struct{ M, N, K int }
	mr, nr := kr.mr, kr.nr
	shapes := []shape{
		{1, 1, 1}, {mr, nr, 1}, {mr - 1, nr - 1, 3}, {mr + 1, nr + 1, 5}, {2 * mr, 2 * nr, kc},
		{25, 65, 257}, {mc, nc, kc}, {mc + 1, 3*nr + 1, 2*kc + 3}, {2, nc + 1, 3}, {7, 200, 600},
		{200, 7, 40}, {mc - 1, 3*nr - 1, kc - 1}, {3, 2*nc + 5, 17}, {64, 0, 5}, {5, 9, 0},
	}
	var w Workspace
	for _, sh := range shapes {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for ai, ab := range [][2]float32{{1, 0}, {-2, 0.25}, {0.5, 0}, {1, 1}} {
				if ai >= 2 && sh.M*sh.N*sh.K > 1<<20 {
					continue // the float64 reference is slow; two cases are enough
				}
				tA, tB := tr[0], tr[1]
				alpha, beta := ab[0], ab[1]
				M, N, K := sh.M, sh.N, sh.K
				ar, ac := M, K
				if tA {
					ar, ac = K, M
				}
				br, bc := K, N
				if tB {
					br, bc = N, K
				}
				lda, ldb, ldc := max(1, ac)+r.IntN(3), max(1, bc)+r.IntN(3), max(1, N)+r.IntN(3)
				A := randSlice(r, max(0, (ar-1)*lda+ac))
				B := randSlice(r, max(0, (br-1)*ldb+bc))
				C := randSlice(r, max(0, (M-1)*ldc+N)+2)
				if beta == 0 {
					for i := range C {
						C[i] = float32(math.NaN())
					}
				}
				want, mag := refGemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
				tail := append([]float32(nil), C[len(C)-2:]...)
				name := fmt.Sprintf("%dx%dx%d tA=%v tB=%v a=%v b=%v", M, N, K, tA, tB, alpha, beta)
				kr.Sgemm(&w, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
				eps := float64(K+2) * 0x1p-24
				for i := 0; i < M; i++ {
					for j := 0; j < N; j++ {
						got := float64(C[i*ldc+j])
						if d := math.Abs(got - want[i*N+j]); !(d <= eps*mag[i*N+j]+1e-30) {
							t.Fatalf("%s: C[%d,%d] = %v, want %v (|err| %.3g > %.3g)", name, i, j, got, want[i*N+j], d, eps*mag[i*N+j])
						}
					}
				}
				if C[len(C)-2] != tail[0] && !(math.IsNaN(float64(tail[0])) && math.IsNaN(float64(C[len(C)-2]))) {
					t.Fatalf("%s: wrote past the end of C", name)
				}
			}
		}
	}
}

// TestSgemmDeterministic checks that a call's bits do not depend on the
// workspace's history.
func TestSgemmDeterministic(t *testing.T) {
	kr := Best()
	if kr == nil {
		t.Skip("no assembly kernel runs on this CPU")
	}
	r := rand.New(rand.NewPCG(3, 4))
	M, N, K := 100, 300, 700
	A, B := randSlice(r, M*K), randSlice(r, K*N)
	c1, c2 := make([]float32, M*N), make([]float32, M*N)
	var w1, w2 Workspace
	kr.Sgemm(&w1, false, false, M, N, K, 1, A, K, B, N, 0, c1, N)
	kr.Sgemm(&w2, true, true, 50, 60, 70, 1, A, 50, B, 70, 0, c2, 60) // dirty w2
	kr.Sgemm(&w2, false, false, M, N, K, 1, A, K, B, N, 0, c2, N)
	for i := range c1 {
		if math.Float32bits(c1[i]) != math.Float32bits(c2[i]) {
			t.Fatalf("element %d: %v then %v", i, c1[i], c2[i])
		}
	}
}

func TestSgemmShapeErrors(t *testing.T) {
	kr := Best()
	if kr == nil {
		t.Skip("no assembly kernel runs on this CPU")
	}
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("a too-short C did not panic")
		}
	}()
	var w Workspace
	kr.Sgemm(&w, false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 3), 2)
}

func BenchmarkSgemm(b *testing.B) {
	for _, kr := range []*Kernel{AVX512, AVX2} {
		if kr.Available() {
			benchSgemm(b, kr)
		}
	}
}

func benchSgemm(b *testing.B, kr *Kernel) {
	for _, sh := range []struct {
		tA, tB  bool
		M, N, K int
	}{{false, false, 192, 2704, 1600}, {true, false, 1600, 2704, 192}, {false, true, 192, 1600, 2704}, {false, false, 384, 1024, 1728}} {
		b.Run(fmt.Sprintf("%s_%v%v_%dx%dx%d", kr.Name, sh.tA, sh.tB, sh.M, sh.N, sh.K), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			A, B, C := randSlice(r, sh.M*sh.K), randSlice(r, sh.K*sh.N), make([]float32, sh.M*sh.N)
			lda, ldb := sh.K, sh.N
			if sh.tA {
				lda = sh.M
			}
			if sh.tB {
				ldb = sh.K
			}
			var w Workspace
			for b.Loop() {
				kr.Sgemm(&w, sh.tA, sh.tB, sh.M, sh.N, sh.K, 1, A, lda, B, ldb, 0, C, sh.N)
			}
			b.ReportMetric(2*float64(sh.M)*float64(sh.N)*float64(sh.K)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// kernels returns every kernel this CPU runs, and skips when there is none.
func kernels(t *testing.T) []*Kernel {
	var out []*Kernel
	for _, kr := range []*Kernel{AVX512, AVX2} {
		if kr.Available() {
			out = append(out, kr)
		} else {
			t.Logf("the %s kernel cannot run on this CPU: not tested", kr.Name)
		}
	}
	if len(out) == 0 {
		t.Skip("no assembly kernel runs on this CPU")
	}
	return out
}

package blas

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// testLib returns the library Load finds, or skips the test when there is
// none, unless ALEXCL_REQUIRE_BLAS=1 (CI with OpenBLAS installed), where it
// fails.
func testLib(t testing.TB) *Lib {
	t.Helper()
	l, err := Load()
	if err != nil {
		if os.Getenv("ALEXCL_REQUIRE_BLAS") == "1" && !errors.Is(err, ErrOff) {
			t.Fatalf("ALEXCL_REQUIRE_BLAS=1 but: %v", err)
		}
		t.Skipf("no BLAS library: %v", err)
	}
	return l
}

// naive is the reference: C = alpha·op(A)·op(B) + beta·C with leading
// dimensions, summed in float64; beta 0 never reads C.
func naive(tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var s float64
			for k := 0; k < K; k++ {
				var a, b float32
				if tA {
					a = A[k*lda+i]
				} else {
					a = A[i*lda+k]
				}
				if tB {
					b = B[j*ldb+k]
				} else {
					b = B[k*ldb+j]
				}
				s += float64(a) * float64(b)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(C[i*ldc+j])
			}
			C[i*ldc+j] = float32(v)
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

// TestSgemmCrossCheck runs sgemm_ and cblas_sgemm against the naive
// reference on shapes of 1, primes and sizes around the register and cache
// blocking of OpenBLAS's kernels (multiples of 4, 8, 16, 24, 32 and ±1),
// every transpose, padded leading dimensions, and beta 0 over a C full of
// NaN (which must not leak). Elements of C outside the M×N window (the
// padding) must be left alone.
func TestSgemmCrossCheck(t *testing.T) {
	l := testLib(t)
	t.Logf("library: %s, %d threads", l.Describe(), l.Threads())
	rng := rand.New(rand.NewPCG(7, 7))
	dims := []int{1, 2, 3, 7, 8, 15, 16, 17, 23, 31, 32, 33, 47, 64, 97, 127, 129, 257}
	pick := func() int { return dims[rng.IntN(len(dims))] }
	var abis []ABI
	for _, a := range []ABI{Fortran, CBLAS} {
		if l.Has(a) {
			abis = append(abis, a)
		}
	}
	f := new(Frame)
	for trial := 0; trial < 300; trial++ {
		M, N, K := pick(), pick(), pick()
		if trial%50 == 0 {
			M, N, K = 384+trial%7, 513, 1031 // past OpenBLAS's K and N cache blocks
		}
		tA, tB := trial&1 != 0, trial&2 != 0
		pad := trial % 3 // padded leading dimensions every third trial
		ar, ac := M, K
		if tA {
			ar, ac = K, M
		}
		br, bc := K, N
		if tB {
			br, bc = N, K
		}
		lda, ldb, ldc := ac+pad, bc+2*pad, N+pad
		A, B := randSlice(rng, ar*lda), randSlice(rng, br*ldb)
		alpha, beta := float32(1), float32(0)
		switch trial % 4 {
		case 1:
			alpha, beta = 0.5, 2
		case 2:
			alpha, beta = -1, 1
		}
		C0 := randSlice(rng, M*ldc)
		if beta == 0 {
			for i := 0; i < M; i++ {
				for j := 0; j < N; j++ {
					C0[i*ldc+j] = float32(math.NaN())
				}
			}
		}
		want := append([]float32(nil), C0...)
		naive(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, want, ldc)
		for _, abi := range abis {
			got := append([]float32(nil), C0...)
			if err := l.SgemmFrame(f, abi, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, got, ldc); err != nil {
				t.Fatal(err)
			}
			tol := 1e-5 * float64(K)
			for i := range want {
				g, w := float64(got[i]), float64(want[i])
				if !(math.Abs(g-w) <= tol+1e-5*math.Abs(w)) {
					t.Fatalf("%v tA=%v tB=%v M=%d N=%d K=%d lda=%d ldb=%d ldc=%d alpha=%v beta=%v: first mismatch at C[%d,%d]: got %v, want %v",
						abi, tA, tB, M, N, K, lda, ldb, ldc, alpha, beta, i/ldc, i%ldc, g, w)
				}
			}
		}
	}
}

// TestSgemmArgs checks that bad shapes are errors, not crashes.
func TestSgemmArgs(t *testing.T) {
	l := testLib(t)
	A, B, C := make([]float32, 6), make([]float32, 6), make([]float32, 4)
	for _, c := range []struct {
		M, N, K, lda, ldb, ldc int
		tA                     bool
	}{
		{-1, 2, 3, 3, 2, 2, false},
		{2, 2, 3, 2, 2, 2, false}, // lda < K
		{2, 2, 4, 4, 2, 2, false}, // A too short
		{3, 2, 3, 3, 2, 2, false}, // C too short
	} {
		if err := l.Sgemm(c.tA, false, c.M, c.N, c.K, 1, A, c.lda, B, c.ldb, 0, C, c.ldc); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := l.Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, C, 2); err != nil || C[0] != 0 {
		t.Errorf("K=0: err %v, C %v", err, C)
	}
}

// TestSgemmAllocs checks that SgemmFrame allocates nothing.
func TestSgemmAllocs(t *testing.T) {
	l := testLib(t)
	if !l.Has(Fortran) {
		t.Skip("no sgemm_")
	}
	A, B, C := make([]float32, 64), make([]float32, 64), make([]float32, 64)
	f := new(Frame)
	if n := testing.AllocsPerRun(100, func() {
		l.SgemmFrame(f, Fortran, false, true, 8, 8, 8, 1, A, 8, B, 8, 0, C, 8)
	}); n != 0 {
		t.Errorf("SgemmFrame allocates %v times a call", n)
	}
}

func benchSgemm(b *testing.B, n, threads int) {
	l := testLib(b)
	if !l.SetThreads(threads) && threads != 1 {
		b.Skip("cannot set the thread count")
	}
	defer l.SetThreads(1)
	rng := rand.New(rand.NewPCG(1, 2))
	A, B, C := randSlice(rng, n*n), randSlice(rng, n*n), make([]float32, n*n)
	f := new(Frame)
	for b.Loop() {
		if err := l.SgemmFrame(f, Fortran, false, false, n, n, n, 1, A, n, B, n, 0, C, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkSgemm1024x1 is a 1024³ SGEMM on one library thread.
func BenchmarkSgemm1024x1(b *testing.B) { benchSgemm(b, 1024, 1) }

// BenchmarkSgemm1024x2 is the same on two library threads.
func BenchmarkSgemm1024x2(b *testing.B) { benchSgemm(b, 1024, 2) }

package cpu

import (
	"fmt"
	"os"

	"github.com/alexcl/alexcl/device/cpu/blas"
	"github.com/alexcl/alexcl/device/cpu/sgemm"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GEMM has three paths, side by side, with one contract:
//
//	C = alpha·op(A)·op(B) + beta·C, row-major with leading dimensions;
//	with beta 0, C is never read (NaN in it must not leak);
//	the bits of C depend only on the call's shape, transposes, leading
//	dimensions and data — never on the number of workers or scheduling.
//
// The two fast paths are single-threaded GEMMs that our own goroutines run
// several of at once (one per worker), on panels and sample chunks whose
// split is a function of the shape alone; each sums every element in an
// order fixed by the call's shape, so a fixed split gives the same bits run
// after run. This is what determinism rests on.
//
//   - gemmAsm: package sgemm, alexcl's micro-kernels in Go assembly
//     (AVX-512, or AVX2 with FMA).
//   - gemmBLAS: a system BLAS (OpenBLAS) loaded at run time by package blas
//     and set to one thread. (Had OpenBLAS threads been used, its split
//     would follow its thread count instead of ours.)
//
// The generic path is gonum's float32 BLAS (SIMD assembly inner loops,
// ≈12–16 GFLOP/s a core here); gonum splits C into fixed 64×64 blocks and
// walks K in fixed 64-blocks, choosing serial or parallel from the shape
// alone. Its Aᵀ·B and Aᵀ·Bᵀ kernels are strided and slow (0.3–10 GFLOP/s),
// so a transposed A is first copied into (M, K).
//
// TestGemmPathsCrossCheck runs every path this machine has against
// device/ref on random shapes around the blocking cut-offs.
//
// ALEXCL_GEMM chooses the path: avx512, avx2, blas or go; unset or auto
// takes the first of those this machine has, in that order. (Our AVX2
// kernel comes before OpenBLAS: on this project's machine, whole training
// steps ran 0–20% faster with it than with OpenBLAS's AVX2 kernels, though
// a lone large GEMM was ≈5% slower; BENCHMARKS.md. So OpenBLAS serves CPUs
// without AVX2, e.g. arm64. ALEXCL_BLAS=off, which keeps package blas from
// loading a library, leaves auto without it.)

var gonumImpl gonum.Implementation

// gemmPath is which GEMM a device runs.
type gemmPath int

const (
	gemmGonum gemmPath = iota
	gemmBLAS
	gemmAsm // package sgemm; Device.kern says which kernel
)

// gemmFromEnv chooses the GEMM path from ALEXCL_GEMM and what the machine
// has. On an error the returned path is the automatic choice.
func gemmFromEnv() (gemmPath, *sgemm.Kernel, *blas.Lib, error) {
	// A BLAS library is loaded only when it will run: loading OpenBLAS
	// starts its thread pool, which costs CPU time even when idle.
	auto := func() (gemmPath, *sgemm.Kernel, *blas.Lib) {
		if k := sgemm.Best(); k != nil {
			return gemmAsm, k, nil
		}
		if lib, err := blas.Load(); err == nil {
			return gemmBLAS, nil, lib
		}
		return gemmGonum, nil, nil
	}
	fail := func(format string, args ...any) (gemmPath, *sgemm.Kernel, *blas.Lib, error) {
		p, k, lib := auto()
		return p, k, lib, fmt.Errorf(format, args...)
	}
	switch v := os.Getenv("ALEXCL_GEMM"); v {
	case "", "auto":
		p, k, lib := auto()
		return p, k, lib, nil
	case "avx512", "avx2":
		k := sgemm.AVX512
		if v == "avx2" {
			k = sgemm.AVX2
		}
		if !k.Available() {
			return fail("cpu: ALEXCL_GEMM=%s, but this CPU (or OS) does not support it, or ALEXCL_AVX512=off hides it; unset ALEXCL_GEMM to use the fastest GEMM there is", v)
		}
		return gemmAsm, k, nil, nil
	case "blas":
		lib, err := blas.Load()
		if err != nil {
			return fail("cpu: ALEXCL_GEMM=blas: %w", err)
		}
		return gemmBLAS, nil, lib, nil
	case "go", "gonum":
		return gemmGonum, nil, nil, nil
	default:
		return fail("cpu: ALEXCL_GEMM=%q: want avx512, avx2, blas, go or auto", v)
	}
}

// worker is the per-goroutine state of one op: its BLAS argument frame and
// scratch slices carved from the device's arena.
type worker struct {
	idx   int // which goroutine of the op: indexes per-worker scratch
	frame blas.Frame
	ws    sgemm.Workspace // the assembly path's packing buffers
	tr    []float32       // the generic path's transposed copy of A
}

// sgemm runs one GEMM on the calling goroutine (the assembly kernel, the
// BLAS library) or on gonum's own goroutines (the generic path).
//
//	A is (M, lda ≥ K), or (K, lda ≥ M) when tA
//	B is (K, ldb ≥ N), or (N, ldb ≥ K) when tB
//	C is (M, ldc ≥ N)
func (d *Device) sgemm(w *worker, tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	if M == 0 || N == 0 {
		return
	}
	switch d.path {
	case gemmAsm:
		d.kern.Sgemm(&w.ws, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
		return
	case gemmBLAS:
		// The shapes were checked by the op; an error here is a bug in
		// this package, not a user error.
		if err := d.lib.SgemmFrame(&w.frame, blas.Fortran, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); err != nil {
			panic("cpu: " + err.Error())
		}
		return
	}
	if tA {
		// (K, M) with stride lda → (M, K) packed.
		if cap(w.tr) < M*K {
			w.tr = alignedFloats(M * K)
		}
		t := w.tr[:M*K]
		transposeStrided(A, lda, t, K, M)
		A, lda = t, K
	}
	tb := gblas.NoTrans
	if tB {
		tb = gblas.Trans
	}
	if K == 0 {
		scaleC(C, ldc, M, N, beta)
		return
	}
	gonumImpl.Sgemm(gblas.NoTrans, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
}

// scaleC sets C (M, ldc) to beta·C, writing zeros (never reading) for beta 0.
func scaleC(C []float32, ldc, M, N int, beta float32) {
	for i := 0; i < M; i++ {
		row := C[i*ldc : i*ldc+N]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// transposeStrided writes dst (cols, rows), packed, = srcᵀ for src (rows,
// cols) with row stride ld, in 32×32 tiles.
func transposeStrided(src []float32, ld int, dst []float32, rows, cols int) {
	const tile = 32
	for i0 := 0; i0 < rows; i0 += tile {
		for j0 := 0; j0 < cols; j0 += tile {
			for i := i0; i < min(i0+tile, rows); i++ {
				row := src[i*ld : i*ld+cols]
				for j := j0; j < min(j0+tile, cols); j++ {
					dst[j*rows+i] = row[j]
				}
			}
		}
	}
}

// gemmPanels is how many panels a GEMM of this shape is cut into, and
// whether along N (else along M): a function of the shape alone. Panels are
// at least 64 wide and carry at least ~8 MFLOP each, at most 16 of them.
func gemmPanels(M, N, K int) (panels int, alongN bool) {
	alongN = N >= M
	dim := M
	if alongN {
		dim = N
	}
	flops := 2 * float64(M) * float64(N) * float64(K)
	panels = min(16, max(1, dim/64), max(1, int(flops/8e6)))
	return panels, alongN
}

// gemm is the whole-matrix GEMM of Device.Gemm, on all workers.
//
//	A is (M, K), or (K, M) when tA
//	B is (K, N), or (N, K) when tB
//	C is (M, N)
func (d *Device) gemm(tA, tB bool, M, N, K int, alpha float32, A, B []float32, beta float32, C []float32) {
	lda, ldb := K, N
	if tA {
		lda = M
	}
	if tB {
		ldb = K
	}
	ar := d.acquire()
	defer d.release(ar)
	if d.path == gemmGonum {
		// gonum parallelises by itself.
		d.sgemm(ar.worker(0), tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, N)
		return
	}
	panels, alongN := gemmPanels(M, N, K)
	d.run(ar, panels, func(w *worker, p int) {
		if alongN {
			j0, j1 := N*p/panels, N*(p+1)/panels
			Bp := B[j0:] // columns j0.. of (K, N)
			if tB {
				Bp = B[j0*K:] // rows j0.. of (N, K)
			}
			d.sgemm(w, tA, tB, M, j1-j0, K, alpha, A, lda, Bp, ldb, beta, C[j0:], N)
			return
		}
		i0, i1 := M*p/panels, M*(p+1)/panels
		Ap := A[i0*K:] // rows i0.. of (M, K)
		if tA {
			Ap = A[i0:] // columns i0.. of (K, M)
		}
		d.sgemm(w, tA, tB, i1-i0, N, K, alpha, Ap, lda, B, ldb, beta, C[i0*N:], N)
	})
}

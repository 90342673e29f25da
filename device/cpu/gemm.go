package cpu

import (
	"github.com/alexcl/alexcl/device/cpu/blas"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GEMM has two paths, side by side, with one contract:
//
//	C = alpha·op(A)·op(B) + beta·C, row-major with leading dimensions;
//	with beta 0, C is never read (NaN in it must not leak);
//	the bits of C depend only on the call's shape, transposes, leading
//	dimensions and data — never on the number of workers or scheduling.
//
// The fast path is a system BLAS (OpenBLAS) loaded at run time by package
// blas, set to one thread: our own goroutines run several single-threaded
// GEMMs at once (one per worker), on panels and sample chunks whose split
// is a function of the shape alone. OpenBLAS's single-threaded sgemm blocks
// K and sums each element in a fixed order for a given shape, so a fixed
// split gives the same bits run after run; this is what determinism rests
// on. (Had OpenBLAS threads been used, its split would follow its thread
// count instead of ours.)
//
// The generic path is gonum's float32 BLAS (SIMD assembly inner loops,
// ≈12–16 GFLOP/s a core here); gonum splits C into fixed 64×64 blocks and
// walks K in fixed 64-blocks, choosing serial or parallel from the shape
// alone. Its Aᵀ·B and Aᵀ·Bᵀ kernels are strided and slow (0.3–10 GFLOP/s),
// so a transposed A is first copied into (M, K).
//
// TestGemmPathsCrossCheck runs both paths and device/ref on random shapes
// around the blocking cut-offs; ALEXCL_BLAS=off forces the generic path.

var gonumImpl gonum.Implementation

// worker is the per-goroutine state of one op: its BLAS argument frame and
// scratch slices carved from the device's arena.
type worker struct {
	idx   int // which goroutine of the op: indexes per-worker scratch
	frame blas.Frame
	tr    []float32 // the generic path's transposed copy of A
}

// sgemm runs one GEMM on the calling goroutine (the BLAS library) or on
// gonum's own goroutines (the generic path).
//
//	A is (M, lda ≥ K), or (K, lda ≥ M) when tA
//	B is (K, ldb ≥ N), or (N, ldb ≥ K) when tB
//	C is (M, ldc ≥ N)
func (d *Device) sgemm(w *worker, tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	if M == 0 || N == 0 {
		return
	}
	if d.lib != nil {
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
	if d.lib == nil {
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

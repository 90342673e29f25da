package cpu

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GEMM goes through gonum's float32 BLAS (gonum.org/v1/gonum/blas/gonum),
// whose Sgemm uses SIMD assembly for its inner loops. Measured against a
// packed, register-blocked pure-Go GEMM (4×8 micro-kernel) on 1024³, one
// thread, in CPU time: gonum 15.0 (NN), 16.1 (NT), 9.9 (TN) GFLOP per
// CPU-second versus 4.0–4.2 for the pure-Go kernel; gonum's Aᵀ·Bᵀ path is
// strided and ran at 0.3. So a transposed A is first copied into (M, K)
// row-major and only the NN and NT kernels are called.
//
// Determinism: gonum splits C into fixed 64×64 blocks, each owned by one
// goroutine that walks K in fixed 64-blocks, and chooses serial or parallel
// from the shape alone, so the bits depend only on the shape, never on
// GOMAXPROCS or scheduling.

var blasImpl gonum.Implementation

// scratchPool recycles the transposed copies of A.
var scratchPool sync.Pool

// sgemm computes C = alpha·op(A)·op(B) + beta·C, row-major, with the
// meaning of device.Device.Gemm. With beta 0, C is not read (gonum zeroes
// it first). workers bounds the goroutines used for the transposed copy.
//
//	A is (M, K), or (K, M) when tA
//	B is (K, N), or (N, K) when tB
//	C is (M, N)
func sgemm(workers int, tA, tB bool, M, N, K int, alpha float32, A, B []float32, beta float32, C []float32) {
	A, B, C = A[:M*K], B[:K*N], C[:M*N]
	if tA {
		p := getScratch(M * K)
		defer scratchPool.Put(p)
		transpose(workers, A, *p, K, M) // (K, M) → (M, K)
		A = *p
	}
	tb, ldb := blas.NoTrans, N
	if tB {
		tb, ldb = blas.Trans, K
	}
	blasImpl.Sgemm(blas.NoTrans, tb, M, N, K, alpha, A, K, B, ldb, beta, C, N)
}

func getScratch(n int) *[]float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// transpose writes dst (cols, rows) = srcᵀ for src (rows, cols), in 32×32
// tiles, rows split between workers.
func transpose(workers int, src, dst []float32, rows, cols int) {
	const tile = 32
	parallelFor(workers, (rows+tile-1)/tile, 8, func(lo, hi int) {
		for i0 := lo * tile; i0 < min(hi*tile, rows); i0 += tile {
			for j0 := 0; j0 < cols; j0 += tile {
				for i := i0; i < min(i0+tile, rows); i++ {
					row := src[i*cols : (i+1)*cols]
					for j := j0; j < min(j0+tile, cols); j++ {
						dst[j*rows+i] = row[j]
					}
				}
			}
		}
	})
}

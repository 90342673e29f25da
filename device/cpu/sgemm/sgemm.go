// Package sgemm is alexcl's own single-precision GEMM for the CPU device:
// a register-blocked AVX-512 micro-kernel in Go assembly under a
// BLIS-style blocked driver (pack a K×N panel of B, pack an M×K block of
// A, sweep 12×32 tiles of C), single-threaded, so that the CPU device runs
// one per worker goroutine on panels of its own choosing.
//
// It is used where the CPU has AVX-512F: there it runs at ≈250 GFLOP/s a
// core (Zen 5), where OpenBLAS restricted to its AVX2 kernels, as this
// project's machines pin it with OPENBLAS_CORETYPE=Haswell, gives about
// half. Available reports whether it can run here.
//
// Contract (that of the CPU device's GEMM):
//
//	C = alpha·op(A)·op(B) + beta·C, row-major with leading dimensions;
//	with beta 0, C is never read (NaN in it does not leak);
//	the order of every sum is fixed by the shape, so the bits are a
//	function of the call's shape and data alone (never of timing).
package sgemm

import "fmt"

// The blocking. mr×nr is the micro-kernel's tile of C (12 rows of two
// 16-float vectors: 24 of the 32 ZMM registers accumulate). kc bounds the
// K-slice packed at a time: a kc×nr sliver of B (32 KiB) stays in L1 while
// the kernel sweeps it against every A sliver of the block. mc×kc floats
// of packed A (192 KiB) stay in L2; nc×kc of packed B (3 MiB) in L3.
const (
	mr = 12
	nr = 32
	kc = 256
	mc = 16 * mr
	nc = 96 * nr
)

// Available reports whether the CPU and OS support the AVX-512 kernel.
func Available() bool { return hasAVX512 }

// Workspace is the packing scratch of one goroutine's GEMMs. The zero
// value is ready; it grows to its full size (≈3.3 MiB) on first use and is
// reused after, so steady-state calls allocate nothing. A Workspace must
// not be shared by concurrent calls.
type Workspace struct {
	a, b []float32
	tile [mr * nr]float32
}

func (w *Workspace) grow() {
	if w.a == nil {
		w.a = make([]float32, mc*kc)
		w.b = make([]float32, kc*nc)
	}
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C on the calling goroutine.
//
//	A is (M, lda ≥ K), or (K, lda ≥ M) when tA
//	B is (K, ldb ≥ N), or (N, ldb ≥ K) when tB
//	C is (M, ldc ≥ N)
//
// It panics when the kernel is not Available or the slices are too short
// for the shape; both are bugs in the caller.
func Sgemm(w *Workspace, tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	if !hasAVX512 {
		panic("sgemm: no AVX-512 on this CPU")
	}
	if err := check(tA, tB, M, N, K, A, lda, B, ldb, C, ldc); err != nil {
		panic("sgemm: " + err.Error())
	}
	if M == 0 || N == 0 {
		return
	}
	if K == 0 || alpha == 0 {
		scale(C, ldc, M, N, beta)
		return
	}
	w.grow()
	for j0 := 0; j0 < N; j0 += nc {
		n := min(nc, N-j0)
		for p0 := 0; p0 < K; p0 += kc {
			k := min(kc, K-p0)
			packB(w.b, tB, B, ldb, p0, j0, k, n)
			bet := beta
			if p0 > 0 {
				bet = 1
			}
			for i0 := 0; i0 < M; i0 += mc {
				m := min(mc, M-i0)
				packA(w.a, tA, A, lda, i0, p0, m, k)
				w.block(m, n, k, alpha, bet, C[i0*ldc+j0:], ldc)
			}
		}
	}
}

// block runs the micro-kernel over one packed m×k block of A and k×n
// panel of B, into C (offset to the block's corner).
func (w *Workspace) block(m, n, k int, alpha, beta float32, C []float32, ldc int) {
	for j := 0; j < n; j += nr {
		bp := &w.b[j*k]
		nn := min(nr, n-j)
		for i := 0; i < m; i += mr {
			ap := &w.a[i*k]
			mm := min(mr, m-i)
			if mm == mr && nn == nr {
				kernelAVX512(k, ap, bp, &C[i*ldc+j], ldc, alpha, beta)
				continue
			}
			// An edge tile: compute the whole tile aside, then merge the
			// part that exists.
			kernelAVX512(k, ap, bp, &w.tile[0], nr, alpha, 0)
			for ii := 0; ii < mm; ii++ {
				row := C[(i+ii)*ldc+j : (i+ii)*ldc+j+nn]
				t := w.tile[ii*nr : ii*nr+nn]
				if beta == 0 {
					copy(row, t)
					continue
				}
				for jj := range row {
					row[jj] = t[jj] + beta*row[jj]
				}
			}
		}
	}
}

// packB copies op(B)[p0:p0+k, j0:j0+n] into dst as ⌈n/nr⌉ slivers of k×nr
// floats, k-major, the last one padded with zeros.
func packB(dst []float32, tB bool, B []float32, ldb, p0, j0, k, n int) {
	for s := 0; s < n; s += nr {
		w := min(nr, n-s)
		sl := dst[s*k : s*k+k*nr]
		if !tB {
			for p := 0; p < k; p++ {
				src := B[(p0+p)*ldb+j0+s:]
				d := sl[p*nr : p*nr+nr]
				copy(d[:w], src[:w])
				clear(d[w:])
			}
			continue
		}
		for jj := 0; jj < w; jj++ {
			src := B[(j0+s+jj)*ldb+p0:]
			src = src[:k]
			for p, v := range src {
				sl[p*nr+jj] = v
			}
		}
		if w < nr {
			for p := 0; p < k; p++ {
				clear(sl[p*nr+w : p*nr+nr])
			}
		}
	}
}

// packA copies op(A)[i0:i0+m, p0:p0+k] into dst as ⌈m/mr⌉ slivers of k×mr
// floats, k-major, the last one padded with zeros.
func packA(dst []float32, tA bool, A []float32, lda, i0, p0, m, k int) {
	for s := 0; s < m; s += mr {
		h := min(mr, m-s)
		sl := dst[s*k : s*k+k*mr]
		if tA {
			for p := 0; p < k; p++ {
				src := A[(p0+p)*lda+i0+s:]
				d := sl[p*mr : p*mr+mr]
				copy(d[:h], src[:h])
				clear(d[h:])
			}
			continue
		}
		for ii := 0; ii < h; ii++ {
			src := A[(i0+s+ii)*lda+p0:]
			src = src[:k]
			for p, v := range src {
				sl[p*mr+ii] = v
			}
		}
		if h < mr {
			for p := 0; p < k; p++ {
				clear(sl[p*mr+h : p*mr+mr])
			}
		}
	}
}

// scale sets C (M, ldc) to beta·C, writing zeros (never reading) for beta 0.
func scale(C []float32, ldc, M, N int, beta float32) {
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

// check validates the shape against the slices' lengths.
func check(tA, tB bool, M, N, K int, A []float32, lda int, B []float32, ldb int, C []float32, ldc int) error {
	if M < 0 || N < 0 || K < 0 {
		return fmt.Errorf("negative shape %d×%d×%d", M, N, K)
	}
	ar, ac := M, K
	if tA {
		ar, ac = K, M
	}
	br, bc := K, N
	if tB {
		br, bc = N, K
	}
	for _, m := range []struct {
		name              string
		n, rows, cols, ld int
	}{{"A", len(A), ar, ac, lda}, {"B", len(B), br, bc, ldb}, {"C", len(C), M, N, ldc}} {
		if m.ld < max(1, m.cols) {
			return fmt.Errorf("ld%s %d < %d columns", m.name, m.ld, m.cols)
		}
		if m.rows > 0 && m.cols > 0 && m.n < (m.rows-1)*m.ld+m.cols {
			return fmt.Errorf("%s has %d elements, %d×%d with stride %d needs %d", m.name, m.n, m.rows, m.cols, m.ld, (m.rows-1)*m.ld+m.cols)
		}
	}
	return nil
}

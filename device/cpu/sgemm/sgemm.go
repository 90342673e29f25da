// Package sgemm is alexcl's own single-precision GEMM for the CPU device:
// register-blocked micro-kernels in Go assembly (12×32 for AVX-512, 6×16
// for AVX2 with FMA) under a BLIS-style blocked driver (pack a K×N panel of
// B, pack an M×K block of A, sweep the tiles of C), single-threaded, so
// that the CPU device runs one per worker goroutine on panels of its own
// choosing.
//
// On this project's 2-core Zen 5 machine the AVX-512 kernel runs at ≈250
// GFLOP/s a core, about twice what OpenBLAS gives there with its AVX2
// kernels (the machines pin it with OPENBLAS_CORETYPE=Haswell). Best
// returns the widest kernel the CPU has.
//
// Contract (that of the CPU device's GEMM):
//
//	C = alpha·op(A)·op(B) + beta·C, row-major with leading dimensions;
//	with beta 0, C is never read (NaN in it does not leak);
//	the order of every sum is fixed by the shape and the kernel, so the
//	bits are a function of the call's shape, data and kernel alone.
package sgemm

import "fmt"

// Kernel is one micro-kernel: its mr×nr tile of C, and the assembly that
// computes a tile and copies rows of nr floats.
type Kernel struct {
	Name     string
	mr, nr   int
	ok       bool // the CPU and OS support it
	tile     func(kc int, a, b, c *float32, ldc int, alpha, beta float32)
	copyRows func(dst, src *float32, lds int, rows int)
}

// The kernels. AVX512: 12 rows of two 16-float vectors, 24 of the 32 ZMM
// registers accumulating. AVX2: 6 rows of two 8-float vectors, 12 of the 16
// YMM registers. (tile, copyRows and ok are set by the platform's init.)
var (
	AVX512 = &Kernel{Name: "avx512", mr: 12, nr: 32}
	AVX2   = &Kernel{Name: "avx2", mr: 6, nr: 16}
)

// hasAVX is whether transpose8 and transpose6 can run.
var hasAVX bool

// Available reports whether the CPU and OS support the kernel.
func (k *Kernel) Available() bool { return k.ok }

// Best returns the widest kernel this CPU supports, or nil.
func Best() *Kernel {
	for _, k := range []*Kernel{AVX512, AVX2} {
		if k.ok {
			return k
		}
	}
	return nil
}

// The blocking, shared by the kernels. kc bounds the K-slice packed at a
// time: a kc×nr sliver of B (32 KiB for AVX-512) stays in L1 while the
// kernel sweeps it against every A sliver of the block. mc×kc floats of
// packed A (192 KiB) stay in L2; nc×kc of packed B (3 MiB) in L3. mc is a
// multiple of every mr, nc of every nr.
const (
	kc    = 256
	mc    = 192
	nc    = 3072
	maxMR = 12
	maxNR = 32
)

// Workspace is the packing scratch of one goroutine's GEMMs. The zero
// value is ready; it grows to its full size (≈3.3 MiB) on first use and is
// reused after, so steady-state calls allocate nothing. A Workspace must
// not be shared by concurrent calls.
type Workspace struct {
	a, b []float32
	tile [maxMR * maxNR]float32
}

// Bytes is the memory the workspace holds.
func (w *Workspace) Bytes() int64 { return int64(len(w.a)+len(w.b)+len(w.tile)) * 4 }

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
func (kr *Kernel) Sgemm(w *Workspace, tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	if !kr.ok {
		panic("sgemm: the " + kr.Name + " kernel cannot run on this CPU")
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
			kr.packB(w.b, tB, B, ldb, p0, j0, k, n)
			bet := beta
			if p0 > 0 {
				bet = 1
			}
			for i0 := 0; i0 < M; i0 += mc {
				m := min(mc, M-i0)
				kr.packA(w.a, tA, A, lda, i0, p0, m, k)
				kr.block(w, m, n, k, alpha, bet, C[i0*ldc+j0:], ldc)
			}
		}
	}
}

// block runs the micro-kernel over one packed m×k block of A and k×n
// panel of B, into C (offset to the block's corner).
func (kr *Kernel) block(w *Workspace, m, n, k int, alpha, beta float32, C []float32, ldc int) {
	mr, nr := kr.mr, kr.nr
	for j := 0; j < n; j += nr {
		bp := &w.b[j*k]
		nn := min(nr, n-j)
		for i := 0; i < m; i += mr {
			ap := &w.a[i*k]
			mm := min(mr, m-i)
			if mm == mr && nn == nr {
				kr.tile(k, ap, bp, &C[i*ldc+j], ldc, alpha, beta)
				continue
			}
			// An edge tile: compute the whole tile aside, then merge the
			// part that exists.
			kr.tile(k, ap, bp, &w.tile[0], nr, alpha, 0)
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
func (kr *Kernel) packB(dst []float32, tB bool, B []float32, ldb, p0, j0, k, n int) {
	nr := kr.nr
	for s := 0; s < n; s += nr {
		w := min(nr, n-s)
		sl := dst[s*k : s*k+k*nr]
		if !tB && w == nr {
			_ = B[(p0+k-1)*ldb+j0+s+nr-1]
			kr.copyRows(&sl[0], &B[p0*ldb+j0+s], ldb, k)
			continue
		}
		if !tB {
			for p := 0; p < k; p++ {
				src := B[(p0+p)*ldb+j0+s:]
				d := sl[p*nr : p*nr+nr]
				copy(d[:w], src[:w])
				clear(d[w:])
			}
			continue
		}
		// Columns of the sliver are rows of B: transpose 8×8 blocks,
		// then the last k mod 8 rows and the last w mod 8 columns.
		k8 := k / 8 * 8
		if !hasAVX {
			k8 = 0
		}
		for g := 0; g+8 <= w; g += 8 {
			if k8 > 0 {
				// Bounds: the block reads rows j0+s+g … +7, elements
				// p0 … p0+k8−1 of each.
				_ = B[(j0+s+g+7)*ldb+p0+k8-1]
				transpose8(&sl[g], nr, &B[(j0+s+g)*ldb+p0], ldb, k8/8)
			}
		}
		for jj := 0; jj < w; jj++ {
			src := B[(j0+s+jj)*ldb+p0:]
			src = src[:k]
			p1 := k8
			if jj >= w/8*8 {
				p1 = 0
			}
			for p := p1; p < k; p++ {
				sl[p*nr+jj] = src[p]
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
func (kr *Kernel) packA(dst []float32, tA bool, A []float32, lda, i0, p0, m, k int) {
	mr := kr.mr
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
		// Rows of the sliver's columns: with all its rows there, 8×8
		// transposes (12 rows: rows 0–7 and 4–11, writing 4–7 twice) or
		// 6×8 ones cover k rounded down to 8; the rest goes element by
		// element.
		k8, p1 := k/8*8, 0
		if h == mr && k8 > 0 && hasAVX && (mr == 12 || mr == 6) {
			_ = A[(i0+s+mr-1)*lda+p0+k8-1]
			if mr == 12 {
				transpose8(&sl[0], mr, &A[(i0+s)*lda+p0], lda, k8/8)
				transpose8(&sl[4], mr, &A[(i0+s+4)*lda+p0], lda, k8/8)
			} else {
				transpose6(&sl[0], &A[(i0+s)*lda+p0], lda, k8/8)
			}
			p1 = k8
		}
		for ii := 0; ii < h; ii++ {
			src := A[(i0+s+ii)*lda+p0:]
			src = src[:k]
			for p := p1; p < k; p++ {
				sl[p*mr+ii] = src[p]
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

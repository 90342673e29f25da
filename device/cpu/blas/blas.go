// Package blas is a thin binding to a system BLAS library's single-precision
// GEMM, loaded at run time with purego (no cgo): OpenBLAS by default, or any
// library that exports the Fortran sgemm_ or the CBLAS cblas_sgemm with
// 32-bit integers.
//
// The binding knows nothing of alexcl's devices; device/cpu uses it for its
// GEMMs when a library is found and falls back to pure Go when not.
//
// # Choosing the library
//
// Load honours the environment variable ALEXCL_BLAS:
//
//	unset or ""   try libopenblas.so.0, libopenblas.so, libblas.so.3, libcblas.so.3 in turn
//	off           load nothing (Load returns ErrOff)
//	/path/lib.so  load that file and nothing else
//
// 64-bit-integer builds (libopenblas64, ILP64 MKL) are not supported: their
// sgemm reads 8-byte integers and would misread the arguments.
//
// # Kernels
//
// OpenBLAS built with DYNAMIC_ARCH picks its kernels from the CPU model.
// Up to at least 0.3.21 (Debian 12) it does not know AMD Zen 5 and falls
// back to its AVX2 Haswell kernels, which run SGEMM at about half the speed
// of its AVX-512 SkylakeX kernels there (≈90 against ≈170 GFLOP/s a core,
// measured). alexcl does not override OpenBLAS's choice: some OpenBLAS
// builds compute wrong results on CPUs they do not recognise, so the user
// decides, with OPENBLAS_CORETYPE=SkylakeX, after `alexcl selftest --device
// cpu` passes with it.
//
// # Threads
//
// OpenBLAS runs its own thread pool. Lib.SetThreads sets its size
// (openblas_set_num_threads); device/cpu sets it to 1 and runs several
// single-threaded GEMMs from its own goroutines, so the cores are not
// oversubscribed and the split of the work does not depend on OpenBLAS.
// Other libraries have no portable thread call: set their own variable
// (MKL_NUM_THREADS=1, BLIS_NUM_THREADS=1) when they are threaded.
package blas

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// ErrOff is returned by Load when ALEXCL_BLAS=off.
var ErrOff = errors.New("blas: disabled by ALEXCL_BLAS=off")

// ErrNotFound wraps the reason no library could be loaded.
var ErrNotFound = errors.New("blas: no usable BLAS library")

// Candidates lists the library names Load tries, in order, when ALEXCL_BLAS
// is unset.
var Candidates = []string{"libopenblas.so.0", "libopenblas.so", "libblas.so.3", "libcblas.so.3"}

// ABI selects the entry point Sgemm calls.
type ABI int

const (
	// Fortran is sgemm_, every argument by reference (the reference BLAS ABI).
	Fortran ABI = iota
	// CBLAS is cblas_sgemm with CblasRowMajor.
	CBLAS
)

// String is the entry point's C name.
func (a ABI) String() string {
	if a == CBLAS {
		return "cblas_sgemm"
	}
	return "sgemm_"
}

// Lib is a loaded BLAS library. Its methods may be called from several
// goroutines at once.
type Lib struct {
	path     string
	handle   uintptr
	sgemmF   uintptr // sgemm_, 0 if absent
	sgemmC   uintptr // cblas_sgemm, 0 if absent
	cblas    func(order, tA, tB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	setThr   uintptr // openblas_set_num_threads, 0 if absent
	getThr   uintptr // openblas_get_num_threads, 0 if absent
	corename string
	config   string
	frames   sync.Pool // *Frame for callers that pass none
}

var (
	loadOnce sync.Once
	loaded   *Lib
	loadErr  error
)

// Load returns the process's BLAS library, chosen by ALEXCL_BLAS (see the
// package comment), loading it on the first call. A library that is found
// but has neither sgemm_ nor cblas_sgemm is skipped. It never panics.
func Load() (*Lib, error) {
	loadOnce.Do(func() {
		env := os.Getenv("ALEXCL_BLAS")
		switch env {
		case "off", "OFF", "0", "none":
			loadErr = ErrOff
			return
		case "":
			var errs []error
			for _, name := range Candidates {
				l, err := Open(name)
				if err == nil {
					loaded = l
					return
				}
				errs = append(errs, err)
			}
			loadErr = fmt.Errorf("%w: %w", ErrNotFound, errors.Join(errs...))
		default:
			loaded, loadErr = Open(env)
			if loadErr != nil {
				loadErr = fmt.Errorf("%w (ALEXCL_BLAS=%s; unset it to search, or set it to off): %w", ErrNotFound, env, loadErr)
			}
		}
	})
	return loaded, loadErr
}

// Open loads the library at path (a file name the dynamic loader searches
// for, or a path) and resolves its GEMM entry points. Opening the same
// library twice returns two Libs over one loaded copy.
func Open(path string) (*Lib, error) {
	h, err := dlopen(path)
	if err != nil {
		return nil, fmt.Errorf("blas: open %s: %w", path, err)
	}
	l := &Lib{path: path, handle: h}
	l.sgemmF = dlsym(h, "sgemm_")
	l.sgemmC = dlsym(h, "cblas_sgemm")
	if l.sgemmF == 0 && l.sgemmC == 0 {
		return nil, fmt.Errorf("blas: %s has neither sgemm_ nor cblas_sgemm", path)
	}
	if l.sgemmC != 0 {
		registerCBLAS(&l.cblas, l.sgemmC)
	}
	l.setThr = dlsym(h, "openblas_set_num_threads")
	l.getThr = dlsym(h, "openblas_get_num_threads")
	l.corename = cstringFunc(h, "openblas_get_corename")
	l.config = cstringFunc(h, "openblas_get_config")
	return l, nil
}

// Path is the name the library was opened by.
func (l *Lib) Path() string { return l.path }

// Has reports whether the library exports abi's entry point.
func (l *Lib) Has(abi ABI) bool {
	if abi == CBLAS {
		return l.sgemmC != 0
	}
	return l.sgemmF != 0
}

// Describe is a one-line description: the file, and for OpenBLAS its
// build configuration and the kernel core it picked.
func (l *Lib) Describe() string {
	s := l.path
	if l.config != "" {
		s += " (" + l.config
		if l.corename != "" {
			s += ", core " + l.corename
		}
		s += ")"
	}
	return s
}

// SetThreads sets the size of the library's own thread pool and reports
// whether it could (only OpenBLAS exports a call for it).
func (l *Lib) SetThreads(n int) bool {
	if l.setThr == 0 || n < 1 {
		return false
	}
	callInts(l.setThr, uintptr(n))
	return true
}

// Threads returns the library's thread-pool size, or 0 when it cannot say.
func (l *Lib) Threads() int {
	if l.getThr == 0 {
		return 0
	}
	return int(int32(callInts(l.getThr)))
}

// Frame holds the by-reference scalar arguments of one sgemm_ call. A caller
// that makes many calls keeps one per goroutine and passes it to SgemmFrame,
// so that a call allocates nothing.
type Frame struct {
	ta, tb                byte
	_                     [2]byte
	m, n, k, lda, ldb, ld int32
	alpha, beta           float32
	args                  [15]uintptr // the call's argument list (load_unix.go)
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices with
// leading dimensions (the row strides, in elements): op(A) is M×K, op(B) is
// K×N, C is M×N. It calls sgemm_ when the library has it, else cblas_sgemm.
// With beta 0, C is not read.
//
//	A is (M, lda ≥ K), or (K, lda ≥ M) when tA
//	B is (K, ldb ≥ N), or (N, ldb ≥ K) when tB
//	C is (M, ldc ≥ N)
func (l *Lib) Sgemm(tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) error {
	f, _ := l.frames.Get().(*Frame)
	if f == nil {
		f = new(Frame)
	}
	err := l.SgemmFrame(f, Fortran, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
	l.frames.Put(f)
	return err
}

// SgemmFrame is Sgemm through the given ABI (falling back to the other when
// the library lacks it), with the caller's Frame for sgemm_'s arguments. f
// must not be used by another call at the same time.
func (l *Lib) SgemmFrame(f *Frame, abi ABI, tA, tB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) error {
	if err := checkArgs(tA, tB, M, N, K, A, lda, B, ldb, C, ldc); err != nil {
		return err
	}
	if M == 0 || N == 0 {
		return nil
	}
	if K == 0 || alpha == 0 {
		// C = beta·C, without reading A and B (which may be empty).
		for i := 0; i < M; i++ {
			row := C[i*ldc : i*ldc+N]
			for j := range row {
				if beta == 0 {
					row[j] = 0
				} else {
					row[j] *= beta
				}
			}
		}
		return nil
	}
	if abi == CBLAS && l.sgemmC == 0 {
		abi = Fortran
	}
	if abi == Fortran && l.sgemmF == 0 {
		abi = CBLAS
	}
	if abi == CBLAS {
		const rowMajor, noTrans, trans = 101, 111, 112
		ta, tb := int32(noTrans), int32(noTrans)
		if tA {
			ta = trans
		}
		if tB {
			tb = trans
		}
		l.cblas(rowMajor, ta, tb, int32(M), int32(N), int32(K), alpha, &A[0], int32(lda), &B[0], int32(ldb), beta, &C[0], int32(ldc))
		return nil
	}
	// Row-major C (M×N) is column-major Cᵀ (N×M) = op(B)ᵀ·op(A)ᵀ, and a
	// row-major matrix read column-major is its transpose; so swap the
	// operands and keep each one's transpose flag.
	f.ta, f.tb = 'N', 'N'
	if tB {
		f.ta = 'T'
	}
	if tA {
		f.tb = 'T'
	}
	f.m, f.n, f.k = int32(N), int32(M), int32(K)
	f.lda, f.ldb, f.ld = int32(ldb), int32(lda), int32(ldc)
	f.alpha, f.beta = alpha, beta
	callSgemm(l.sgemmF, f, &B[0], &A[0], &C[0])
	return nil
}

// checkArgs verifies that the shapes fit 32-bit BLAS integers and the
// slices, so that the library never reads or writes outside them.
func checkArgs(tA, tB bool, M, N, K int, A []float32, lda int, B []float32, ldb int, C []float32, ldc int) error {
	if M < 0 || N < 0 || K < 0 {
		return fmt.Errorf("blas: sgemm sizes M=%d N=%d K=%d must not be negative", M, N, K)
	}
	const maxInt32 = 1<<31 - 1
	if M > maxInt32 || N > maxInt32 || K > maxInt32 || lda > maxInt32 || ldb > maxInt32 || ldc > maxInt32 {
		return fmt.Errorf("blas: sgemm sizes M=%d N=%d K=%d lda=%d ldb=%d ldc=%d exceed 32-bit BLAS integers", M, N, K, lda, ldb, ldc)
	}
	need := func(name string, s []float32, rows, cols, ld int) error {
		if ld < max(1, cols) {
			return fmt.Errorf("blas: sgemm %s: leading dimension %d < %d columns", name, ld, cols)
		}
		if rows == 0 || cols == 0 {
			return nil
		}
		if n := (rows-1)*ld + cols; len(s) < n {
			return fmt.Errorf("blas: sgemm %s: %d elements, need %d for %dx%d with ld %d", name, len(s), n, rows, cols, ld)
		}
		return nil
	}
	ar, ac := M, K
	if tA {
		ar, ac = K, M
	}
	br, bc := K, N
	if tB {
		br, bc = N, K
	}
	if err := need("A", A, ar, ac, lda); err != nil {
		return err
	}
	if err := need("B", B, br, bc, ldb); err != nil {
		return err
	}
	return need("C", C, M, N, ldc)
}

// Package devicetest is the one test suite every device.Device
// implementation runs: buffer handling, the error contract of device/doc.go
// and every op, forward and backward, on random inputs and awkward shapes,
// compared against the plain Go references of device/ref (computed on the
// host in float64) and against PyTorch fixtures (see torch.go).
//
// A device's test calls it in one line:
//
//	func TestSuite(t *testing.T) { devicetest.RunAll(t, cpu.New()) }
//
// The cases do not need package testing: `alexcl selftest` runs the same
// Cases on any device and prints a table.
//
// # Tolerances
//
// An element passes when |got − want| ≤ abs_i + rel·|want|. want is the
// reference evaluated in float64 on the same float32 inputs, so the
// tolerance only has to cover the device's own float32 rounding:
//
//   - Ops that are a copy or one rounding (ReLU, AddBias, pooling's y and
//     idx, dropout masks and values, softmax ranks) must match exactly.
//   - Ops that sum n products (Gemm, convolutions, BiasGrad, pooling's dx)
//     get abs_i = min(n+2, 8·√(n+2))·ε·B_i, where B_i is the same op
//     evaluated on the absolute values of its inputs (Σ|a|·|b|) and
//     ε = 2⁻²³; rel = 2ε covers the final rounding. (n+2)·ε·B_i is the
//     worst-case bound for a float32 sum in any order; rounding errors add
//     up like a random walk, so for large n the error stays near √n·ε·B_i
//     (with a sequential sum of same-sign terms about √(n/3)·ε·B_i), and
//     8·√n keeps a wide margin while staying tight enough that a missing
//     or doubled term (~B_i/n) or a gradient that overwrites instead of
//     accumulating is caught even when the result cancels to near zero.
//     TestSuiteCatchesBugs checks that it does.
//   - LRN uses pow, which OpenCL allows 16 ulp: 1e-5 relative to the same
//     kind of magnitude bound (20 ulp of pow and sum error, times 4).
//   - Softmax cross-entropy sums `classes` exponentials (3 ulp each in
//     OpenCL): abs = 2·(classes+8)·ε (per sample, divided by n for dlogits).
//   - SGD is three products and two differences: 4ε of the magnitude of the
//     terms.
//
// None of these depend on the device: a tolerance is never widened to make
// an implementation pass.
package devicetest

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
)

// Case is one check of a device: an op (or a buffer operation) on one shape.
type Case struct {
	Op    string // the Device method or contract rule checked, e.g. "Conv2DForward"
	Shape string // the shape and parameters, e.g. "N=1 C=3 H=227 ..."
	// Run performs the check on d and frees everything it allocated.
	Run func(d device.Device) Result
}

// Result is the outcome of one Case.
type Result struct {
	MaxAbs   float64       // largest |got − want| over the compared outputs
	MaxRel   float64       // largest |got − want|/|want| over elements with want ≠ 0
	BadIndex int           // flat index of the first element out of tolerance, -1 if none
	Err      error         // nil when the case passed; names the output, index, got and want
	Skip     string        // non-empty when the case could not run on this device, and why
	Elapsed  time.Duration // time spent in the device calls checked (each followed by Sync)
}

// Failed reports whether the case failed.
func (r Result) Failed() bool { return r.Err != nil }

// Name is the case's name as used for subtests and in the selftest table.
func (c Case) Name() string { return c.Op + "/" + c.Shape }

// RunAll runs every case of Cases on d as a subtest, failing each that does
// not pass with the op, shape, first bad index, got and want.
func RunAll(t *testing.T, d device.Device) {
	t.Helper()
	runCases(t, d, Cases())
}

// runCases runs cs on d as subtests.
func runCases(t *testing.T, d device.Device, cs []Case) {
	for _, c := range cs {
		t.Run(c.Op+"/"+c.Shape, func(t *testing.T) {
			r := c.Run(d)
			if r.Skip != "" {
				t.Skip(r.Skip)
			}
			if r.Err != nil {
				t.Fatalf("%s %s: %v", c.Op, c.Shape, r.Err)
			}
			t.Logf("max abs err %.3g, max rel err %.3g, %v", r.MaxAbs, r.MaxRel, r.Elapsed)
		})
	}
}

// Cases returns every check of the suite, in a fixed order. Each case
// draws its inputs from its own generator seeded by its name, so results do
// not depend on which cases run before it.
func Cases() []Case {
	var cs []Case
	cs = append(cs, bufferCases()...)
	cs = append(cs, contractCases()...)
	cs = append(cs, gemmCases()...)
	cs = append(cs, biasCases()...)
	cs = append(cs, convCases()...)
	cs = append(cs, reluCases()...)
	cs = append(cs, poolCases()...)
	cs = append(cs, lrnCases()...)
	cs = append(cs, dropoutCases()...)
	cs = append(cs, softmaxCases()...)
	cs = append(cs, sgdCases()...)
	return cs
}

// eps is float32's machine epsilon, 2⁻²³.
const eps = 1.0 / (1 << 23)

// SumTol is ref.SumTol: the abs coefficient, relative to Σ|terms|, for a
// float32 sum of n terms in any order (see the package comment).
func SumTol(n int) float64 { return ref.SumTol(n) }

// harness holds one case's device, generator and buffers, and records the
// first failure; after a failure every further step is skipped.
type harness struct {
	d     device.Device
	rng   *rand.Rand
	bufs  []device.Buffer
	start device.MemStats
	res   Result
}

// newHarness starts a case on d with a generator seeded by op and shape.
func newHarness(d device.Device, op, shape string) *harness {
	f := fnv.New64a()
	f.Write([]byte(op + "|" + shape))
	return &harness{
		d:     d,
		rng:   rand.New(rand.NewPCG(f.Sum64(), 0x0a1e_c1_2012)),
		start: d.MemStats(),
		res:   Result{BadIndex: -1},
	}
}

// failed reports whether the case has already failed.
func (h *harness) failed() bool { return h.res.Err != nil || h.res.Skip != "" }

// fail records the first failure.
func (h *harness) fail(format string, args ...any) {
	if h.res.Err == nil {
		h.res.Err = fmt.Errorf(format, args...)
	}
}

// must records err, prefixed by what, and reports whether it was nil.
func (h *harness) must(what string, err error) bool {
	if err != nil {
		h.fail("%s: %w", what, err)
		return false
	}
	return true
}

// alloc allocates size bytes and remembers the buffer for finish.
func (h *harness) alloc(size int) device.Buffer {
	if h.failed() {
		return nil
	}
	b, err := h.d.Alloc(size)
	if !h.must(fmt.Sprintf("Alloc(%d)", size), err) {
		return nil
	}
	if b == nil || b.Size() != size {
		h.fail("Alloc(%d) returned a buffer of %v bytes", size, sizeOf(b))
		return nil
	}
	h.bufs = append(h.bufs, b)
	return b
}

// sizeOf is b.Size(), or "nil".
func sizeOf(b device.Buffer) any {
	if b == nil {
		return "nil"
	}
	return b.Size()
}

// free frees b now instead of in finish.
func (h *harness) free(b device.Buffer) error {
	for i, x := range h.bufs {
		if x == b {
			h.bufs = append(h.bufs[:i], h.bufs[i+1:]...)
			break
		}
	}
	return h.d.Free(b)
}

// upload allocates a buffer holding x.
func (h *harness) upload(x []float32) device.Buffer {
	b := h.alloc(4 * len(x))
	if b != nil {
		h.must("Write", h.d.Write(b, 0, device.Float32Bytes(x)))
	}
	return b
}

// uploadInt32 allocates a buffer holding x.
func (h *harness) uploadInt32(x []int32) device.Buffer {
	b := h.alloc(4 * len(x))
	if b != nil {
		h.must("Write", h.d.Write(b, 0, device.Int32Bytes(x)))
	}
	return b
}

// garbage allocates n elements filled with NaN (as int32: 0x7fc00000), so
// an op that reads a buffer it should only overwrite is caught.
func (h *harness) garbage(n int) device.Buffer { return h.upload(nans(n)) }

// run times f followed by Sync and records an error from either.
func (h *harness) run(op string, f func() error) {
	if h.failed() {
		return
	}
	t0 := time.Now()
	err := f()
	if err == nil {
		err = h.d.Sync()
	}
	h.res.Elapsed += time.Since(t0)
	h.must(op, err)
}

// read returns the first n float32 elements of b.
func (h *harness) read(b device.Buffer, n int) []float32 {
	if h.failed() {
		return nil
	}
	out, err := device.ReadFloat32(h.d, b, n)
	if !h.must("Read", err) {
		return nil
	}
	return out
}

// readInt32 returns the first n int32 elements of b.
func (h *harness) readInt32(b device.Buffer, n int) []int32 {
	if h.failed() {
		return nil
	}
	out, err := device.ReadInt32(h.d, b, n)
	if !h.must("Read", err) {
		return nil
	}
	return out
}

// finish frees every buffer, checks that MemStats is back where the case
// started, and returns the result.
func (h *harness) finish() Result {
	for i := len(h.bufs) - 1; i >= 0; i-- {
		h.must("Free", h.d.Free(h.bufs[i]))
	}
	h.bufs = nil
	if ms := h.d.MemStats(); ms.InUse != h.start.InUse || ms.Buffers != h.start.Buffers {
		h.fail("MemStats after freeing every buffer of the case: InUse %d bytes in %d buffers, want %d in %d",
			ms.InUse, ms.Buffers, h.start.InUse, h.start.Buffers)
	}
	return h.res
}

// expect compares got with want element by element:
// |got−want| ≤ abs·bound[i] + rel·|want[i]| (bound nil: abs alone). A NaN
// want requires a NaN; a NaN got fails otherwise.
func (h *harness) expect(name string, got []float32, want, bound []float64, abs, rel float64) {
	if h.failed() {
		return
	}
	if len(got) != len(want) {
		h.fail("%s: got %d elements, want %d", name, len(got), len(want))
		return
	}
	for i, g := range got {
		w := want[i]
		gf := float64(g)
		if math.IsNaN(w) || math.IsNaN(gf) {
			if !(math.IsNaN(w) && math.IsNaN(gf)) {
				h.res.BadIndex = i
				h.fail("%s[%d]: got %g, want %g", name, i, g, w)
				return
			}
			continue
		}
		diff := math.Abs(gf - w)
		if math.IsInf(w, 0) && gf == w {
			diff = 0
		}
		tol := abs + rel*math.Abs(w)
		if bound != nil {
			tol = abs*bound[i] + rel*math.Abs(w)
		}
		h.res.MaxAbs = math.Max(h.res.MaxAbs, diff)
		if w != 0 {
			h.res.MaxRel = math.Max(h.res.MaxRel, diff/math.Abs(w))
		}
		if !(diff <= tol) {
			h.res.BadIndex = i
			h.fail("%s[%d]: got %.9g, want %.9g (|diff| %.3g > tolerance %.3g)", name, i, g, w, diff, tol)
			return
		}
	}
}

// expectExact requires got to equal want (as values: -0 == 0).
func (h *harness) expectExact(name string, got, want []float32) {
	h.expect(name, got, f64(want), nil, 0, 0)
}

// expectInt32 requires got to equal want.
func (h *harness) expectInt32(name string, got, want []int32) {
	if h.failed() {
		return
	}
	if len(got) != len(want) {
		h.fail("%s: got %d elements, want %d", name, len(got), len(want))
		return
	}
	for i := range want {
		if got[i] != want[i] {
			h.res.BadIndex = i
			h.fail("%s[%d]: got %d, want %d", name, i, got[i], want[i])
			return
		}
	}
}

// expectErr requires err to be non-nil and to mention op (compared without
// case and underscores, so "Conv2DForward" matches "conv2d_forward").
func (h *harness) expectErr(what, op string, err error) {
	if h.failed() {
		return
	}
	if err == nil {
		h.fail("%s: no error", what)
		return
	}
	if op != "" && !strings.Contains(squash(err.Error()), squash(op)) {
		h.fail("%s: error %q does not name the op %s", what, err, op)
	}
}

// squash lower-cases s and drops underscores.
func squash(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "") }

// ---------------------------------------------------------------------------
// Input generators and conversions

// normal returns n samples of N(0, scale²).
func (h *harness) normal(n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(h.rng.NormFloat64() * scale)
	}
	return x
}

// negative returns n values in (−2.01, −0.01]: all strictly negative.
func (h *harness) negative(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(-0.01 - 2*h.rng.Float64())
	}
	return x
}

// few returns n values drawn from the k+1 values {0, 0.5, ..., k/2} minus
// k/4, so that equal values (ties) are common.
func (h *harness) few(n, k int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(h.rng.IntN(k+1))/2 - float32(k)/4
	}
	return x
}

// gen returns n inputs of the named kind: "normal", "negative" or "ties".
func (h *harness) gen(kind string, n int, scale float64) []float32 {
	switch kind {
	case "negative":
		x := h.negative(n)
		for i := range x {
			x[i] *= float32(scale)
		}
		return x
	case "ties":
		return h.few(n, 4)
	}
	return h.normal(n, scale)
}

// nans returns n quiet NaNs.
func nans(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.NaN())
	}
	return x
}

// f64 converts x to float64.
func f64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// abs64 converts x to float64 absolute values.
func abs64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = math.Abs(float64(v))
	}
	return y
}

// f32 rounds x to float32.
func f32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// clone32 copies x.
func clone32(x []float32) []float32 { return append([]float32(nil), x...) }

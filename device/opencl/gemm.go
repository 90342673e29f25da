package opencl

import (
	"fmt"
	"strings"

	"github.com/alexcl/alexcl/device"
)

// gemmCall is one launch of a gemm.cl kernel: C[z] = alpha·Σ_t opA·opB +
// beta·C[z] + bias over batch entries z = b1*nb2 + b2. The fields are the
// kernel arguments of the same names (gemm.cl's header says how each
// addresses its matrix); zero counts nb1, nb2, nt mean 1 and a nil bias
// means none. All offsets and strides are in float32 elements.
type gemmCall struct {
	M, N, K     int
	alpha, beta float32

	A              device.Buffer
	aoff, sam, sak int
	B              device.Buffer
	boff, sbk, sbn int
	C              device.Buffer
	coff, ldc      int
	bias           device.Buffer
	biasoff        int

	nb1, nb2                     int
	as1, as2, bs1, bs2, cs1, cs2 int
	biass2                       int
	nt, ast, bst                 int

	// Split K (gemmSplit): ks runs of kc, run r's partial product at C +
	// r*cks. Zero ks means one run, the whole of K.
	ks, kc, cks int
}

// Kernel families for the matrix products, chosen per device (see vector).
const (
	gemmTiled   = "tiled"   // gemm: local-memory tiles, for GPUs
	gemmBlocked = "blocked" // gemm_blk: gemm's tiles with float4 block reads, double-buffered, for GPUs
	gemmVector  = "vector"  // gemm_vec / gemm_dot: vector registers, for CPUs
)

// gemmKind returns which kernel family the device's matrix products use:
// Options.Defines["GEMM_KIND"] when it is "tiled", "blocked" or "vector",
// else "vector" on devices of type CPU (POCL, Intel's CPU runtime) and
// "tiled" on GPUs and accelerators.
func (d *Device) gemmKind() string {
	switch k := d.opts.Defines["GEMM_KIND"]; k {
	case gemmTiled, gemmBlocked, gemmVector:
		return k
	}
	if strings.Contains(d.info.Type, "CPU") {
		return gemmVector
	}
	return gemmTiled
}

// vector reports whether the device uses the CPU kernel family.
func (d *Device) vector() bool { return d.gemmKind() == gemmVector }

// gemm queues g on the kernel that suits the device and g's strides:
// gemm_vec where B is contiguous along n and gemm_dot where both operands
// are contiguous along k (vector devices), else gemm_blk (blocked) or the
// tiled gemm.
func (d *Device) gemm(g gemmCall) error {
	nb1, nb2, nt, ks := max(g.nb1, 1), max(g.nb2, 1), max(g.nt, 1), max(g.ks, 1)
	kc := g.kc
	if ks == 1 {
		kc = g.K
	}
	hasBias := 0
	bias := g.bias
	if bias != nil {
		hasBias = 1
	} else {
		bias = g.C // not read: hasbias is 0
	}
	args := []any{g.M, g.N, g.K, g.alpha,
		g.A, g.aoff, g.sam, g.sak,
		g.B, g.boff, g.sbk, g.sbn,
		g.beta, g.C, g.coff, g.ldc,
		bias, g.biasoff, hasBias,
		nb2, g.as1, g.as2, g.bs1, g.bs2, g.cs1, g.cs2, g.biass2,
		nt, g.ast, g.bst,
		ks, kc, g.cks}
	nb := nb1 * nb2 * ks
	if d.vector() {
		switch {
		case g.sbn == 1:
			vw := d.tunable("GEMMV_VW", 16)
			mr := d.tunable("GEMMV_MR", 6)
			lm := d.tunable("GEMMV_LM", 8)
			rows := ceilMul(ceilMul(g.M, mr)/mr, lm)
			return d.launch("gemm_vec", []int{ceilMul(g.N, 2*vw) / (2 * vw), rows, nb}, []int{1, lm, 1}, args...)
		case g.sak == 1 && g.sbk == 1:
			lm := min(d.tunable("GEMMV_LM", 8), ceilMul(g.M, 4)/4)
			rows := ceilMul(ceilMul(g.M, 4)/4, lm)
			return d.launch("gemm_dot", []int{ceilMul(g.N, 4) / 4, rows, nb}, []int{1, lm, 1}, args...)
		}
	}
	set := d.gemmFor(g.M, g.N, g.K) // gemmset.go
	global, local := set.t.ndrange(g.M, g.N)
	return d.launch(set.kernel, append(global, nb), append(local, 1), args...)
}

// Split K. A product whose C has too few tiles to fill a GPU runs on a
// few compute units, each walking the whole of K alone: a linear layer's
// x·Wᵀ at batch 128 (fc6: M = 128, N = 4096, K = 9216) is 128 work-groups
// of 64×64, or 32 of 128×128, for an H100's 132 compute units, and
// Winograd F(3×3, 5×5)'s filter gradient of paper's conv2 is 98 to 196
// (49 entries × 2 groups of 128×48, K = the tiles of the whole batch). On
// GPU families such a product (gemmSplits) runs as ks runs of K in one
// launch, each run's partial product into workspace slot 4, and
// gemm_sum_splits adds them in run order, times alpha, plus beta·C. The
// sum's order changes, so the bits do, but it is the same order every
// time. ALEXCL_CL_LEGACY=splitk turns it off (both uses), to measure what
// it gains.
var (
	splitGroupsPerCU = 4   // the work-groups per compute unit a split aims at (host-only define GEMM_SPLIT_GROUPS)
	splitMinK        = 256 // the shortest run of K worth a split
	splitMax         = 16  // the most runs
)

// gemmSplits returns into how many runs of K to cut nb M×N×K products: 1
// (no split) on the vector family, with ALEXCL_CL_LEGACY=splitk, or when
// C's tiles already give GEMM_SPLIT_GROUPS (splitGroupsPerCU) work-groups per compute unit;
// else enough runs for that many, each at least splitMinK long, at most
// splitMax, and their partial products within the workspace cap and within
// the largest buffer the device allows.
func (d *Device) gemmSplits(M, N, K, nb int) int {
	if d.vector() || d.legacy.noSplitK {
		return 1
	}
	t := d.gemmFor(M, N, K).t
	tiles := ceilMul(M, t.TSM) / t.TSM * (ceilMul(N, t.TSN) / t.TSN) * max(nb, 1)
	want := d.tunable("GEMM_SPLIT_GROUPS", splitGroupsPerCU) * max(d.info.ComputeUnits, 1)
	if tiles >= want {
		return 1
	}
	room := min(d.wsCap(), d.maxAlloc) / max(4*int64(M)*int64(N)*int64(max(nb, 1)), 1)
	s := min(ceilMul(want, tiles)/tiles, K/splitMinK, splitMax, int(min(room, int64(splitMax))))
	return max(s, 1)
}

// gemmSplit computes g, whose products C[z] follow each other (ldc = N,
// cs2 = M·N, cs1 = nb2·M·N) and have no bias, as the sum of the partial
// products of about splits runs of K, each a whole number of K steps
// of the set that runs it (gemmFor). The caller holds d.ws.mu.
func (d *Device) gemmSplit(g gemmCall, splits int) error {
	nb1, nb2 := max(g.nb1, 1), max(g.nb2, 1)
	mn := g.M * g.N
	if g.bias != nil || g.coff != 0 || g.ldc != g.N || nb2 > 1 && g.cs2 != mn || nb1 > 1 && g.cs1 != nb2*mn {
		return fmt.Errorf("gemmSplit: C is not a run of whole products from its start, or has a bias")
	}
	kc, ks := d.splitRuns(g, splits)
	part, err := d.slot(4, ks*nb1*nb2*mn) // (ks, nb1*nb2, M, N)
	if err != nil {
		return err
	}
	p := g
	p.alpha, p.beta = 1, 0
	p.C, p.coff, p.ldc, p.cs1, p.cs2 = part, 0, g.N, nb2*mn, mn
	p.ks, p.kc, p.cks = ks, kc, nb1*nb2*mn
	if err := d.gemm(p); err != nil {
		return err
	}
	return d.launch1D("gemm_sum_splits", nb1*nb2*mn, part, g.C, nb1*nb2*g.M, g.N, g.N, ks, g.alpha, g.beta)
}

// splitRuns returns the length kc of about splits runs of g's K, a whole
// number of K steps of the set that runs g (gemmFor, as d.gemm launches
// it), and the number of runs ks.
func (d *Device) splitRuns(g gemmCall, splits int) (kc, ks int) {
	tsk := d.gemmFor(g.M, g.N, g.K).tsk
	kc = ceilMul((g.K+splits-1)/max(splits, 1), tsk)
	return kc, (g.K + kc - 1) / kc
}

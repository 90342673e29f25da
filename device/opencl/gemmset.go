package opencl

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/alexcl/alexcl/device/opencl/cl"
)

// Two tile sets for the matrix products. The tuner picks the GEMM tiles
// that run its three AlexNet shapes fastest, and on an H200 that was
// gemm_blk's 128×128 tiles of 8×8 blocks. But a training step's products
// are of many shapes, and large tiles lose on some of them: with 128×128
// tiles, the backward products of paper's conv2 in Winograd F(3×3, 5×5)
// (an M or N of 48) and of conv4 (192) took 20–30% longer than on 64×64
// tiles (H200, per-layer kernel times), though the step as a whole ran
// 8% faster. So where the tuner's choice has tiles larger than 64×64, it
// also records the fastest candidate of at most 64×64 (GEMMS_KIND,
// GEMMS_TSM, ... in the record: host-only defines, the small set), Open
// builds gemm.cl a second time with those tiles, and each product takes
// the small set when the large tiles would pad its M×N×K by more than 15%
// over the small ones (K padded to whole K steps, image by image where a
// product sums several, as gemm.cl walks them). On the H200 that made
// paper's step 6–7% faster and mini's 14%. The rule is by shape alone, so a
// product runs on the same kernel, and gives the same bits, every time.
// ALEXCL_CL_LEGACY=small builds no small set (one tile set for every
// product), to measure what it gains. The GEMMS_* defines, set by the
// user, replace the tuned small set as a whole (GEMMS_KIND=off: none)
// and leave the rest of the tuning on. The tuner's own timing of the
// convolutions' paths runs on the main set only; the per-shape choice at
// first use (shapes.go) runs on both, as training does.

// gemmSet is one build of the tiled or blocked GEMM: its tiles and the
// kernel (a name in d.kernels) that runs them.
type gemmSet struct {
	t      tiling
	tsk    int
	kernel string
}

// smallSuffix ends the names under which the small set's kernels are in
// d.kernels (and in the profiler's tables).
const smallSuffix = ":small"

// smallArea is the largest TSM·TSN of the small set: 64×64, or a tile of
// as many elements.
const smallArea = 64 * 64

// gemmMain returns the tile set of the device's program.
func (d *Device) gemmMain() gemmSet {
	kernel := "gemm"
	if d.gemmKind() == gemmBlocked && d.kernels["gemm_blk"] != nil { // built where WPTM, WPTN are multiples of 4
		kernel = "gemm_blk"
	}
	return gemmSet{t: d.tilingOf("GEMM"), tsk: d.tunable("GEMM_TSK", 16), kernel: kernel}
}

// gemmFor returns the tile set that runs M×N products of depth K per
// image: the small set where it is built and the rule above picks it,
// else the main one. The number of images summed inside a product
// multiplies both sets' padded work alike, so it does not enter the rule:
// every product of one op, however its images are cut into runs, takes
// the same set.
func (d *Device) gemmFor(M, N, K int) gemmSet {
	g := d.gemmMain()
	small := d.small // once: Close sets it to nil
	if small == nil {
		return g
	}
	pad := func(s gemmSet) int64 {
		return int64(ceilMul(M, s.t.TSM)) * int64(ceilMul(N, s.t.TSN)) * int64(ceilMul(max(K, 1), s.tsk))
	}
	if pad(g)*100 > pad(*small)*115 {
		return *small
	}
	return g
}

// smallDefines returns the small set's GEMM defines (GEMM_KIND, GEMM_TSM,
// ...) from the GEMMS_ ones in defs, or nil when defs names none or
// GEMMS_KIND is off. The set must be tiled or blocked, with tiles of at
// most 64×64 elements; its fit to a device is fits' (Open, validate).
func smallDefines(defs map[string]string) (map[string]string, error) {
	kind, ok := defs["GEMMS_KIND"]
	if !ok {
		for _, n := range smallNames {
			if _, set := defs[n]; set {
				return nil, fmt.Errorf("%s is set without GEMMS_KIND (tiled, blocked or off)", n)
			}
		}
		return nil, nil
	}
	if kind == "off" {
		return nil, nil
	}
	if kind != gemmTiled && kind != gemmBlocked {
		return nil, fmt.Errorf("GEMMS_KIND=%q: want %s, %s or off", kind, gemmTiled, gemmBlocked)
	}
	c, err := parseCandidate(defs, "GEMMS")
	if err != nil {
		return nil, err
	}
	if c.TSM*c.TSN > smallArea {
		return nil, fmt.Errorf("GEMMS_TSM=%d, GEMMS_TSN=%d: the small set's tiles must be at most 64x64 elements", c.TSM, c.TSN)
	}
	return c.defines("GEMM"), nil
}

// smallNames are the small set's defines.
var smallNames = []string{"GEMMS_KIND", "GEMMS_TSM", "GEMMS_TSN", "GEMMS_TSK", "GEMMS_WPTM", "GEMMS_WPTN", "GEMMS_KU"}

// checkSmallFits checks that the small set defs name, if any, fits the
// device of limits l (work-group size, divisibility, local memory).
func checkSmallFits(defs map[string]string, l limits) error {
	sd, err := smallDefines(defs)
	if err != nil || sd == nil {
		return err
	}
	c, err := parseCandidate(sd, "GEMM")
	if err != nil {
		return err
	}
	if err := c.fits(l); err != nil {
		return fmt.Errorf("small gemm %v: %w", c, err)
	}
	return nil
}

// buildSmall builds the small set (gemm.cl with its tiles, through the
// kernel cache) when the defines name one, the main set is tiled or
// blocked, and ALEXCL_CL_LEGACY=small is off; its kernels join d.kernels
// under smallSuffix. It never fails Open: a set that does not build is
// logged, and every product keeps the main set.
func (d *Device) buildSmall(platform *cl.Platform) {
	defs, err := smallDefines(d.opts.Defines)
	if err != nil || defs == nil || d.vector() || d.legacy.oneGemmSet {
		return // a bad set was refused by Open (checkHostDefines) or the record's validate
	}
	start := time.Now()
	// A scratch device on d's context builds it, as Open builds d's own
	// program: the kernel cache keys it by its sources and options.
	s := &Device{info: d.info, dev: d.dev, ctx: d.ctx, opts: d.opts}
	s.opts.Defines = defs
	err = s.buildSources(platform, s.opts.sources([]string{"gemm.cl"}, nil))
	prog, kernels := s.prog, s.kernels
	if err != nil {
		d.opts.logf("warning: the small GEMM tiles (%s) did not build on %s; every product takes the main tiles: %v",
			describeDefines(defs), d.info.Name, err)
		return
	}
	set := gemmSet{t: tilingOfDefines(defs, "GEMM"), kernel: "gemm" + smallSuffix}
	set.tsk = atoiOr(defs["GEMM_TSK"], 16)
	if defs["GEMM_KIND"] == gemmBlocked && kernels["gemm_blk"] != nil {
		set.kernel = "gemm_blk" + smallSuffix
	}
	if err := fitsCompiled(kernels[strings.TrimSuffix(set.kernel, smallSuffix)], d, set.t); err != nil {
		d.opts.logf("warning: the small GEMM tiles (%s) cannot run on %s; every product takes the main tiles: %v",
			describeDefines(defs), d.info.Name, err)
		prog.Release()
		for _, k := range kernels {
			k.Release()
		}
		return
	}
	d.kernels = maps.Clone(d.kernels)
	for _, name := range []string{"gemm", "gemm_blk"} {
		if k := kernels[name]; k != nil {
			d.kernels[name+smallSuffix] = k
			delete(kernels, name)
		}
	}
	for _, k := range kernels {
		k.Release()
	}
	d.smallProg, d.small = prog, &set
	d.opts.logf("small GEMM tiles %s built in %d ms", describeDefines(defs), time.Since(start).Milliseconds())
}

// smallAlternative returns, when the chosen GEMM candidate g has tiles
// larger than 64×64, the best-scoring tiled or blocked candidate of cands
// of at most 64×64 that results measured without dropping it.
func smallAlternative(g candidate, cands []candidate, results []tuneResult) (candidate, bool) {
	if g.Kind == gemmVector || g.TSM*g.TSN <= smallArea {
		return candidate{}, false
	}
	var best candidate
	bestScore := 0.0
	for _, c := range cands {
		if c.Kind == gemmVector || c.TSM*c.TSN > smallArea {
			continue
		}
		for _, r := range results {
			if r.Family == "gemm" && r.Candidate == c.String() && r.Dropped == "" && r.Score > bestScore {
				best, bestScore = c, r.Score
			}
		}
	}
	return best, bestScore > 0
}

// fitsCompiled checks that the compiled kernel k allows the work-group
// size of tiles t (a driver may allow fewer work items than the device's
// maximum, for a kernel of many registers).
func fitsCompiled(k *cl.Kernel, d *Device, t tiling) error {
	if k == nil {
		return fmt.Errorf("no GEMM kernel in the program")
	}
	need := t.TSM / t.WPTM * (t.TSN / t.WPTN)
	if maxWG, err := k.WorkGroupSize(d.dev); err == nil && maxWG < need {
		return fmt.Errorf("the compiled kernel allows %d work items per group, it needs %d", maxWG, need)
	}
	return nil
}

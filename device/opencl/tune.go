package opencl

// The autotuner. On the first Open of a device with tuning on, before the
// program is built, it tries a handful of tunable sets ("candidates") for
// the matrix products (the kernel family, tiled, blocked or vector, and
// its tiles) and, when a GPU family (tiled or blocked) wins, for the
// forward convolution (its tiles, on conv2d_forward or on
// conv2d_forward_blk, whichever family won the matrix products); it times
// each on a few AlexNet-like shapes with OpenCL profiling events, checks
// each candidate's results against device/ref (whole outputs on small
// awkward shapes, sampled entries in float64 on the timed ones) so that a
// miscompiled variant is never chosen, and keeps the fastest. The choice
// is stored as JSON beside the kernel binaries (tune-<key>.json, written
// atomically), keyed as a binary is (the sources, the platform, device and
// driver, alexcl's version), so later Opens read it and build the program
// with its -D values through the kernel cache.
//
// Candidates are built as small programs of their own (common.cl with
// gemm.cl or conv.cl), all at once on the host's cores, and run on a
// scratch Device that shares the opened device's context and queue,
// through the very ops (Gemm, Conv2DForward) the program will serve, so
// the Go side launches them as it will later. Timed runs go in rounds
// over all candidates (see pick), and a time budget bounds the whole,
// the candidates' builds not counted (on GPUs the matrix products may
// take 65% of it, so that the forward convolution, tuned after them,
// always gets its turn). With builds counted, NVIDIA's compiler spent the
// GPU budget of an H200 on building the 14 GEMM candidates, and only the
// default was timed; without, the whole tuning took 37 s there.
// A candidate that cannot fit the device (work-group size, work-item
// sizes, local memory) is dropped before it is built; one whose compiled
// kernel allows fewer work items than it needs (registers), whose build or
// launch fails, or whose results are wrong is dropped with the reason in
// the log and the record. Tuning never fails Open: when no candidate
// passes, the device keeps the vendor defaults and nothing is saved.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alexcl/alexcl/clkernels"
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
	"github.com/alexcl/alexcl/device/ref"
)

// tuneFormat names the tuning record's format; it is also part of the
// record's key. A record of another format is ignored and re-tuned.
const tuneFormat = "alexcl-tune-v7" // v2: the blocked GEMM family; v3: K-step runs, CONV_KIND; v4: CONV_WINO, CONV_WINO5, CONV_BWDATA; v5: CONV_WINO43, CONV_WINO35; v6: GPU conv shapes at batch 128; v7: the small GEMM set (GEMMS_*)

// tunedNames are the -D tunables the tuner chooses. When Options.Defines
// sets any of them the user has chosen, and Open does not tune, except
// for the convolutions' paths (pathNames), which override the tuned
// choice of that path only, and the small GEMM set (smallNames), which
// overrides the tuned one (userTuned).
var tunedNames = slices.Concat([]string{
	"GEMM_KIND", "GEMM_TSM", "GEMM_TSN", "GEMM_TSK", "GEMM_WPTM", "GEMM_WPTN",
	"GEMMV_VW", "GEMMV_MR", "GEMMV_LM",
	"CONV_TSM", "CONV_TSN", "CONV_TSK", "CONV_WPTM", "CONV_WPTN",
	"GEMM_KU", "CONV_KU", "CONV_KIND", "CONV_WINO", "CONV_WINO43", "CONV_WINO5", "CONV_WINO35", "CONV_BWDATA",
}, smallNames)

// tuneMode says what Open does about tuning.
type tuneMode int

const (
	tuneOff   tuneMode = iota // vendor defaults (gemmKind's choice by device type)
	tuneOn                    // the stored record, or tune when there is none
	tuneForce                 // tune, replacing the record
)

// tuneModeOf returns the mode of o: ALEXCL_TUNE (off, on or force) when
// set, else on when o.Tune and off otherwise.
func tuneModeOf(o *Options) tuneMode {
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv("ALEXCL_TUNE"))); {
	case v == "force":
		return tuneForce
	case v == "", v == "auto": // the caller's choice
	case isSwitch(v):
		if off, _ := device.Switch(v); off {
			return tuneOff
		}
		return tuneOn
	default: // Open refuses it before this; a direct caller is told
		o.logf("warning: ALEXCL_TUNE=%q ignored: use off, on or force", v)
	}
	if o.Tune {
		return tuneOn
	}
	return tuneOff
}

// candidate is one set of tunables. Kind is gemmTiled, gemmBlocked or
// gemmVector; the tiled and blocked kernels (gemm, gemm_blk,
// conv2d_forward) read TSM .. WPTN, the blocked ones also KU (K steps per
// unrolled run; 0 leaves the kernel's default, runs of 2; TSK unrolls a
// tile's steps whole), the
// vector ones (gemm_vec, gemm_dot) VW, MR and LM. gemm.cl and conv.cl
// document each.
type candidate struct {
	Kind                      string
	TSM, TSN, TSK, WPTM, WPTN int
	KU                        int
	VW, MR, LM                int
}

func tiled(tsm, tsn, tsk, wptm, wptn int) candidate {
	return candidate{Kind: gemmTiled, TSM: tsm, TSN: tsn, TSK: tsk, WPTM: wptm, WPTN: wptn}
}

func blocked(tsm, tsn, tsk, wptm, wptn int) candidate {
	return candidate{Kind: gemmBlocked, TSM: tsm, TSN: tsn, TSK: tsk, WPTM: wptm, WPTN: wptn}
}

// ku returns c unrolling its K steps in runs of ku (blocked family).
func (c candidate) ku(ku int) candidate {
	c.KU = ku
	return c
}

func vector(vw, mr, lm int) candidate {
	return candidate{Kind: gemmVector, VW: vw, MR: mr, LM: lm}
}

// String names c in logs and records: "tiled 64x64x16/4x4" (tile rows x
// columns x K step / register block), "blocked 128x64x16/8x4" (K steps
// in the kernel's default runs of 2), "blocked 64x64x16/4x4 ku16" (all 16
// unrolled) or "vector vw16 mr6 lm8".
func (c candidate) String() string {
	if c.Kind == gemmVector {
		return fmt.Sprintf("vector vw%d mr%d lm%d", c.VW, c.MR, c.LM)
	}
	s := fmt.Sprintf("%s %dx%dx%d/%dx%d", c.Kind, c.TSM, c.TSN, c.TSK, c.WPTM, c.WPTN)
	if c.KU > 0 {
		s += fmt.Sprintf(" ku%d", c.KU)
	}
	return s
}

// defines returns c's -D values for the matrix products (prefix "GEMM",
// GEMM_KIND included) or for the forward convolution (prefix "CONV",
// CONV_KIND included: tiled or blocked).
func (c candidate) defines(prefix string) map[string]string {
	m := map[string]string{prefix + "_KIND": c.Kind}
	if c.Kind == gemmVector {
		m["GEMMV_VW"], m["GEMMV_MR"], m["GEMMV_LM"] = strconv.Itoa(c.VW), strconv.Itoa(c.MR), strconv.Itoa(c.LM)
		return m
	}
	for name, v := range map[string]int{"TSM": c.TSM, "TSN": c.TSN, "TSK": c.TSK, "WPTM": c.WPTM, "WPTN": c.WPTN} {
		m[prefix+"_"+name] = strconv.Itoa(v)
	}
	if c.KU > 0 {
		m[prefix+"_KU"] = strconv.Itoa(c.KU)
	}
	return m
}

// parseCandidate reads back the candidate that defines wrote for prefix;
// GEMM_KIND must be set for "GEMM". For "CONV" a missing CONV_KIND gives
// the kind GEMM_KIND implies (forConv), as convKind does.
func parseCandidate(defs map[string]string, prefix string) (candidate, error) {
	kind := defs[prefix+"_KIND"]
	if prefix == "CONV" {
		switch kind {
		case "":
			kind = gemmTiled // then forConv, below
		case gemmTiled, gemmBlocked:
		default:
			return candidate{}, fmt.Errorf("CONV_KIND=%q: want %s or %s", kind, gemmTiled, gemmBlocked)
		}
	}
	get := func(name string) (int, error) {
		v, err := strconv.Atoi(defs[name])
		if err != nil {
			return 0, fmt.Errorf("%s=%q: not an integer", name, defs[name])
		}
		return v, nil
	}
	var c candidate
	var err error
	switch kind {
	case gemmVector:
		c.Kind = kind
		for _, f := range []struct {
			name string
			p    *int
		}{{"GEMMV_VW", &c.VW}, {"GEMMV_MR", &c.MR}, {"GEMMV_LM", &c.LM}} {
			if *f.p, err = get(f.name); err != nil {
				return c, err
			}
		}
	case gemmTiled, gemmBlocked:
		c.Kind = kind
		for _, f := range []struct {
			name string
			p    *int
		}{{"_TSM", &c.TSM}, {"_TSN", &c.TSN}, {"_TSK", &c.TSK}, {"_WPTM", &c.WPTM}, {"_WPTN", &c.WPTN}} {
			if *f.p, err = get(prefix + f.name); err != nil {
				return c, err
			}
		}
		if _, ok := defs[prefix+"_KU"]; ok {
			if c.KU, err = get(prefix + "_KU"); err != nil {
				return c, err
			}
			// Checked whatever the kind: the .cl files check it in every build.
			if c.KU < 1 || c.TSK%c.KU != 0 {
				return c, fmt.Errorf("%s_KU=%d: must be at least 1 and divide %s_TSK=%d", prefix, c.KU, prefix, c.TSK)
			}
		}
		if prefix == "CONV" && defs["CONV_KIND"] == "" {
			c = c.forConv(defs["GEMM_KIND"])
		}
	default:
		return c, fmt.Errorf("GEMM_KIND=%q: want %s, %s or %s", kind, gemmTiled, gemmBlocked, gemmVector)
	}
	return c, nil
}

// forConv returns conv tiles c as the forward convolution of GEMM family
// kind runs them: conv2d_forward_blk (kind blocked, whose local tiles are
// double-buffered) where the blocked family builds it, that is with
// register blocks of multiples of 4, else conv2d_forward (tiled, which
// has no KU).
func (c candidate) forConv(kind string) candidate {
	c.Kind = gemmTiled
	if kind == gemmBlocked && c.WPTM%4 == 0 && c.WPTN%4 == 0 {
		c.Kind = gemmBlocked
	} else {
		c.KU = 0
	}
	return c
}

// limits are the device limits a candidate must fit before it is built.
type limits struct {
	maxWG    int   // CL_DEVICE_MAX_WORK_GROUP_SIZE
	maxItems []int // CL_DEVICE_MAX_WORK_ITEM_SIZES, per dimension
	localMem int64 // CL_DEVICE_LOCAL_MEM_SIZE in bytes
}

func limitsOf(dev *cl.Device) limits {
	return limits{maxWG: dev.MaxWorkGroupSize(), maxItems: dev.MaxWorkItemSizes(), localMem: dev.LocalMemSize()}
}

// itemLimit is the largest work-group extent of dimension i (no limit when
// the device did not say).
func (l limits) itemLimit(i int) int {
	if i < len(l.maxItems) && l.maxItems[i] > 0 {
		return l.maxItems[i]
	}
	return math.MaxInt
}

// workGroup returns the work-group size c launches its tiled kernel with
// (RTSN x RTSM), or LM for the vector kernels.
func (c candidate) workGroup() int {
	if c.Kind == gemmVector {
		return c.LM
	}
	return (c.TSN / c.WPTN) * (c.TSM / c.WPTM)
}

// localBytes is the local memory c's kernel declares: two tiles of TSK
// rows of TSM+1 and TSN+1 floats (gemm, conv2d_forward), or two buffers of
// two tiles of rows of TSM+4 and TSN+4 floats (gemm_blk).
func (c candidate) localBytes() int64 {
	switch c.Kind {
	case gemmVector:
		return 0
	case gemmBlocked:
		return 2 * 4 * int64(c.TSK) * int64(c.TSM+4+c.TSN+4)
	}
	return 4 * int64(c.TSK) * int64(c.TSM+1+c.TSN+1)
}

// fits returns why c is not a legal set of tunables, or cannot run on a
// device with limits l; nil when it can.
func (c candidate) fits(l limits) error {
	switch c.Kind {
	case gemmVector:
		if c.VW != 4 && c.VW != 8 && c.VW != 16 {
			return fmt.Errorf("vector width %d: want 4, 8 or 16", c.VW)
		}
		if c.MR < 1 || c.MR > 8 {
			return fmt.Errorf("%d rows per work item: want 1 to 8", c.MR)
		}
		if c.LM < 1 || c.LM > l.maxWG || c.LM > l.itemLimit(1) {
			return fmt.Errorf("work-group height %d: want 1 to %d (the device's limits)", c.LM, min(l.maxWG, l.itemLimit(1)))
		}
		return nil
	case gemmTiled, gemmBlocked:
		for _, v := range []int{c.TSM, c.TSN, c.TSK, c.WPTM, c.WPTN} {
			if v < 1 || v > 256 {
				return fmt.Errorf("tile sizes must be 1 to 256")
			}
		}
		if c.TSM%c.WPTM != 0 || c.TSN%c.WPTN != 0 {
			return fmt.Errorf("tile %dx%d is not a multiple of the register block %dx%d", c.TSM, c.TSN, c.WPTM, c.WPTN)
		}
		if c.Kind == gemmBlocked && (c.WPTM%4 != 0 || c.WPTN%4 != 0) {
			return fmt.Errorf("register block %dx%d: the blocked kernel needs multiples of 4", c.WPTM, c.WPTN)
		}
		if c.KU != 0 && (c.Kind != gemmBlocked || c.KU < 0 || c.TSK%c.KU != 0) {
			return fmt.Errorf("%d K steps per unrolled run: only the blocked kernel has runs, which must divide the K step %d", c.KU, c.TSK)
		}
		rtsn, rtsm := c.TSN/c.WPTN, c.TSM/c.WPTM
		if wg := rtsn * rtsm; wg > l.maxWG {
			return fmt.Errorf("work-group of %d work items (%dx%d), the device allows %d", wg, rtsn, rtsm, l.maxWG)
		}
		if rtsn > l.itemLimit(0) || rtsm > l.itemLimit(1) {
			return fmt.Errorf("work-group %dx%d exceeds the device's work-item sizes %v", rtsn, rtsm, l.maxItems)
		}
		if b := c.localBytes(); b > l.localMem {
			return fmt.Errorf("needs %d bytes of local memory, the device has %d", b, l.localMem)
		}
		return nil
	}
	return fmt.Errorf("kernel family %q: want %s, %s or %s", c.Kind, gemmTiled, gemmBlocked, gemmVector)
}

// gemmShape is one product the tuner times: op(A) (M, K) · op(B) (K, N).
type gemmShape struct {
	tA, tB  bool
	M, N, K int
}

func (s gemmShape) String() string {
	a, b := "A", "B"
	if s.tA {
		a = "Aᵀ"
	}
	if s.tB {
		b = "Bᵀ"
	}
	return fmt.Sprintf("%dx%dx%d %s·%s", s.M, s.N, s.K, a, b)
}

// tuneSpec is what the tuner tries: candidates (the vendor default first:
// it is always measured) and the shapes they are timed on.
type tuneSpec struct {
	gemm       []candidate        // for Gemm and the convolutions' GEMMs
	conv       []candidate        // the forward convolution's tiles (tiled; convFamily adds the blocked ones), tried when gemm picks tiled or blocked
	gemmShapes []gemmShape        // timed shapes of Gemm
	convShapes []device.ConvShape // timed shapes of Conv2DForward
	winoShapes []device.ConvShape // 3x3 and 5x5, stride 1, same size: timed with and without Winograd (tune_paths.go)
	runs       int                // timed runs per shape; the median counts
	budget     time.Duration      // no further candidate starts after this
	// gemmShare, when above 0, is the part of budget the matrix products
	// may take, so that a long list of them cannot leave the forward
	// convolution untuned (GPUs, where it is tuned after them).
	gemmShare float64
	// convShare, when above 0, is the part of budget the matrix products
	// and the forward convolution may take together, so that the
	// convolutions' paths (tune_paths.go) after them get their turn.
	convShare float64
}

// tuneSpecFor returns the spec for a device; tests replace it with
// smaller ones.
var tuneSpecFor = defaultTuneSpec

// defaultTuneSpec returns the candidates and shapes for a device. The
// shapes are AlexNet's, scaled to keep the timing about 15 s on a GPU
// (the builds come on top: 37 s in all on an H200) and 20 s on 2 CPU
// cores under POCL: a linear layer's forward (x·Wᵀ,
// fc6 at a smaller batch and width), the forward GEMM of an im2col
// convolution (conv2's, one image and group), and a backward-data product
// (wᵀ·dy, conv4's). CPU devices try the vector family's register blocks
// and one tiled set; GPUs the tiled and blocked families' tiles and one
// vector set.
func defaultTuneSpec(info device.Info) tuneSpec {
	if strings.Contains(info.Type, "CPU") {
		return tuneSpec{
			gemm: []candidate{
				vector(16, 6, 8), // the vendor default (gemm.cl)
				vector(16, 4, 8), vector(16, 8, 8), vector(16, 6, 4), vector(16, 6, 16),
				vector(8, 6, 8), vector(8, 8, 8),
				tiled(64, 64, 16, 4, 4),
			},
			conv: []candidate{tiled(64, 64, 16, 4, 4), tiled(32, 64, 16, 4, 4)},
			gemmShapes: []gemmShape{
				{tB: true, M: 64, N: 1024, K: 2304},
				{M: 128, N: 729, K: 1200},
				{tA: true, M: 1728, N: 169, K: 192},
			},
			convShapes: []device.ConvShape{{N: 1, C: 256, H: 13, W: 13, K: 384, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}},
			winoShapes: []device.ConvShape{
				{N: 2, C: 256, H: 13, W: 13, K: 384, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
				{N: 2, C: 96, H: 27, W: 27, K: 256, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2},
			},
			runs:   5,
			budget: 15 * time.Second,
		}
	}
	return tuneSpec{
		// Roughly the likeliest first, so that a spent budget leaves out
		// the least likely: the tiled sets an H100 and an H200 ranked
		// best at stop 7, then the blocked family (gemm_blk, which an
		// H200 chose later, 128x128x16/8x8; its K steps in runs of 2,
		// which AMD's compiler needs to keep out of spills,
		// TestKernelISA, and "ku16", all unrolled), then the rest. Tiled 128x128x8/8x8, 64x64x16/8x8 and
		// 32x32x16/2x2 were dropped: the slowest on both GPUs.
		gemm: []candidate{
			tiled(64, 64, 16, 4, 4), // the vendor default (gemm.cl)
			tiled(64, 64, 32, 4, 4),
			blocked(64, 64, 16, 4, 4), blocked(64, 64, 16, 4, 4).ku(16),
			blocked(128, 64, 16, 8, 4), blocked(128, 64, 16, 8, 4).ku(16), blocked(64, 128, 16, 4, 8),
			blocked(128, 128, 16, 8, 8), blocked(128, 128, 8, 8, 8), blocked(64, 64, 32, 4, 4),
			tiled(128, 64, 16, 8, 4), tiled(64, 128, 16, 4, 8), tiled(128, 128, 16, 8, 8),
			vector(8, 4, 8),
		},
		conv: []candidate{
			tiled(64, 64, 16, 4, 4), // the vendor default (conv.cl)
			tiled(128, 64, 16, 8, 4), tiled(128, 128, 16, 8, 8), tiled(64, 64, 32, 4, 4),
			tiled(64, 128, 16, 4, 8), tiled(128, 64, 32, 8, 4), tiled(32, 64, 16, 2, 4),
		},
		gemmShapes: []gemmShape{
			{tB: true, M: 256, N: 4096, K: 4096},
			{M: 1024, N: 1024, K: 1024},
			{tA: true, M: 1728, N: 2704, K: 192},
		},
		// At the batch paper trains at (128), not 32: at 32, conv3's
		// 128x128 tiles are 129 work-groups, about one per compute unit of
		// an H100, which favours tiles smaller than training at 128 wants.
		convShapes: []device.ConvShape{
			{N: 128, C: 256, H: 13, W: 13, K: 384, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
			{N: 128, C: 96, H: 27, W: 27, K: 256, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2},
		},
		winoShapes: []device.ConvShape{
			{N: 32, C: 256, H: 13, W: 13, K: 384, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
			{N: 32, C: 384, H: 13, W: 13, K: 384, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
			{N: 32, C: 96, H: 27, W: 27, K: 256, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2},
		},
		runs:      5,
		budget:    15 * time.Second,
		gemmShare: 0.65,
		convShare: 0.8,
	}
}

// tuneCheckHook, when set (tests only), sees every output the tuner
// checks, by family and candidate, before the check, and may change it.
var tuneCheckHook func(family string, c candidate, out []float32)

// tuneRecord is the tuning record stored as JSON beside the kernel
// binaries.
type tuneRecord struct {
	Format   string            `json:"format"`
	Key      string            `json:"key"`
	Device   string            `json:"device"`
	Platform string            `json:"platform"`
	Driver   string            `json:"driver"`
	Version  string            `json:"version"`
	Defines  map[string]string `json:"defines"`
	Results  []tuneResult      `json:"results"`
	TunedAt  time.Time         `json:"tuned_at"`
	Seconds  float64           `json:"seconds"`
}

// tuneResult is what the tuner measured of one candidate.
type tuneResult struct {
	Family    string    `json:"family"` // "gemm" or "conv"
	Candidate string    `json:"candidate"`
	Shapes    []string  `json:"shapes,omitempty"`
	GFLOPS    []float64 `json:"gflops,omitempty"` // per shape, from the median time
	Score     float64   `json:"score,omitempty"`  // geometric mean of GFLOPS
	Dropped   string    `json:"dropped,omitempty"`
	Chosen    bool      `json:"chosen,omitempty"`
}

// validate checks that r is a usable record for key on a device with
// limits l: its format, its key, and defines that name only tunables and
// give candidates the device can run.
func (r *tuneRecord) validate(key string, l limits) error {
	if r.Format != tuneFormat {
		return fmt.Errorf("format %q, want %q", r.Format, tuneFormat)
	}
	if r.Key != key {
		return fmt.Errorf("key %.12s…, want %.12s… (another device, driver or alexcl)", r.Key, key)
	}
	for n := range r.Defines {
		if !slices.Contains(tunedNames, n) {
			return fmt.Errorf("defines %s, which the tuner does not choose", n)
		}
	}
	if err := checkWinoDefines(r.Defines); err != nil {
		return err
	}
	if v, ok := r.Defines["CONV_BWDATA"]; ok && v != "col" && v != "implicit" {
		return fmt.Errorf("CONV_BWDATA=%q: want col or implicit", v)
	}
	g, err := parseCandidate(r.Defines, "GEMM")
	if err != nil {
		return err
	}
	if err := g.fits(l); err != nil {
		return fmt.Errorf("gemm %v: %w", g, err)
	}
	// The conv part: its tiles when any is set (parseCandidate wants them
	// all), else the default tiles on the kernel CONV_KIND names.
	var c candidate
	if slices.ContainsFunc([]string{"CONV_TSM", "CONV_TSN", "CONV_TSK", "CONV_WPTM", "CONV_WPTN", "CONV_KU"}, func(n string) bool {
		_, ok := r.Defines[n]
		return ok
	}) {
		if c, err = parseCandidate(r.Defines, "CONV"); err != nil {
			return err
		}
	} else {
		c = tiled(64, 64, 16, 4, 4) // conv.cl's defaults
		switch k := convKind(r.Defines); k {
		case gemmTiled:
		case gemmBlocked:
			c.Kind = gemmBlocked
		default:
			return fmt.Errorf("CONV_KIND=%q: want %s or %s", k, gemmTiled, gemmBlocked)
		}
	}
	if err := c.fits(l); err != nil {
		return fmt.Errorf("conv %v: %w", c, err)
	}
	return checkSmallFits(r.Defines, l)
}

// Tunables returns the tunables the device runs with, the -D values of
// its program and the host-only ones (hostOnlyDefines): those of
// Options.Defines and, when Open tuned or read a tuning record, the tuned
// ones (GEMM_KIND, GEMM_*, GEMMV_*, CONV_*). Tunables not listed have
// their defaults (the .cl files' header comments).
//
// With the paths chosen per layer shape (shapes.go, ConvPaths) the path
// defines (pathNames) decide nothing, and are left out.
func (d *Device) Tunables() map[string]string {
	m := maps.Clone(d.opts.Defines)
	if d.small == nil { // not built: off, ALEXCL_CL_LEGACY=small, a vector device, or failed
		for _, n := range smallNames {
			delete(m, n)
		}
	}
	if d.shapes.on {
		for _, n := range pathNames {
			delete(m, n)
		}
	}
	return m
}

// applyTuning is called by Open before the program is built. With tuning
// on (tuneModeOf) it reads the device's tuning record, or tunes and saves
// one, and adds the chosen tunables to d.opts.Defines. It never fails:
// problems are logged and leave the vendor defaults. It returns the mode,
// off where tunables set by the user turn tuning off.
func (d *Device) applyTuning(p *cl.Platform) tuneMode {
	mode := tuneModeOf(&d.opts)
	if mode == tuneOff {
		return mode
	}
	if n, ok := userTuned(d.opts.Defines); ok {
		d.opts.logf("tuning skipped on %s: Options.Defines or ALEXCL_CL_DEFINES sets %s", d.info.Name, n)
		return tuneOff // the user's choice: no paths per shape either (shapes.go)
	}
	key := d.tuneKey(p)
	lim := limitsOf(d.dev)
	var path string
	if dir := cacheDir(d.opts); dir != "" {
		path = filepath.Join(dir, "tune-"+key+".json")
	}
	if mode == tuneOn && path != "" {
		rec, err := loadTuneRecord(path, key, lim)
		switch {
		case err == nil:
			d.opts.logf("tuning record hit %s: %s", path, describeDefines(rec.Defines))
			d.setTunables(rec.Defines)
			return mode
		case !errors.Is(err, os.ErrNotExist):
			d.opts.logf("tuning record %s unusable, re-tuning: %v", path, err)
		}
	}

	rec, err := d.tune(lim)
	if err != nil {
		d.opts.logf("tuning on %s failed, using the vendor defaults: %v", d.info.Name, err)
		return mode
	}
	rec.Key, rec.Platform, rec.Version = key, p.Name()+" "+p.Version(), cmp.Or(d.opts.Version, "dev")
	d.setTunables(rec.Defines)
	// The format starts with "tuned": the CLI shows the lines whose
	// format starts with "tun".
	name, secs, defs := d.info.Name, rec.Seconds, describeDefines(rec.Defines)
	if path == "" {
		d.opts.logf("tuned %s in %.1f s: %s; not saved (the kernel cache is off)", name, secs, defs)
		return mode
	}
	if err := saveTuneRecord(path, rec); err != nil {
		d.opts.logf("tuned %s in %.1f s: %s; not saved: %v", name, secs, defs, err)
		return mode
	}
	d.opts.logf("tuned %s in %.1f s: %s; saved %s", name, secs, defs, path)
	return mode
}

// tuneKey is the key of d's tuning record (and of its paths record,
// shapes.go): the kernel sources, the build options, the platform, the
// device and driver, and alexcl's version.
func (d *Device) tuneKey(p *cl.Platform) string {
	version := cmp.Or(d.opts.Version, "dev")
	return cacheKey(clkernels.Sources(), tuneFormat+"\n"+strings.Join(d.opts.BuildOptions, " "), p, d.dev, version)
}

// pathNames are the tuned names of the convolutions' paths. Set in
// Options.Defines or ALEXCL_CL_DEFINES, one overrides the tuner's choice
// of that path only: tuning goes on, and the tiles stay tuned.
var pathNames = []string{"CONV_WINO", "CONV_WINO43", "CONV_WINO5", "CONV_WINO35", "CONV_BWDATA"}

// userTuned returns the first tuned name defs sets that turns tuning off:
// any but the convolutions' paths (pathNames) and the small GEMM set
// (smallNames), which replace the tuner's choice of them only.
func userTuned(defs map[string]string) (string, bool) {
	for _, n := range tunedNames {
		if _, ok := defs[n]; ok && !slices.Contains(pathNames, n) && !slices.Contains(smallNames, n) {
			return n, true
		}
	}
	return "", false
}

// setTunables adds the tuned defs to a copy of d.opts.Defines (the
// caller's map is not changed); a name already set there (a path the
// user chose) keeps its value. The two Winograd defines of a filter size
// (winoSiblings) go together: where the user set one, the other is off
// unless set too, so that CONV_WINO=off means no 3×3 Winograd at all,
// not F(4×4, 3×3) where the tuner chose it.
func (d *Device) setTunables(defs map[string]string) {
	m := maps.Clone(d.opts.Defines)
	if m == nil {
		m = map[string]string{}
	}
	defs = maps.Clone(defs)
	// The small GEMM set goes as a whole: one the user set (or turned
	// off) replaces the tuned one.
	if slices.ContainsFunc(smallNames, func(n string) bool { _, set := m[n]; return set }) {
		for _, n := range smallNames {
			delete(defs, n)
		}
	}
	for _, a := range slices.Sorted(maps.Keys(winoSiblings)) {
		b := winoSiblings[a]
		if _, set := m[a]; set {
			if _, set := m[b]; !set {
				if v, tuned := defs[b]; tuned && v != "off" {
					d.opts.logf("tuning on %s: %s=off, as %s is set, not the tuned %s", d.info.Name, b, a, v)
				}
				defs[b] = "off"
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(defs)) {
		if v, set := m[n]; set {
			if v != defs[n] {
				d.opts.logf("tuning on %s: %s=%s as set, not the tuned %s", d.info.Name, n, v, defs[n])
			}
			continue
		}
		m[n] = defs[n]
	}
	d.opts.Defines = m
}

// describeDefines lists defs as NAME=value, sorted.
func describeDefines(defs map[string]string) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(defs)) {
		parts = append(parts, n+"="+defs[n])
	}
	return strings.Join(parts, " ")
}

// loadTuneRecord reads and validates the record at path.
func loadTuneRecord(path, key string, l limits) (*tuneRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec tuneRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("not a tuning record: %w", err)
	}
	if err := rec.validate(key, l); err != nil {
		return nil, err
	}
	return &rec, nil
}

// saveTuneRecord writes rec to path atomically (a temporary file in the
// same directory, renamed over path).
func saveTuneRecord(path string, rec *tuneRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'))
}

// tuner tunes one device: s is a scratch Device on the context and queue
// of the device being opened, whose program is rebuilt per candidate.
type tuner struct {
	d     *Device
	s     *Device
	spec  tuneSpec
	lim   limits
	start time.Time
	rng   *rand.Rand
	// deadline: no candidate of the family being picked starts, and no
	// timed round, after it (see tune).
	deadline time.Time
	// built is the time spent building candidates' programs so far,
	// which the budget leaves out: a driver that compiles slowly (NVIDIA's
	// took about 10 s for the 14 GEMM candidates on an H200, built in
	// parallel) must not leave every candidate but the default untimed.
	built time.Duration
}

// by returns the time at which frac of the budget is spent, builds not
// counted.
func (t *tuner) by(frac float64) time.Time {
	return t.start.Add(t.built + time.Duration(frac*float64(t.spec.budget)))
}

// spent reports whether the budget is spent, builds not counted.
func (t *tuner) spent() bool {
	return time.Since(t.start)-t.built > t.spec.budget
}

// building adds the time since began to the builds' time, and moves the
// deadline of the family being picked by as much.
func (t *tuner) building(began time.Time) {
	d := time.Since(began)
	t.built += d
	t.deadline = t.deadline.Add(d)
}

// newTuner returns a tuner of d, started now, whose scratch device shares
// d's context and queue; the caller releases it.
func (d *Device) newTuner(lim limits) *tuner {
	return &tuner{
		d: d,
		s: &Device{info: d.info, opts: Options{BuildOptions: d.opts.BuildOptions}, dev: d.dev,
			ctx: d.ctx, queue: d.queue, maxAlloc: d.maxAlloc, live: map[*buffer]struct{}{}},
		spec:  tuneSpecFor(d.info),
		lim:   lim,
		start: time.Now(),
		rng:   rand.New(rand.NewPCG(5, 5)),
	}
}

// tune runs the tuner on d (its context and queue exist, its program does
// not yet) and returns the record of the choice, without key or platform.
func (d *Device) tune(lim limits) (*tuneRecord, error) {
	t := d.newTuner(lim)
	defer t.release()
	if len(t.spec.gemm) == 0 || len(t.spec.gemmShapes) == 0 {
		return nil, errors.New("no candidates or shapes to try")
	}
	rec := &tuneRecord{Format: tuneFormat, Device: d.info.Name, Driver: d.info.Driver}
	t.deadline = t.by(1)
	if t.spec.gemmShare > 0 {
		t.deadline = t.by(t.spec.gemmShare)
	}
	g, res, err := t.pick(t.gemmFamily())
	rec.Results = res
	if err != nil {
		return nil, fmt.Errorf("gemm: %w", err)
	}
	rec.Defines = g.defines("GEMM")
	if small, ok := smallAlternative(g, t.spec.gemm, res); ok { // gemmset.go
		maps.Copy(rec.Defines, small.defines("GEMMS"))
	}
	if g.Kind != gemmVector && len(t.spec.conv) > 0 && len(t.spec.convShapes) > 0 {
		// Untuned, the convolution runs conv2d_forward with its default
		// tiles (CONV_KIND=tiled: a blocked GEMM would otherwise take
		// conv2d_forward_blk, which no candidate checked).
		if t.spent() {
			d.opts.logf("tuning conv on %s skipped: the %v budget is spent; conv2d_forward keeps its default tiles", d.info.Name, t.spec.budget)
			rec.Defines["CONV_KIND"] = gemmTiled
		} else {
			t.deadline = t.by(1)
			if t.spec.convShare > 0 {
				t.deadline = t.by(t.spec.convShare)
			}
			c, res, err := t.pick(t.convFamily(g))
			rec.Results = append(rec.Results, res...)
			if err != nil {
				d.opts.logf("tuning conv on %s: %v; conv2d_forward keeps its default tiles", d.info.Name, err)
				rec.Defines["CONV_KIND"] = gemmTiled
			} else {
				maps.Copy(rec.Defines, c.defines("CONV"))
			}
		}
	}
	if len(t.spec.winoShapes) > 0 || g.Kind != gemmVector && len(t.spec.convShapes) > 0 {
		// Untuned, the convolutions keep their usual paths.
		if t.spent() {
			d.opts.logf("tuning the convolutions' paths on %s skipped: the %v budget is spent; they keep their usual ones", d.info.Name, t.spec.budget)
		} else if paths, res, err := t.pickPaths(rec.Defines, g.Kind != gemmVector); err != nil {
			d.opts.logf("tuning the convolutions' paths on %s: %v; they keep their usual ones", d.info.Name, err)
		} else {
			rec.Results = append(rec.Results, res...)
			maps.Copy(rec.Defines, paths)
		}
	}
	rec.TunedAt = time.Now().UTC().Truncate(time.Second)
	rec.Seconds = math.Round(time.Since(t.start).Seconds()*10) / 10
	return rec, nil
}

// release waits for the scratch device's work and frees its program,
// buffers and workspace (the Winograd step's); the context and queue stay
// with the device being opened.
func (t *tuner) release() {
	s := t.s
	s.queue.Finish()
	s.releaseOpsState()
	if s.prog != nil {
		s.dropProgram()
	}
	for b := range s.live {
		b.freed = true
		b.mem.Release()
	}
	s.live = nil
}

// family is one kernel family the tuner picks a candidate for.
type family struct {
	name    string            // "gemm" or "conv", in logs and records
	prefix  string            // of its -D tunables: "GEMM" or "CONV"
	cands   []candidate       // the vendor default first
	sources []string          // the program a candidate is built from
	base    map[string]string // -D values besides the candidate's
	kernel  string            // the tiled kernel whose work-group a tiled candidate fixes
	check   func(c candidate) error
	cases   []benchCase
}

// benchCase is one timed shape of a family.
type benchCase struct {
	name   string
	flops  float64
	reset  func() error            // fills the output with NaN
	run    func() error            // queues the op
	verify func(c candidate) error // reads the output back and checks it
}

// contender is a candidate that passed its checks, with its program kept
// built for the timed rounds.
type contender struct {
	c       candidate
	res     int // index of its tuneResult
	prog    *cl.Program
	kernels map[string]*cl.Kernel
	defs    map[string]string
	err     error             // of building prog
	times   [][]time.Duration // per case, one per round
}

// release frees c's program and kernels.
func (c *contender) release() {
	for _, k := range c.kernels {
		k.Release()
	}
	c.prog.Release()
	c.prog, c.kernels = nil, nil
}

// buildAll builds the program of every candidate of f, as many at a time
// as the host has cores, and returns them in order; a failed build is
// kept with its error.
func (t *tuner) buildAll(f family, cands []candidate) []*contender {
	out := make([]*contender, len(cands))
	sem := make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))
	var wg sync.WaitGroup
	for i, c := range cands {
		defs := c.defines(f.prefix)
		maps.Copy(defs, f.base)
		out[i] = &contender{c: c, defs: defs}
		wg.Add(1)
		go func(p *contender) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p.prog, p.kernels, p.err = buildCandidate(t.s.ctx, t.s.dev, f.sources, Options{Defines: p.defs, BuildOptions: t.s.opts.BuildOptions})
		}(out[i])
	}
	wg.Wait()
	return out
}

// buildCandidate builds a program of sources with the defines and build
// options of o, and creates its kernels.
func buildCandidate(ctx *cl.Context, dev *cl.Device, sources []string, o Options) (*cl.Program, map[string]*cl.Kernel, error) {
	options, err := buildOptions(o)
	if err != nil {
		return nil, nil, err
	}
	prog, err := ctx.CreateProgramWithSource(sources)
	if err != nil {
		return nil, nil, err
	}
	if err := prog.BuildProgram(nil, options); err != nil {
		prog.Release()
		return nil, nil, fmt.Errorf("build with %q: %w", options, err)
	}
	appendBuildLog(prog, dev, options)
	ks, err := prog.CreateKernels()
	if err != nil {
		prog.Release()
		return nil, nil, err
	}
	kernels := make(map[string]*cl.Kernel, len(ks))
	for _, k := range ks {
		kernels[k.Name()] = k
	}
	return prog, kernels, nil
}

// pick tries f's candidates and returns the fastest that passed its
// checks, with what was measured of each. Every candidate that fits the
// device is built first, all at once; then each is checked, in order;
// then the timed runs go in rounds, each round running every contender
// once on every case, so that a burst of load on a shared machine slows
// all of them alike, and the median of its rounds is a contender's time.
// After the first round, contenders slower than a third of the best are
// dropped. Once the spec's budget is spent, no further candidate is
// checked and no further round starts (the first candidate, the vendor
// default, is always measured).
func (t *tuner) pick(f family) (candidate, []tuneResult, error) {
	var results []tuneResult
	var cs []*contender
	defer func() {
		for _, c := range cs {
			c.release()
		}
		t.s.prog, t.s.kernels = nil, nil // released above
	}()
	logf := func(format string, args ...any) {
		t.d.opts.logf("tuning %s on %s: "+format, append([]any{f.name, t.d.info.Name}, args...)...)
	}
	// Build every candidate that fits the device at once: drivers compile
	// on the host's cores, and OpenCL allows building several programs
	// from several threads.
	var fit []candidate
	for _, c := range f.cands {
		if err := c.fits(t.lim); err != nil {
			r := tuneResult{Family: f.name, Candidate: c.String(), Dropped: "does not fit the device: " + err.Error()}
			logf("candidate %v skipped: %s", c, r.Dropped)
			results = append(results, r)
			continue
		}
		fit = append(fit, c)
	}
	began := time.Now()
	progs := t.buildAll(f, fit)
	t.building(began)
	for i, c := range fit {
		p := progs[i]
		if len(cs) > 0 && time.Now().After(t.deadline) {
			logf("its share of the %v budget is spent, %d candidates not tried", t.spec.budget, len(fit)-i)
			for _, p := range progs[i:] {
				p.release()
			}
			break
		}
		r := tuneResult{Family: f.name, Candidate: c.String()}
		err := p.err
		if err == nil {
			t.activate(p)
			if err = t.prepare(f, c); err != nil {
				t.s.dropProgram()
			}
		}
		if err != nil {
			r.Dropped = err.Error()
			logf("candidate %v dropped: %v", c, err)
			results = append(results, r)
			continue
		}
		p.res, p.times = len(results), make([][]time.Duration, len(f.cases))
		cs = append(cs, p)
		results = append(results, r)
	}
	t.s.prog, t.s.kernels = nil, nil
	if len(cs) == 0 {
		return candidate{}, results, fmt.Errorf("none of %d candidates passed its checks", len(f.cands))
	}

	score := func(c *contender) float64 {
		logSum := 0.0
		for j, bc := range f.cases {
			logSum += math.Log(bc.flops / median(c.times[j]).Seconds() / 1e9)
		}
		return math.Exp(logSum / float64(len(f.cases)))
	}
	alive := slices.Clone(cs)
	for round := 0; round < max(t.spec.runs, 1); round++ {
		if round > 0 && time.Now().After(t.deadline) {
			logf("its share of the %v budget is spent after %d timed rounds", t.spec.budget, round)
			break
		}
		for _, c := range alive {
			t.activate(c)
			for j, bc := range f.cases {
				d, err := t.timeOne(bc)
				if err != nil {
					results[c.res].Dropped = err.Error()
					logf("candidate %v dropped: %v", c.c, err)
					c.times = nil
					break
				}
				c.times[j] = append(c.times[j], d)
			}
		}
		alive = slices.DeleteFunc(alive, func(c *contender) bool { return c.times == nil })
		if round == 0 && len(alive) > 0 {
			best := slices.MaxFunc(alive, func(a, b *contender) int { return cmp.Compare(score(a), score(b)) })
			bestScore := score(best)
			alive = slices.DeleteFunc(alive, func(c *contender) bool {
				if sc := score(c); sc < bestScore/3 {
					results[c.res].Dropped = fmt.Sprintf("slow: %.1f GFLOP/s in the first round, under a third of %v's %.1f", sc, best.c, bestScore)
					logf("candidate %v dropped: %s", c.c, results[c.res].Dropped)
					return true
				}
				return false
			})
		}
	}
	if len(alive) == 0 {
		return candidate{}, results, fmt.Errorf("every candidate failed while timed")
	}

	var best *contender
	for _, c := range alive {
		r := &results[c.res]
		var rates []string
		for j, bc := range f.cases {
			gf := bc.flops / median(c.times[j]).Seconds() / 1e9
			r.Shapes = append(r.Shapes, bc.name)
			r.GFLOPS = append(r.GFLOPS, math.Round(gf*10)/10)
			rates = append(rates, fmt.Sprintf("%.1f", gf))
		}
		sc := score(c)
		r.Score = math.Round(sc*10) / 10
		logf("candidate %v: %.1f GFLOP/s (%s on %s; median of %d)",
			c.c, sc, strings.Join(rates, " / "), strings.Join(r.Shapes, " / "), len(c.times[0]))
		if best == nil || sc > score(best) {
			best = c
		}
	}
	results[best.res].Chosen = true
	return best.c, results, nil
}

// activate makes c's program the scratch device's.
func (t *tuner) activate(c *contender) {
	t.s.prog, t.s.kernels, t.s.opts.Defines = c.prog, c.kernels, c.defs
}

// prepare checks c, whose program is the scratch device's: the
// work-group size its compiled tiled kernel allows, its results on small
// shapes against device/ref, and (after a warm-up run, as drivers may
// compile for a work-group size on first use) its whole output on every
// timed case.
func (t *tuner) prepare(f family, c candidate) error {
	s := t.s
	if c.Kind != gemmVector && f.kernel != "" {
		name := f.kernel
		switch {
		case f.prefix == "CONV":
			name = s.convForwardKernel()
		case c.Kind == gemmBlocked:
			name = "gemm_blk"
		}
		if k := s.kernels[name]; k != nil {
			if maxWG, err := k.WorkGroupSize(s.dev); err == nil && maxWG < c.workGroup() {
				return fmt.Errorf("the compiled %s allows %d work items per group, it needs %d", name, maxWG, c.workGroup())
			}
		}
	}
	if err := f.check(c); err != nil {
		return err
	}
	for _, bc := range f.cases {
		if err := bc.reset(); err != nil {
			return fmt.Errorf("%s: %w", bc.name, err)
		}
		if err := bc.run(); err != nil {
			return fmt.Errorf("%s: %w", bc.name, err)
		}
		if err := bc.verify(c); err != nil {
			return fmt.Errorf("%s: %w", bc.name, err)
		}
	}
	return nil
}

// timeOne runs bc once on the scratch device and returns the device time
// of its kernels (OpenCL profiling events).
func (t *tuner) timeOne(bc benchCase) (time.Duration, error) {
	d, _, err := t.profileOne(bc)
	return d, err
}

// profileOne is timeOne that also returns the names of the kernels bc
// launched, sorted, each once.
func (t *tuner) profileOne(bc benchCase) (time.Duration, []string, error) {
	t.s.StartProfiling()
	err := bc.run()
	kts, perr := t.s.StopProfiling()
	if err = cmp.Or(err, perr); err != nil {
		return 0, nil, fmt.Errorf("%s: %w", bc.name, err)
	}
	var sum time.Duration
	var names []string
	for _, kt := range kts {
		sum += kt.Duration
		names = append(names, kt.Kernel)
	}
	if sum <= 0 {
		return 0, nil, fmt.Errorf("%s: the driver reported no kernel time", bc.name)
	}
	slices.Sort(names)
	return sum, slices.Compact(names), nil
}

// median returns the median of ds (the upper one of an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// upload allocates a scratch buffer holding v.
func (t *tuner) upload(v []float32) (device.Buffer, error) {
	return device.Upload(t.s, v)
}

// uploadAll uploads each of vs to a scratch buffer; on an error it frees
// those it made.
func (t *tuner) uploadAll(vs ...[]float32) ([]device.Buffer, error) {
	var bufs []device.Buffer
	for _, v := range vs {
		b, err := t.upload(v)
		if err != nil {
			t.freeAll(bufs)
			return nil, err
		}
		bufs = append(bufs, b)
	}
	return bufs, nil
}

// freeAll frees scratch buffers.
func (t *tuner) freeAll(bufs []device.Buffer) {
	for _, b := range bufs {
		t.s.Free(b)
	}
}

func (t *tuner) random(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*t.rng.Float32() - 1
	}
	return v
}

// readBack reads n floats of b and passes them through tuneCheckHook.
func (t *tuner) readBack(fam string, c candidate, b device.Buffer, n int) ([]float32, error) {
	out, err := device.ReadFloat32(t.s, b, n)
	if err != nil {
		return nil, err
	}
	if tuneCheckHook != nil {
		tuneCheckHook(fam, c, out)
	}
	return out, nil
}

// checkClose compares got with want, as the op tests do: |got−want| <=
// 1e-4 + 1e-4·|want|, NaN nowhere. It names the first bad index.
func checkClose(what string, got, want []float32) error {
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g-w) > 1e-4+1e-4*math.Abs(w) {
			return fmt.Errorf("wrong result: %s: first bad index %d: got %.7g, want %.7g", what, i, g, w)
		}
	}
	return nil
}

// checkSampled checks that every entry of out is finite (a NaN is an entry
// the kernel never wrote) and that 256 random entries match a float64
// reference: |out[i] − ref(i)| <= 1e-5 + 1e-4·mag(i), where ref returns
// the exact sum and the sum of the magnitudes of its terms.
func (t *tuner) checkSampled(out []float32, ref func(i int) (sum, mag float64)) error {
	for i, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("wrong result: index %d is %v", i, v)
		}
	}
	for range 256 {
		i := t.rng.IntN(len(out))
		want, mag := ref(i)
		if e := math.Abs(float64(out[i]) - want); e > 1e-5+1e-4*mag {
			return fmt.Errorf("wrong result: index %d is %.7g, want %.7g", i, out[i], want)
		}
	}
	return nil
}

// gemmFamily sets up the matrix-product family: its small checks against
// ref.Gemm and its timed shapes.
func (t *tuner) gemmFamily() family {
	f := family{name: "gemm", prefix: "GEMM", cands: t.spec.gemm, sources: t.d.opts.sources([]string{"gemm.cl"}, nil), kernel: "gemm"}
	f.check = func(c candidate) error { return t.checkGemmSmall(c) }
	for _, sh := range t.spec.gemmShapes {
		bc := benchCase{name: sh.String(), flops: 2 * float64(sh.M) * float64(sh.N) * float64(sh.K)}
		var a, b []float32
		var A, B, C device.Buffer
		setup := func() error {
			if C != nil {
				return nil
			}
			a, b = t.random(sh.M*sh.K), t.random(sh.K*sh.N)
			var err error
			if A, err = t.upload(a); err != nil {
				return err
			}
			if B, err = t.upload(b); err != nil {
				return err
			}
			C, err = t.s.Alloc(4 * sh.M * sh.N)
			return err
		}
		bc.reset = func() error {
			if err := setup(); err != nil {
				return err
			}
			return t.s.Fill(C, float32(math.NaN()))
		}
		bc.run = func() error { return t.s.Gemm(sh.tA, sh.tB, sh.M, sh.N, sh.K, 1, A, B, 0, C) }
		bc.verify = func(c candidate) error {
			out, err := t.readBack("gemm", c, C, sh.M*sh.N)
			if err != nil {
				return err
			}
			return t.checkSampled(out, func(i int) (float64, float64) {
				m, n := i/sh.N, i%sh.N
				var sum, mag float64
				for k := 0; k < sh.K; k++ {
					av, bv := a[m*sh.K+k], b[k*sh.N+n]
					if sh.tA {
						av = a[k*sh.M+m]
					}
					if sh.tB {
						bv = b[n*sh.K+k]
					}
					p := float64(av) * float64(bv)
					sum += p
					mag += math.Abs(p)
				}
				return sum, mag
			})
		}
		f.cases = append(f.cases, bc)
	}
	return f
}

// checkGemmSmall runs Gemm on small shapes that are not multiples of any
// tile or vector block, every transposition, with and without beta (C
// holds NaN when beta is 0, which must not be read), against ref.Gemm.
func (t *tuner) checkGemmSmall(c candidate) error {
	for _, sh := range [][3]int{{67, 131, 75}, {5, 70, 33}} {
		M, N, K := sh[0], sh[1], sh[2]
		for tt := range 4 {
			tA, tB := tt&1 != 0, tt&2 != 0
			alpha, beta := float32(1), float32(0)
			if tt%2 == 1 {
				alpha, beta = 0.5, -1.5
			}
			a, b, cv := t.random(M*K), t.random(K*N), t.random(M*N)
			want := slices.Clone(cv)
			if beta == 0 {
				for i := range cv {
					cv[i] = float32(math.NaN())
				}
			}
			ref.Gemm(tA, tB, M, N, K, alpha, a, b, beta, want)
			A, err := t.upload(a)
			if err != nil {
				return err
			}
			B, err := t.upload(b)
			if err != nil {
				return err
			}
			C, err := t.upload(cv)
			if err != nil {
				return err
			}
			err = t.s.Gemm(tA, tB, M, N, K, alpha, A, B, beta, C)
			var got []float32
			if err == nil {
				got, err = t.readBack("gemm", c, C, M*N)
			}
			for _, buf := range []device.Buffer{A, B, C} {
				t.s.Free(buf)
			}
			if err != nil {
				return err
			}
			if err := checkClose(fmt.Sprintf("Gemm M=%d N=%d K=%d tA=%v tB=%v", M, N, K, tA, tB), got, want); err != nil {
				return err
			}
		}
	}
	return nil
}

// convFamily sets up the forward convolution's candidates after the GEMM
// picked g: each tile set of the spec on conv2d_forward and, where its
// register blocks allow, on conv2d_forward_blk (CONV_KIND, whichever
// family g is), with small checks against ref.Conv2DForward and the timed
// shapes.
func (t *tuner) convFamily(g candidate) family {
	kind := g.Kind
	var cands []candidate
	for _, c := range t.spec.conv {
		c.Kind, c.KU = gemmTiled, 0
		cands = append(cands, c)
		if c.WPTM%4 != 0 || c.WPTN%4 != 0 {
			continue
		}
		// The same tiles on conv2d_forward_blk, with the GEMM's
		// unrolling where it is blocked (the same compiler chose it):
		// whole tiles, or its runs where they divide the conv's K step.
		c.Kind = gemmBlocked
		switch {
		case g.Kind != gemmBlocked || g.KU == 0:
		case g.KU == g.TSK:
			c.KU = c.TSK
		case c.TSK%g.KU == 0:
			c.KU = g.KU
		}
		cands = append(cands, c)
	}
	f := family{name: "conv", prefix: "CONV", cands: cands, sources: t.d.opts.sources([]string{"conv.cl"}, nil),
		base: map[string]string{"GEMM_KIND": kind}, kernel: "conv2d_forward"}
	f.check = func(c candidate) error { return t.checkConvSmall(c) }
	for _, s := range t.spec.convShapes {
		Cg := s.C / s.Groups
		OH, OW := s.OH(), s.OW()
		bc := benchCase{
			name:  fmt.Sprintf("conv %d %dx%d/%d p%d g%d on %dx%dx%dx%d", s.K, s.R, s.S, s.Stride, s.Pad, s.Groups, s.N, s.C, s.H, s.W),
			flops: 2 * float64(s.N*s.K*OH*OW) * float64(Cg*s.R*s.S),
		}
		var x, w, b []float32
		var X, Wb, Bb, Y device.Buffer
		ny := s.N * s.K * OH * OW
		setup := func() error {
			if Y != nil {
				return nil
			}
			x, w, b = t.random(s.N*s.C*s.H*s.W), t.random(s.K*Cg*s.R*s.S), t.random(s.K)
			var err error
			if X, err = t.upload(x); err != nil {
				return err
			}
			if Wb, err = t.upload(w); err != nil {
				return err
			}
			if Bb, err = t.upload(b); err != nil {
				return err
			}
			Y, err = t.s.Alloc(4 * ny)
			return err
		}
		bc.reset = func() error {
			if err := setup(); err != nil {
				return err
			}
			return t.s.Fill(Y, float32(math.NaN()))
		}
		bc.run = func() error { return t.s.Conv2DForward(X, Wb, Bb, Y, s) }
		bc.verify = func(c candidate) error {
			out, err := t.readBack("conv", c, Y, ny)
			if err != nil {
				return err
			}
			return t.checkSampled(out, func(i int) (float64, float64) {
				ow, oh := i%OW, i/OW%OH
				k, n := i/(OW*OH)%s.K, i/(OW*OH*s.K)
				g := k / (s.K / s.Groups)
				sum := float64(b[k])
				mag := math.Abs(sum)
				for c := 0; c < Cg; c++ {
					for r := 0; r < s.R; r++ {
						for q := 0; q < s.S; q++ {
							xh, xw := oh*s.Stride-s.Pad+r, ow*s.Stride-s.Pad+q
							if xh < 0 || xh >= s.H || xw < 0 || xw >= s.W {
								continue
							}
							p := float64(x[((n*s.C+g*Cg+c)*s.H+xh)*s.W+xw]) * float64(w[((k*Cg+c)*s.R+r)*s.S+q])
							sum += p
							mag += math.Abs(p)
						}
					}
				}
				return sum, mag
			})
		}
		f.cases = append(f.cases, bc)
	}
	return f
}

// checkConvSmall runs Conv2DForward on small shapes (strided, padded,
// grouped, off every tile multiple) against ref.Conv2DForward.
func (t *tuner) checkConvSmall(c candidate) error {
	for _, s := range []device.ConvShape{
		{N: 2, C: 5, H: 11, W: 9, K: 7, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 1},
		{N: 3, C: 4, H: 7, W: 8, K: 6, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2},
	} {
		nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C/s.Groups*s.R*s.S, s.N*s.K*s.OH()*s.OW()
		x, w, b := t.random(nx), t.random(nw), t.random(s.K)
		want := make([]float32, ny)
		ref.Conv2DForward(x, w, b, want, s)
		bufs, err := t.uploadAll(x, w, b, make([]float32, ny))
		if err != nil {
			return err
		}
		var got []float32
		if err = t.s.Conv2DForward(bufs[0], bufs[1], bufs[2], bufs[3], s); err == nil {
			got, err = t.readBack("conv", c, bufs[3], ny)
		}
		t.freeAll(bufs)
		if err != nil {
			return err
		}
		if err := checkClose(fmt.Sprintf("Conv2DForward %+v", s), got, want); err != nil {
			return err
		}
	}
	return nil
}

// checkUserTiles checks the GEMM and convolution tiles that defs set (the
// user's, before tuning) as the tuner checks its candidates (fits): a
// register block that does not divide its tile, or a work-group or local
// tile the device cannot hold, would otherwise build and compute wrong
// results. Unset sizes take the .cl files' defaults. A blocked family
// whose register blocks are not multiples of 4 runs the tiled kernel
// (buildOptions), so it is checked as tiled; K-step runs are checked by
// the .cl files themselves.
func checkUserTiles(defs map[string]string, l limits) error {
	for _, prefix := range []string{"GEMM", "CONV"} {
		set := false
		size := func(name string, def int) int {
			v, ok := defs[prefix+"_"+name]
			if !ok {
				return def
			}
			set = true
			n, err := strconv.Atoi(v)
			if err != nil {
				return -1 // fits refuses it
			}
			return n
		}
		c := tiled(size("TSM", 64), size("TSN", 64), size("TSK", 16), size("WPTM", 4), size("WPTN", 4))
		if !set {
			continue
		}
		kind := defs["GEMM_KIND"]
		if prefix == "CONV" {
			kind = convKind(defs)
		}
		if kind == gemmBlocked && c.WPTM > 0 && c.WPTN > 0 && c.WPTM%4 == 0 && c.WPTN%4 == 0 {
			c.Kind = gemmBlocked
		}
		if err := c.fits(l); err != nil {
			return fmt.Errorf("%s tiles %dx%dx%d, register blocks %dx%d: %w", prefix, c.TSM, c.TSN, c.TSK, c.WPTM, c.WPTN, err)
		}
	}
	return nil
}

package opencl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/alexcl/alexcl/device"
)

// Winograd F(M×M, R×R) for the R×R, stride-1 convolutions that keep the
// image size (padding (R−1)/2), wino.cl: F(2×2, 3×3) and F(4×4, 3×3) for
// AlexNet's conv3 to conv5, F(2×2, 5×5) and F(3×3, 5×5) for conv2. An M×M
// tile's M²·R² multiply-adds become (M+R−1)², so the products run on 2.25
// (F(2, 3)), 4 (F(4, 3)), 2.8 (F(2, 5)) or 4.6 (F(3, 5)) times fewer
// operations, less the tiles that overhang the image edge (13×13: 1.94
// and 2.64; 27×27: 2.6 and 4.6), for transforms that read and write each
// value a few times, and the larger tiles' larger rounding error.
// Whether that wins depends on the device: the host-only defines
// CONV_WINO (3×3 by F(2, 3)), CONV_WINO43 (3×3 by F(4, 3)), CONV_WINO5
// (5×5 by F(2, 5)) and CONV_WINO35 (5×5 by F(3, 5)) (on, off, or the ops
// joined by "+", winoOps; the larger tile takes an op both of its size
// name) choose, set by the tuner from timings on the device, op by op
// (tune_paths.go), or by the user (ALEXCL_CL_DEFINES); off when none
// says. Where Winograd takes the data gradient, CONV_BWDATA does not
// matter.
//
// Workspace, with E = (M+R−1)² entries per transformed tile: slot 0 holds a
// chunk's transformed input V (E, C, T; (E, T, C) for the filter gradient
// on the vector family), slot 1 its transformed output M
// or the transformed output gradient Z (E, K, T), slot 3 the transformed
// filters U or their gradient dU (E, K*Cg).

// The ops a Winograd define names: "on" is all three, "off" none,
// else a "+"-separated list of them ("forward+data").
const (
	winoOpForward = "forward" // Conv2DForward
	winoOpData    = "data"    // Conv2DBackwardData
	winoOpFilter  = "filter"  // Conv2DBackwardFilter
)

// winoVariant is one Winograd algorithm, F(M×M, R×R): its host-only
// define, its wino.cl kernels, and its name in the tuner's results.
type winoVariant struct {
	define string
	M, R   int
	k      winoKernels
	name   string
}

// winoVariants are the algorithms, for each filter size the larger output
// tile first: where both defines of a size name an op, the larger tile
// takes it. F(2×2, R×R) is each size's first choice against the usual
// path (winoDefines); the tuner then times the larger tile (winoLarge)
// against the winner.
var winoVariants = []winoVariant{
	{"CONV_WINO43", 4, 3, winoKernelsFor("wino43_"), "winograd4x4"},
	{"CONV_WINO", 2, 3, winoKernelsFor("wino3_"), "winograd"},
	{"CONV_WINO35", 3, 5, winoKernelsFor("wino35_"), "winograd3x3"},
	{"CONV_WINO5", 2, 5, winoKernelsFor("wino5_"), "winograd"},
}

// winoDefines are F(2×2, R×R)'s defines and winoLarge the larger tile's,
// by filter size R; winoAllDefines lists every variant's define, and
// winoSiblings maps each define to the other of its filter size.
var (
	winoDefines    = map[int]string{3: "CONV_WINO", 5: "CONV_WINO5"}
	winoLarge      = map[int]winoVariant{3: winoVariants[0], 5: winoVariants[2]}
	winoAllDefines = []string{"CONV_WINO", "CONV_WINO43", "CONV_WINO35", "CONV_WINO5"}
	winoSiblings   = map[string]string{"CONV_WINO": "CONV_WINO43", "CONV_WINO43": "CONV_WINO", "CONV_WINO5": "CONV_WINO35", "CONV_WINO35": "CONV_WINO5"}
)

// winoOps returns the ops a Winograd define's value names ("" is
// off); name is the define's, for errors.
func winoOps(name, v string) ([]string, error) {
	switch v {
	case "", "off":
		return nil, nil
	case "on":
		return []string{winoOpForward, winoOpData, winoOpFilter}, nil
	}
	var ops []string
	for _, op := range strings.Split(v, "+") {
		if op != winoOpForward && op != winoOpData && op != winoOpFilter {
			return nil, fmt.Errorf("%s=%q: want on, off or ops joined by + (forward, data, filter)", name, v)
		}
		if slices.Contains(ops, op) {
			return nil, fmt.Errorf("%s=%q names %s twice", name, v, op)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// checkWinoDefines checks the Winograd defines of defs.
func checkWinoDefines(defs map[string]string) error {
	for _, name := range winoAllDefines {
		v, set := defs[name]
		if set && v == "" { // a bare NAME in ALEXCL_CL_DEFINES: say which value
			return fmt.Errorf("%s has no value: want off, on, or ops joined by + (forward+data+filter)", name)
		}
		if _, err := winoOps(name, v); err != nil {
			return err
		}
	}
	return nil
}

// winoMinChannels is the default of CONV_WINO_MINCH: the fewest input
// and output channels per group a Winograd convolution may have. The
// transforms cost about (Cg + Kg) per tile against the products' Cg·Kg,
// so with few channels they cost more than Winograd saves: mini's conv1
// (one input channel, 5×5) took 52 ms forward under POCL at batch 128
// with Winograd against 2.6 ms without. Few channels also cost accuracy:
// an output whose own sum is small (near the border) takes the rounding
// of its tile's larger values; on mini's conv1 the forward error came to
// 1.4 times the device suite's bound for a sum in any order with
// F(3×3, 5×5) and 0.9 times with F(2×2, 5×5), against at most 0.4 on
// layers of 3 to 96 channels.
const winoMinChannels = 16

// winoHas reports whether the Winograd define's value v (checked
// by Open) names op, without allocating: winograd runs for every
// convolution op of every step.
func winoHas(v, op string) bool {
	switch v {
	case "", "off":
		return false
	case "on":
		return true
	}
	for v != "" {
		var item string
		item, v, _ = strings.Cut(v, "+")
		if item == op {
			return true
		}
	}
	return false
}

// winograd reports whether the defines give op (winoOpForward, winoOpData
// or winoOpFilter) of convolutions of shape s a Winograd path
// (definedPath): s of a filter size with a variant whose define names op,
// with at least CONV_WINO_MINCH input and output channels per group;
// never when wino.cl did not build (d.noWino).
func (d *Device) winograd(s device.ConvShape, op string) bool {
	_, ok := d.definedPath(s, op).wino()
	return ok
}

// winoShape reports whether Winograd can take convolutions of shape s:
// square filters of a size with variants, stride 1, the padding that
// keeps the image size, at least CONV_WINO_MINCH input and output
// channels per group, and wino.cl built (d.noWino nil).
func (d *Device) winoShape(s device.ConvShape) bool {
	if d.noWino != nil || s.S != s.R || s.Stride != 1 || s.Pad != (s.R-1)/2 || !winoSize(s.R) {
		return false
	}
	minCh := d.tunable("CONV_WINO_MINCH", winoMinChannels)
	return min(s.C, s.K)/s.Groups >= minCh
}

// winoSize reports whether a variant takes R×R filters.
func winoSize(R int) bool {
	for _, v := range winoVariants {
		if v.R == R {
			return true
		}
	}
	return false
}

// winoKernels are the names of an F(M×M, R×R)'s wino.cl kernels.
type winoKernels struct{ filter, input, output, dy, filterGrad string }

func winoKernelsFor(prefix string) winoKernels {
	return winoKernels{prefix + "filter", prefix + "input", prefix + "output", prefix + "dy", prefix + "filter_grad"}
}

// winoPlan is a Winograd convolution's sizes: filter R×R, output tiles
// M×M, E = (M+R−1)² entries per transformed tile, th×tw tiles per image,
// and its wino.cl kernels.
type winoPlan struct {
	M, R, E, th, tw int
	k               winoKernels
}

// planWino plans s, a shape winoShape takes, on variant v.
func planWino(v winoVariant, s device.ConvShape) winoPlan {
	A := v.M + s.R - 1
	return winoPlan{M: v.M, R: s.R, E: A * A, th: (s.H + v.M - 1) / v.M, tw: (s.W + v.M - 1) / v.M, k: v.k}
}

// chunks runs f over the batch of n images in chunks of nc whose
// transformed tiles fit the workspace: v with room for E*vc*T floats and
// m for E*mc*T, T = nc*th*tw. The caller holds d.ws.mu.
func (p winoPlan) chunks(d *Device, n, vc, mc int, f func(n0, nc int, v, m *buffer) error) error {
	vPer, mPer := mulSat(p.E, vc, p.th, p.tw), mulSat(p.E, mc, p.th, p.tw)
	if err := checkElems("Winograd", "transformed tiles of one image", vPer, "transformed outputs of one image", mPer); err != nil {
		return err
	}
	nc := d.chunkImages(n, func(nc int) (int, int) { return mulSat(nc, vPer), mulSat(nc, mPer) })
	if err := checkElems("Winograd", "transformed tiles of a chunk", mulSat(nc, vPer), "transformed outputs of a chunk", mulSat(nc, mPer)); err != nil {
		return err
	}
	v, err := d.slot(0, nc*vPer)
	if err != nil {
		return err
	}
	m, err := d.slot(1, nc*mPer)
	if err != nil {
		return err
	}
	return evenChunks(n, nc, func(n0, c int) error { return f(n0, c, v, m) })
}

// filters returns workspace slot 3 with room for K*Cg transformed filters
// (E floats each). The caller holds d.ws.mu.
func (p winoPlan) filters(d *Device, K, Cg int) (*buffer, error) {
	n := mulSat(p.E, K, Cg)
	if err := checkElems("Winograd", "transformed filters", n); err != nil {
		return nil, err
	}
	return d.slot(3, n)
}

// conv computes out (N, co, H, W) = the convolution of in (N, ci, H, W)
// whose filters the _filter kernel transformed into u (+ bias when b !=
// nil): per chunk _input, E*groups GEMMs M_e,g = U_e,g · V_e,g, and
// _output. The caller holds d.ws.mu.
func (p winoPlan) conv(d *Device, in, out device.Buffer, u *buffer, b device.Buffer, N, ci, co, groups, H, W int) error {
	cig, cog := ci/groups, co/groups
	return p.chunks(d, N, ci, co, func(n0, nc int, v, m *buffer) error {
		T := nc * p.th * p.tw
		if err := d.launch1D(p.k.input, ci*T, in, v, n0, nc, ci, H, W, p.th, p.tw, 0); err != nil {
			return err
		}
		err := d.gemm(gemmCall{M: cog, N: T, K: cig, alpha: 1,
			A: u, sam: cig, sak: 1, as1: co * cig, as2: cog * cig,
			B: v, sbk: T, sbn: 1, bs1: ci * T, bs2: cig * T,
			C: m, ldc: T, cs1: co * T, cs2: cog * T,
			nb1: p.E, nb2: groups})
		if err != nil {
			return err
		}
		hasBias, bias := 0, device.Buffer(m)
		if b != nil {
			hasBias, bias = 1, b
		}
		return d.launch1D(p.k.output, co*T, m, bias, out, n0, nc, co, H, W, p.th, p.tw, hasBias)
	})
}

// winoConv is, for a shape winograd takes, Conv2DForward (back false:
// in is x, out is y, with the bias b) or Conv2DBackwardData (back true:
// in is dy, out is dx, b nil: the convolution of dy with the flipped,
// channel-swapped filters).
func (d *Device) winoConv(v winoVariant, in, w, b, out device.Buffer, s device.ConvShape, back bool) error {
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	p, Cg := planWino(v, s), s.C/s.Groups
	u, err := p.filters(d, s.K, Cg)
	if err != nil {
		return err
	}
	flip, ci, co := 0, s.C, s.K
	if back {
		flip, ci, co = 1, s.K, s.C
	}
	if err := d.launch1D(p.k.filter, s.K*Cg, w, u, s.K, Cg, s.Groups, flip); err != nil {
		return err
	}
	return p.conv(d, in, out, u, b, s.N, ci, co, s.Groups, s.H, s.W)
}

// winoBackwardFilter adds the filter gradient of a shape winograd takes to
// dw: per chunk _input of x and _dy of dy, then dU_e,g (+)= Z_e,g ·
// V_e,gᵀ summed over the chunk's tiles inside the GEMM and over the
// chunks in order, and after the last chunk _filter_grad. The bias
// gradient is the caller's.
func (d *Device) winoBackwardFilter(v winoVariant, x, dy, dw device.Buffer, s device.ConvShape) error {
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	p, G, Cg, Kg := planWino(v, s), s.Groups, s.C/s.Groups, s.K/s.Groups
	du, err := p.filters(d, s.K, Cg)
	if err != nil {
		return err
	}
	first := true
	err = p.chunks(d, s.N, s.C, s.K, func(n0, nc int, v, z *buffer) error {
		T := nc * p.th * p.tw
		// V (E, C, T) on GPUs, read along t as Vᵀ; on CPU devices V
		// (E, T, C), so that gemm_vec takes the product (row-major B).
		tmajor := 0
		if d.vector() {
			tmajor = 1
		}
		if err := d.launch1D(p.k.input, s.C*T, x, v, n0, nc, s.C, s.H, s.W, p.th, p.tw, tmajor); err != nil {
			return err
		}
		if err := d.launch1D(p.k.dy, s.K*T, dy, z, n0, nc, s.K, s.H, s.W, p.th, p.tw); err != nil {
			return err
		}
		beta := float32(1)
		if first {
			beta, first = 0, false
		}
		g := gemmCall{M: Kg, N: Cg, K: T, alpha: 1, beta: beta,
			A: z, sam: T, sak: 1, as1: s.K * T, as2: Kg * T,
			B: v, sbk: 1, sbn: T, bs1: s.C * T, bs2: Cg * T,
			C: du, ldc: Cg, cs1: s.K * Cg, cs2: Kg * Cg,
			nb1: p.E, nb2: G}
		if tmajor == 1 {
			g.sbk, g.sbn, g.bs2 = s.C, 1, Cg
		}
		if splits := d.gemmSplits(Kg, Cg, T, p.E*G); splits > 1 { // few, long products (gemm.go)
			return d.gemmSplit(g, splits)
		}
		return d.gemm(g)
	})
	if err != nil {
		return err
	}
	return d.launch1D(p.k.filterGrad, s.K*Cg, du, dw, s.K, Cg)
}

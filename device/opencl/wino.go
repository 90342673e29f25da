package opencl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/alexcl/alexcl/device"
)

// Winograd F(2×2, 3×3) for the 3×3, stride-1, pad-1 convolutions (AlexNet's
// conv3 to conv5), wino.cl: a tile's 36 multiply-adds become 16, so the
// products run on 2.25 times fewer operations (less the tiles that
// overhang an odd image edge), for transforms that read and write each
// value a few times. Whether that wins depends on the device: the host-only
// define CONV_WINO (on, off, or the ops joined by "+", winoOps) chooses,
// set by the tuner from timings on the device, op by op (tune_paths.go),
// or by the user (ALEXCL_CL_DEFINES); off when neither says. Where it
// takes the data gradient, CONV_BWDATA does not matter.
//
// Workspace: slot 0 holds a chunk's transformed input V (16, C, T), slot 1
// its transformed output M or the transformed output gradient Z (16, K, T),
// slot 3 the transformed filters U or their gradient dU (16, K*Cg).

// The ops CONV_WINO names: "on" is all three, "off" none, else a
// "+"-separated list of them ("forward+data").
const (
	winoOpForward = "forward" // Conv2DForward
	winoOpData    = "data"    // Conv2DBackwardData
	winoOpFilter  = "filter"  // Conv2DBackwardFilter
)

// winoOps returns the ops a CONV_WINO value names ("" is off).
func winoOps(v string) ([]string, error) {
	switch v {
	case "", "off":
		return nil, nil
	case "on":
		return []string{winoOpForward, winoOpData, winoOpFilter}, nil
	}
	var ops []string
	for _, op := range strings.Split(v, "+") {
		if op != winoOpForward && op != winoOpData && op != winoOpFilter {
			return nil, fmt.Errorf("CONV_WINO=%q: want on, off or ops joined by + (forward, data, filter)", v)
		}
		if slices.Contains(ops, op) {
			return nil, fmt.Errorf("CONV_WINO=%q names %s twice", v, op)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// winograd reports whether d computes op (winoOpForward, winoOpData or
// winoOpFilter) of convolutions of shape s with Winograd F(2×2, 3×3).
func (d *Device) winograd(s device.ConvShape, op string) bool {
	if s.R != 3 || s.S != 3 || s.Stride != 1 || s.Pad != 1 {
		return false
	}
	ops, _ := winoOps(d.opts.Defines["CONV_WINO"]) // Open checked it
	return slices.Contains(ops, op)
}

// winoTiles returns the 2×2 output tiles of an H×W image: rows, columns.
func winoTiles(H, W int) (th, tw int) { return (H + 1) / 2, (W + 1) / 2 }

// winoChunks runs f over the batch of n images in chunks of nc whose
// transformed tiles fit the workspace: v with room for 16*vc*T floats and
// m for 16*mc*T, T = nc*th*tw. The caller holds d.ws.mu.
func (d *Device) winoChunks(n, vc, mc, H, W int, f func(n0, nc int, v, m *buffer) error) error {
	th, tw := winoTiles(H, W)
	vPer, mPer := mulSat(16, vc, th, tw), mulSat(16, mc, th, tw)
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
	for n0 := 0; n0 < n; n0 += nc {
		if err := f(n0, min(nc, n-n0), v, m); err != nil {
			return err
		}
	}
	return nil
}

// winoFilters returns workspace slot 3 with room for K*Cg transformed
// filters (16 floats each). The caller holds d.ws.mu.
func (d *Device) winoFilters(K, Cg int) (*buffer, error) {
	n := mulSat(16, K, Cg)
	if err := checkElems("Winograd", "transformed filters", n); err != nil {
		return nil, err
	}
	return d.slot(3, n)
}

// winoConv computes out (N, co, H, W) = the convolution of in (N, ci, H, W)
// whose filters wino_filter transformed into u (+ bias when b != nil):
// per chunk wino_input, 16*groups GEMMs M_e,g = U_e,g · V_e,g, and
// wino_output. The caller holds d.ws.mu.
func (d *Device) winoConv(in, out device.Buffer, u *buffer, b device.Buffer, N, ci, co, groups, H, W int) error {
	th, tw := winoTiles(H, W)
	cig, cog := ci/groups, co/groups
	return d.winoChunks(N, ci, co, H, W, func(n0, nc int, v, m *buffer) error {
		T := nc * th * tw
		if err := d.launch1D("wino_input", ci*T, in, v, n0, nc, ci, H, W, th, tw); err != nil {
			return err
		}
		err := d.gemm(gemmCall{M: cog, N: T, K: cig, alpha: 1,
			A: u, sam: cig, sak: 1, as1: co * cig, as2: cog * cig,
			B: v, sbk: T, sbn: 1, bs1: ci * T, bs2: cig * T,
			C: m, ldc: T, cs1: co * T, cs2: cog * T,
			nb1: 16, nb2: groups})
		if err != nil {
			return err
		}
		hasBias, bias := 0, device.Buffer(m)
		if b != nil {
			hasBias, bias = 1, b
		}
		return d.launch1D("wino_output", co*T, m, bias, out, n0, nc, co, H, W, th, tw, hasBias)
	})
}

// winoForward is Conv2DForward for a shape winograd takes.
func (d *Device) winoForward(x, w, b, y device.Buffer, s device.ConvShape) error {
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	Cg := s.C / s.Groups
	u, err := d.winoFilters(s.K, Cg)
	if err != nil {
		return err
	}
	if err := d.launch1D("wino_filter", s.K*Cg, w, u, s.K, Cg, s.Groups, 0); err != nil {
		return err
	}
	return d.winoConv(x, y, u, b, s.N, s.C, s.K, s.Groups, s.H, s.W)
}

// winoBackwardData is Conv2DBackwardData for a shape winograd takes: the
// convolution of dy with the flipped, channel-swapped filters.
func (d *Device) winoBackwardData(dy, w, dx device.Buffer, s device.ConvShape) error {
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	Cg := s.C / s.Groups
	u, err := d.winoFilters(s.K, Cg)
	if err != nil {
		return err
	}
	if err := d.launch1D("wino_filter", s.K*Cg, w, u, s.K, Cg, s.Groups, 1); err != nil {
		return err
	}
	return d.winoConv(dy, dx, u, nil, s.N, s.K, s.C, s.Groups, s.H, s.W)
}

// winoBackwardFilter adds the filter gradient of a shape winograd takes to
// dw: per chunk wino_input of x and wino_dy of dy, then dU_e,g (+)=
// Z_e,g · V_e,gᵀ summed over the chunk's tiles inside the GEMM and over
// the chunks in order, and after the last chunk wino_filter_grad. The
// bias gradient is the caller's.
func (d *Device) winoBackwardFilter(x, dy, dw device.Buffer, s device.ConvShape) error {
	d.ws.mu.Lock()
	defer d.ws.mu.Unlock()
	G, Cg, Kg := s.Groups, s.C/s.Groups, s.K/s.Groups
	du, err := d.winoFilters(s.K, Cg)
	if err != nil {
		return err
	}
	th, tw := winoTiles(s.H, s.W)
	first := true
	err = d.winoChunks(s.N, s.C, s.K, s.H, s.W, func(n0, nc int, v, z *buffer) error {
		T := nc * th * tw
		if err := d.launch1D("wino_input", s.C*T, x, v, n0, nc, s.C, s.H, s.W, th, tw); err != nil {
			return err
		}
		if err := d.launch1D("wino_dy", s.K*T, dy, z, n0, nc, s.K, s.H, s.W, th, tw); err != nil {
			return err
		}
		beta := float32(1)
		if first {
			beta, first = 0, false
		}
		return d.gemm(gemmCall{M: Kg, N: Cg, K: T, alpha: 1, beta: beta,
			A: z, sam: T, sak: 1, as1: s.K * T, as2: Kg * T,
			B: v, sbk: 1, sbn: T, bs1: s.C * T, bs2: Cg * T,
			C: du, ldc: Cg, cs1: s.K * Cg, cs2: Kg * Cg,
			nb1: 16, nb2: G})
	})
	if err != nil {
		return err
	}
	if err := d.launch1D("wino_filter_grad", s.K*Cg, du, dw, s.K, Cg); err != nil {
		return fmt.Errorf("wino_filter_grad: %w", err)
	}
	return nil
}

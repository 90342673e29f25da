package cpu

import (
	"github.com/alexcl/alexcl/device"
)

// Winograd F(2×2, 3×3) for 3×3, stride-1, pad-1 convolutions, beside the
// im2col path (conv.go), chosen by the shape alone (useWinograd);
// ALEXCL_WINOGRAD=off turns it off.
//
// The output is cut into 2×2 tiles; tile t of sample n reads the 4×4 input
// patch at (2·ty − 1, 2·tx − 1), zero outside the image. With
//
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//	G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//	Aᵀ = [1 1 1 0; 0 1 −1 −1]
//
// a group's convolution becomes, for each of the 16 positions e of the 4×4
// transformed tile, one GEMM over the channels:
//
//	U_e (Kg, Cg)  = (G w[k,c] Gᵀ)_e         filter transform, once per call
//	V_e (Cg, T)   = (Bᵀ d[c,t] B)_e          input transform of a chunk's tiles
//	M_e (Kg, T)   = U_e · V_e                16 GEMMs through Device.sgemm
//	y[k,t]        = Aᵀ M[k,t] A (+ bias)     output transform
//
// Backward data is the same convolution of dy with the filter flipped and
// transposed (K ↔ C), which is what the filter transform is told to build.
//
// Tasks are (chunk of Q samples, group), Q from the shape alone, each task
// with its own scratch and single-threaded GEMMs; every output element is
// computed by one task in a fixed order, so the bits depend on the shape
// only, not on the workers or scheduling.

// winogradOff is read once: ALEXCL_WINOGRAD=off disables the fast path.
var winogradOff = envOff("ALEXCL_WINOGRAD")

// useWinograd reports whether s takes the Winograd path.
func (d *Device) useWinograd(s device.ConvShape) bool {
	return !d.noWinograd && s.R == 3 && s.S == 3 && s.Stride == 1 && s.Pad == 1
}

// winoPlan is how a Winograd convolution is cut up: in channels Ci, out
// channels Co (per group), tiles per sample, samples per chunk.
type winoPlan struct {
	Ci, Co, H, W, th, tw, tiles int
	Q, chunks                   int
	scalar                      bool // tests: the Go transforms even where the vector ones run
	avx2                        bool // tests: the AVX2 transforms even where AVX-512 runs
}

// vector reports whether the transforms run as AVX-512 assembly (winoIn,
// winoOut: a tile row in one vector), which gives the same bits as the Go
// loops.
func (p winoPlan) vector() bool { return useAVX512 && p.tw <= 7 && !p.scalar && !p.avx2 }

// vector8 reports whether the input and output transforms run as AVX2
// assembly (winoInAVX2, winoOutAVX2: tile rows of 8 floats), where vector
// does not; same bits as the Go loops.
func (p winoPlan) vector8() bool { return !p.vector() && useAVX2 && p.tw <= 3 && !p.scalar }

// laneMask returns the AVX2 lane mask of lanes [lo, hi): −1 (all bits)
// in those lanes, 0 elsewhere.
func laneMask(lo, hi int) (m [8]int32) {
	for l := max(lo, 0); l < min(hi, 8); l++ {
		m[l] = -1
	}
	return m
}

// winoBudget is the target size, in floats, of a chunk's V and M.
var winoBudget = 2 << 20

func planWino(N, Ci, Co, H, W int) winoPlan {
	p := winoPlan{Ci: Ci, Co: Co, H: H, W: W, th: (H + 1) / 2, tw: (W + 1) / 2}
	p.tiles = p.th * p.tw
	p.Q = max(1, winoBudget/(16*(Ci+Co)*p.tiles))
	p.Q = min(p.Q, max(1, (N+3)/4))
	p.chunks = (N + p.Q - 1) / p.Q
	return p
}

func (p winoPlan) vSize() int { return round16(16 * p.Ci * p.Q * p.tiles) }
func (p winoPlan) mSize() int { return round16(16 * p.Co * p.Q * p.tiles) }

// winoFilter writes u (G, 16, Co, Ci), u[g][e] = (G f Gᵀ)_e for the 3×3
// filter f of (out o, in i) of group g. Forward: f = w[g·Co+o, i]. With
// back, the filter of backward data: f = w[g·Ci+i, o] rotated by 180°.
func (d *Device) winoFilter(ws, u []float32, groups, Co, Ci int, back bool) {
	d.parallelFor(groups*Co, 8, func(lo, hi int) {
		for go_ := lo; go_ < hi; go_++ {
			g, o := go_/Co, go_%Co
			ub := u[g*16*Co*Ci:]
			for i := 0; i < Ci; i++ {
				var f [9]float32
				if back {
					src := ws[((g*Ci+i)*Co+o)*9:][:9]
					for j := range f {
						f[j] = src[8-j]
					}
				} else {
					copy(f[:], ws[((g*Co+o)*Ci+i)*9:][:9])
				}
				// t = G f (4×3), then t Gᵀ (4×4).
				var t [4][3]float32
				for c := 0; c < 3; c++ {
					f0, f1, f2 := f[c], f[3+c], f[6+c]
					t[0][c] = f0
					t[1][c] = 0.5 * (f0 + f1 + f2)
					t[2][c] = 0.5 * (f0 - f1 + f2)
					t[3][c] = f2
				}
				for r := 0; r < 4; r++ {
					f0, f1, f2 := t[r][0], t[r][1], t[r][2]
					base := r * 4
					ub[((base+0)*Co+o)*Ci+i] = f0
					ub[((base+1)*Co+o)*Ci+i] = 0.5 * (f0 + f1 + f2)
					ub[((base+2)*Co+o)*Ci+i] = 0.5 * (f0 - f1 + f2)
					ub[((base+3)*Co+o)*Ci+i] = f2
				}
			}
		}
	})
}

// padSize is the scratch of winoInput's zero-padded plane.
func (p winoPlan) padSize() int { return round16((2*p.th + 2) * (2*p.tw + 2)) }

// winoInput fills v (16, Ci, ld), columns [col0, col0+tiles) of each row,
// with the transformed tiles of xc (Ci, H, W), one sample's group. Each
// plane is first copied into pad (padSize floats) with its zero border, so
// that every tile reads a full 4×4 patch.
func (p winoPlan) winoInput(xc, v, pad []float32, ld, col0 int) {
	H, W := p.H, p.W
	es := p.Ci * ld // stride between the 16 matrices
	if p.vector() {
		// The assembly reads the plane itself, the border by masking.
		_ = v[15*es+(p.Ci-1)*ld+col0+p.tiles-1]
		for c := 0; c < p.Ci; c++ {
			winoIn(&xc[c*H*W], H, W, p.th, p.tw, &v[c*ld+col0], es)
		}
		return
	}
	if p.vector8() {
		masks := [2][8]int32{laneMask(1, W+1), laneMask(0, p.tw)}
		_ = v[15*es+(p.Ci-1)*ld+col0+p.tiles-1]
		for c := 0; c < p.Ci; c++ {
			winoInAVX2(&xc[c*H*W], H, W, p.th, p.tw, &v[c*ld+col0], es, &masks)
		}
		return
	}
	Wp := 2*p.tw + 2
	pad = pad[:(2*p.th+2)*Wp]
	clear(pad)
	var out [16][]float32
	for c := 0; c < p.Ci; c++ {
		plane := xc[c*H*W : (c+1)*H*W]
		for h := 0; h < H; h++ {
			copy(pad[(h+1)*Wp+1:], plane[h*W:(h+1)*W])
		}
		for e := range out {
			out[e] = v[e*es+c*ld+col0:][:p.tiles]
		}
		j := 0
		for ty := 0; ty < p.th; ty++ {
			for tx := 0; tx < p.tw; tx++ {
				// t = Bᵀ d (rows), then t B (columns), d the 4×4 patch.
				b := pad[2*ty*Wp+2*tx:]
				r0, r1, r2, r3 := b[:4:4], b[Wp:Wp+4:Wp+4], b[2*Wp:2*Wp+4:2*Wp+4], b[3*Wp:3*Wp+4:3*Wp+4]
				t00, t01, t02, t03 := r0[0]-r2[0], r0[1]-r2[1], r0[2]-r2[2], r0[3]-r2[3]
				t10, t11, t12, t13 := r1[0]+r2[0], r1[1]+r2[1], r1[2]+r2[2], r1[3]+r2[3]
				t20, t21, t22, t23 := r2[0]-r1[0], r2[1]-r1[1], r2[2]-r1[2], r2[3]-r1[3]
				t30, t31, t32, t33 := r1[0]-r3[0], r1[1]-r3[1], r1[2]-r3[2], r1[3]-r3[3]
				out[0][j], out[1][j], out[2][j], out[3][j] = t00-t02, t01+t02, t02-t01, t01-t03
				out[4][j], out[5][j], out[6][j], out[7][j] = t10-t12, t11+t12, t12-t11, t11-t13
				out[8][j], out[9][j], out[10][j], out[11][j] = t20-t22, t21+t22, t22-t21, t21-t23
				out[12][j], out[13][j], out[14][j], out[15][j] = t30-t32, t31+t32, t32-t31, t31-t33
				j++
			}
		}
		// The copy leaves the border zero; rows past H (odd H) and columns
		// past W stay zero too, as only [1, H] × [1, W] is ever written.
	}
}

// winoOutput writes yc (Co, H, W), one sample's group, from columns
// [col0, col0+tiles) of m (16, Co, ld), adding bias[o] when bias is not nil.
func (p winoPlan) winoOutput(m []float32, ld, col0 int, yc, bias []float32) {
	H, W := p.H, p.W
	es := p.Co * ld
	for o := 0; o < p.Co; o++ {
		var b float32
		if bias != nil {
			b = bias[o]
		}
		plane := yc[o*H*W : (o+1)*H*W]
		if p.vector() {
			_ = m[15*es+o*ld+col0+p.tiles-1]
			winoOut(&m[o*ld+col0], es, p.th, p.tw, &plane[0], H, W, b)
			continue
		}
		if p.vector8() {
			masks := [2][8]int32{laneMask(0, p.tw), laneMask(0, W)}
			_ = m[15*es+o*ld+col0+p.tiles-1]
			winoOutAVX2(&m[o*ld+col0], es, p.th, p.tw, &plane[0], H, W, b, &masks)
			continue
		}
		mo := m[o*ld+col0:]
		for ty := 0; ty < p.th; ty++ {
			for tx := 0; tx < p.tw; tx++ {
				j := ty*p.tw + tx
				// t = Aᵀ M (2×4), then t A (2×2).
				var t [2][4]float32
				for q := 0; q < 4; q++ {
					m0, m1, m2, m3 := mo[q*es+j], mo[(4+q)*es+j], mo[(8+q)*es+j], mo[(12+q)*es+j]
					t[0][q] = m0 + m1 + m2
					t[1][q] = m1 - m2 - m3
				}
				h, w := 2*ty, 2*tx
				for r := 0; r < 2 && h+r < H; r++ {
					row := plane[(h+r)*W:]
					row[w] = t[r][0] + t[r][1] + t[r][2] + b
					if w+1 < W {
						row[w+1] = t[r][1] - t[r][2] - t[r][3] + b
					}
				}
			}
		}
	}
}

// winograd computes ys (N, G·Co, H, W) = conv3×3/pad 1 of xs (N, G·Ci, H, W)
// with the filter w (forward, back false) or its flipped transpose
// (backward data), plus bias when not nil.
func (d *Device) winograd(xs, ws, bias, ys []float32, N, groups, Ci, Co, H, W int, back bool) {
	p := planWino(N, Ci, Co, H, W)
	ar := d.acquire()
	defer d.release(ar)
	u := ar.take(groups * 16 * Co * Ci)
	d.winoFilter(ws, u, groups, Co, Ci, back)
	tasks := p.chunks * groups
	nw := min(d.workers, tasks)
	vs, ms, pads := ar.take(nw*p.vSize()), ar.take(nw*p.mSize()), ar.take(nw*p.padSize())
	HW := H * W
	d.run(ar, tasks, func(wk *worker, t int) {
		c, g := t/groups, t%groups
		n0 := c * p.Q
		q := min(p.Q, N-n0)
		ld := q * p.tiles
		v := vs[wk.idx*p.vSize():][:16*Ci*ld]
		m := ms[wk.idx*p.mSize():][:16*Co*ld]
		for i := 0; i < q; i++ {
			n := n0 + i
			p.winoInput(xs[(n*groups+g)*Ci*HW:][:Ci*HW], v, pads[wk.idx*p.padSize():], ld, i*p.tiles)
		}
		ug := u[g*16*Co*Ci:]
		for e := 0; e < 16; e++ {
			d.sgemm(wk, false, false, Co, ld, Ci, 1, ug[e*Co*Ci:], Ci, v[e*Ci*ld:], ld, 0, m[e*Co*ld:], ld)
		}
		var bg []float32
		if bias != nil {
			bg = bias[g*Co : (g+1)*Co]
		}
		for i := 0; i < q; i++ {
			n := n0 + i
			p.winoOutput(m, ld, i*p.tiles, ys[(n*groups+g)*Co*HW:][:Co*HW], bg)
		}
	})
}

// The filter gradient of a Winograd-eligible convolution is taken in the
// Winograd domain too. With Z_e = U_e ⊙ V_e the forward's products and y's
// tile = Aᵀ Z A, the gradient of Z for an output-gradient tile g (2×2) is
// A g Aᵀ (4×4), so for each position e
//
//	dU_e (Co, Ci) = Σ_tiles (A g Aᵀ)_e[o, t] · V_e[i, t]   16 GEMMs over the tiles
//	dw[o, i]     += Gᵀ dU[o, i] G                          (4×4 → 3×3)
//
// which is 16·T multiply-adds per (o, i) against im2col's 9·4·T (T tiles of
// 2×2 outputs), and no im2col. The batch is cut into chunks of Q samples
// (from the shape alone); each chunk's transforms run in parallel over its
// samples, then the 16 GEMMs in parallel over e, each accumulating its dU_e
// over the chunks in order, so the bits depend on the shape only.

// winoDy fills gz (16, Co, ld), columns [col0, col0+tiles) of each row,
// with A g Aᵀ of the 2×2 tiles g of dyc (Co, H, W), one sample's group;
// tile rows and columns past H and W read as zero.
func (p winoPlan) winoDy(dyc, gz []float32, ld, col0 int) {
	H, W := p.H, p.W
	es := p.Co * ld
	if p.vector() {
		_ = gz[15*es+(p.Co-1)*ld+col0+p.tiles-1]
		for o := 0; o < p.Co; o++ {
			winoDyT(&dyc[o*H*W], H, W, p.th, p.tw, &gz[o*ld+col0], es)
		}
		return
	}
	var out [16][]float32
	for o := 0; o < p.Co; o++ {
		plane := dyc[o*H*W : (o+1)*H*W]
		for e := range out {
			out[e] = gz[e*es+o*ld+col0:][:p.tiles]
		}
		j := 0
		for ty := 0; ty < p.th; ty++ {
			h := 2 * ty
			r0 := plane[h*W : (h+1)*W]
			var r1 []float32
			if h+1 < H {
				r1 = plane[(h+1)*W : (h+2)*W]
			}
			for tx := 0; tx < p.tw; tx++ {
				w := 2 * tx
				var g00, g01, g10, g11 float32
				g00 = r0[w]
				if w+1 < W {
					g01 = r0[w+1]
				}
				if r1 != nil {
					g10 = r1[w]
					if w+1 < W {
						g11 = r1[w+1]
					}
				}
				// s = A g (4×2): rows g0, g0 + g1, g0 − g1, −g1.
				s00, s01 := g00, g01
				s10, s11 := g00+g10, g01+g11
				s20, s21 := g00-g10, g01-g11
				s30, s31 := -g10, -g11
				// s Aᵀ (4×4): each row (a, b) → a, a + b, a − b, −b.
				out[0][j], out[1][j], out[2][j], out[3][j] = s00, s00+s01, s00-s01, -s01
				out[4][j], out[5][j], out[6][j], out[7][j] = s10, s10+s11, s10-s11, -s11
				out[8][j], out[9][j], out[10][j], out[11][j] = s20, s20+s21, s20-s21, -s21
				out[12][j], out[13][j], out[14][j], out[15][j] = s30, s30+s31, s30-s31, -s31
				j++
			}
		}
	}
}

// winogradFilterGrad adds to dws (G·Co, Ci, 3, 3) the filter gradient of
// the 3×3, stride-1, pad-1 convolution of xs (N, G·Ci, H, W) whose output
// gradient is dys (N, G·Co, H, W).
func (d *Device) winogradFilterGrad(xs, dys, dws []float32, N, groups, Ci, Co, H, W int) {
	// Chunks as the forward's (winoBudget), without its floor on their
	// number: here each chunk is parallel within itself. (A chunk of V
	// much past the caches made the transforms' stores the bottleneck.)
	p := planWino(N, Ci, Co, H, W)
	p.Q = min(N, max(1, winoBudget/(16*(Ci+Co)*p.tiles)))
	p.chunks = (N + p.Q - 1) / p.Q
	ar := d.acquire()
	defer d.release(ar)
	ldMax := p.Q * p.tiles
	v, gz := ar.take(16*Ci*ldMax), ar.take(16*Co*ldMax)
	du := ar.take(16 * Co * Ci)
	pads := ar.take(d.workers * p.padSize())
	HW := H * W
	for g := 0; g < groups; g++ {
		for c := 0; c < p.chunks; c++ {
			n0 := c * p.Q
			q := min(p.Q, N-n0)
			ld := q * p.tiles
			d.run(ar, q, func(wk *worker, i int) {
				n := n0 + i
				p.winoInput(xs[(n*groups+g)*Ci*HW:][:Ci*HW], v, pads[wk.idx*p.padSize():], ld, i*p.tiles)
				p.winoDy(dys[(n*groups+g)*Co*HW:][:Co*HW], gz, ld, i*p.tiles)
			})
			beta := float32(1)
			if c == 0 {
				beta = 0
			}
			// dU_e (Co, Ci) (+)= dZ_e (Co, ld) · V_eᵀ (ld, Ci)
			d.run(ar, 16, func(wk *worker, e int) {
				d.sgemm(wk, false, true, Co, Ci, ld, 1, gz[e*Co*ld:], ld, v[e*Ci*ld:], ld, beta, du[e*Co*Ci:], Ci)
			})
		}
		// dw[o, i] += Gᵀ dU[o, i] G, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
		dwg := dws[g*Co*Ci*9 : (g+1)*Co*Ci*9]
		d.parallelFor(Co*Ci, 256, func(lo, hi int) {
			for oi := lo; oi < hi; oi++ {
				var m [16]float32
				for e := range m {
					m[e] = du[e*Co*Ci+oi]
				}
				// t = Gᵀ m (3×4), then t G (3×3).
				var t [3][4]float32
				for b := 0; b < 4; b++ {
					m0, m1, m2, m3 := m[b], m[4+b], m[8+b], m[12+b]
					t[0][b] = m0 + 0.5*(m1+m2)
					t[1][b] = 0.5 * (m1 - m2)
					t[2][b] = 0.5*(m1+m2) + m3
				}
				w := dwg[oi*9 : oi*9+9]
				for a := 0; a < 3; a++ {
					t0, t1, t2, t3 := t[a][0], t[a][1], t[a][2], t[a][3]
					w[3*a] += t0 + 0.5*(t1+t2)
					w[3*a+1] += 0.5 * (t1 - t2)
					w[3*a+2] += 0.5*(t1+t2) + t3
				}
			}
		})
	}
}

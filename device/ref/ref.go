// Package ref is the plain, readable reference of every alexcl op, written
// in the style of llm.c: explicit loops, a shape comment on every slice, and
// each forward beside its backward. Every faster implementation (device/cpu,
// the OpenCL kernels) is judged against it.
//
// The functions are generic over the element type so that gradient checks
// can run in float64 while devices are compared in float32. They work on
// host slices, do no allocation beyond what an op needs, and assume the
// slices are large enough for the shape they are given (an index out of
// range panics, as any Go slice would); the devices validate sizes and
// shapes before calling into code like this.
//
// Layout and dimension letters follow package device: row-major, images
// NCHW, N batch, C input channels, H, W input size, K output channels, R, S
// filter size, OH, OW output size. Semantics follow PyTorch, the oracle.
package ref

import (
	"math"

	"github.com/alexcl/alexcl/device"
)

// Float is the element type the reference computes in.
type Float interface{ ~float32 | ~float64 }

// ---------------------------------------------------------------------------
// GEMM and bias

// Gemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices, as
// device.Device.Gemm does. op(A) is (M, K), op(B) is (K, N), C is (M, N).
//
//	A is (M, K), or (K, M) when tA
//	B is (K, N), or (N, K) when tB
//	C is (M, N)
//
// When beta is 0, C is only written, never read, so NaNs in it do not leak.
// Each element's dot product is summed in k order in F.
func Gemm[F Float](tA, tB bool, M, N, K int, alpha F, A, B []F, beta F, C []F) {
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var sum F
			for k := 0; k < K; k++ {
				var a, b F
				if tA {
					a = A[k*M+i] // A is (K, M)
				} else {
					a = A[i*K+k] // A is (M, K)
				}
				if tB {
					b = B[j*K+k] // B is (N, K)
				} else {
					b = B[k*N+j] // B is (K, N)
				}
				sum += a * b
			}
			if beta == 0 {
				C[i*N+j] = alpha * sum
			} else {
				C[i*N+j] = alpha*sum + beta*C[i*N+j]
			}
		}
	}
}

// AddBias adds b to every row of y.
//
//	y is (rows, cols)
//	b is (cols)
func AddBias[F Float](y, b []F, rows, cols int) {
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			y[r*cols+c] += b[c]
		}
	}
}

// BiasGrad accumulates the gradient of AddBias's b: db += Σ_rows dy.
// Each column is summed in row order, then added to db.
//
//	dy is (rows, cols)
//	db is (cols)
func BiasGrad[F Float](dy, db []F, rows, cols int) {
	for c := 0; c < cols; c++ {
		var sum F
		for r := 0; r < rows; r++ {
			sum += dy[r*cols+c]
		}
		db[c] += sum
	}
}

// ---------------------------------------------------------------------------
// Convolution

// Conv2DForward computes y = conv(x, w) + b, as torch.nn.Conv2d with zero
// padding s.Pad, stride s.Stride and s.Groups groups. Output channel k
// belongs to group g = k/(K/G) and reads input channels [g·C/G, (g+1)·C/G).
//
//	x is (N, C, H, W)
//	w is (K, C/G, R, S)
//	b is (K)
//	y is (N, K, OH, OW)
func Conv2DForward[F Float](x, w, b, y []F, s device.ConvShape) {
	OH, OW := s.OH(), s.OW()
	Cg, Kg := s.C/s.Groups, s.K/s.Groups // channels per group
	for n := 0; n < s.N; n++ {
		for k := 0; k < s.K; k++ {
			g := k / Kg
			for oh := 0; oh < OH; oh++ {
				for ow := 0; ow < OW; ow++ {
					sum := b[k]
					for c := 0; c < Cg; c++ {
						ci := g*Cg + c // input channel
						for r := 0; r < s.R; r++ {
							h := oh*s.Stride - s.Pad + r
							if h < 0 || h >= s.H {
								continue // zero padding
							}
							for q := 0; q < s.S; q++ {
								wi := ow*s.Stride - s.Pad + q
								if wi < 0 || wi >= s.W {
									continue
								}
								sum += x[((n*s.C+ci)*s.H+h)*s.W+wi] * w[((k*Cg+c)*s.R+r)*s.S+q]
							}
						}
					}
					y[((n*s.K+k)*OH+oh)*OW+ow] = sum
				}
			}
		}
	}
}

// Conv2DBackwardData overwrites dx with ∂L/∂x given dy = ∂L/∂y: every output
// position scatters dy·w back onto the input pixels it read.
//
//	dy is (N, K, OH, OW)
//	w  is (K, C/G, R, S)
//	dx is (N, C, H, W)
func Conv2DBackwardData[F Float](dy, w, dx []F, s device.ConvShape) {
	OH, OW := s.OH(), s.OW()
	Cg, Kg := s.C/s.Groups, s.K/s.Groups
	for i := range dx[:s.N*s.C*s.H*s.W] {
		dx[i] = 0
	}
	for n := 0; n < s.N; n++ {
		for k := 0; k < s.K; k++ {
			g := k / Kg
			for oh := 0; oh < OH; oh++ {
				for ow := 0; ow < OW; ow++ {
					d := dy[((n*s.K+k)*OH+oh)*OW+ow]
					for c := 0; c < Cg; c++ {
						ci := g*Cg + c
						for r := 0; r < s.R; r++ {
							h := oh*s.Stride - s.Pad + r
							if h < 0 || h >= s.H {
								continue
							}
							for q := 0; q < s.S; q++ {
								wi := ow*s.Stride - s.Pad + q
								if wi < 0 || wi >= s.W {
									continue
								}
								dx[((n*s.C+ci)*s.H+h)*s.W+wi] += d * w[((k*Cg+c)*s.R+r)*s.S+q]
							}
						}
					}
				}
			}
		}
	}
}

// Conv2DBackwardFilter accumulates dw += ∂L/∂w and db += ∂L/∂b given
// dy = ∂L/∂y. Each weight's gradient is summed over (n, oh, ow) in that
// order, then added to dw.
//
//	x  is (N, C, H, W)
//	dy is (N, K, OH, OW)
//	dw is (K, C/G, R, S)
//	db is (K)
func Conv2DBackwardFilter[F Float](x, dy, dw, db []F, s device.ConvShape) {
	OH, OW := s.OH(), s.OW()
	Cg, Kg := s.C/s.Groups, s.K/s.Groups
	for k := 0; k < s.K; k++ {
		g := k / Kg
		for c := 0; c < Cg; c++ {
			ci := g*Cg + c
			for r := 0; r < s.R; r++ {
				for q := 0; q < s.S; q++ {
					var sum F
					for n := 0; n < s.N; n++ {
						for oh := 0; oh < OH; oh++ {
							h := oh*s.Stride - s.Pad + r
							if h < 0 || h >= s.H {
								continue
							}
							for ow := 0; ow < OW; ow++ {
								wi := ow*s.Stride - s.Pad + q
								if wi < 0 || wi >= s.W {
									continue
								}
								sum += x[((n*s.C+ci)*s.H+h)*s.W+wi] * dy[((n*s.K+k)*OH+oh)*OW+ow]
							}
						}
					}
					dw[((k*Cg+c)*s.R+r)*s.S+q] += sum
				}
			}
		}
		var sum F
		for n := 0; n < s.N; n++ {
			for p := 0; p < OH*OW; p++ {
				sum += dy[(n*s.K+k)*OH*OW+p]
			}
		}
		db[k] += sum
	}
}

// ---------------------------------------------------------------------------
// ReLU

// ReLUForward sets y = max(x, 0). x and y may be the same slice. A NaN input
// gives 0 (x > 0 is false), as the OpenCL kernels' comparison does.
//
//	x, y are (n)
func ReLUForward[F Float](x, y []F) {
	for i := range x {
		if x[i] > 0 {
			y[i] = x[i]
		} else {
			y[i] = 0
		}
	}
}

// ReLUBackward overwrites dx = dy where y > 0, else 0. dy and dx may be the
// same slice. It takes the forward output y, so it also works after an
// in-place forward.
//
//	y, dy, dx are (n)
func ReLUBackward[F Float](y, dy, dx []F) {
	for i := range y {
		if y[i] > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
}

// ---------------------------------------------------------------------------
// Max pooling

// MaxPoolForward takes the maximum of every Size×Size window moved by
// Stride (no padding) and records in idx the position h*W+w, within the
// (H, W) plane, of the window's first maximum in row-major window order:
// a later element replaces the current best only when strictly greater.
//
// NaN: a NaN wins over every number and the first NaN in window order is
// kept (a later NaN does not replace it), so NaNs propagate as in PyTorch.
//
//	x   is (N, C, H, W)
//	y   is (N, C, OH, OW)
//	idx is (N, C, OH, OW)
func MaxPoolForward[F Float](x, y []F, idx []int32, s device.PoolShape) {
	OH, OW := s.OH(), s.OW()
	for nc := 0; nc < s.N*s.C; nc++ {
		plane := x[nc*s.H*s.W : (nc+1)*s.H*s.W] // (H, W)
		for oh := 0; oh < OH; oh++ {
			for ow := 0; ow < OW; ow++ {
				h0, w0 := oh*s.Stride, ow*s.Stride
				bestAt := h0*s.W + w0
				best := plane[bestAt]
				for r := 0; r < s.Size; r++ {
					for q := 0; q < s.Size; q++ {
						at := (h0+r)*s.W + w0 + q
						v := plane[at]
						if v > best || (v != v && best == best) {
							best, bestAt = v, at
						}
					}
				}
				y[(nc*OH+oh)*OW+ow] = best
				idx[(nc*OH+oh)*OW+ow] = int32(bestAt)
			}
		}
	}
}

// MaxPoolBackward overwrites dx by routing each dy to the input position
// idx recorded by the forward pass; where windows overlap and pick the same
// input, their gradients add (in output row-major order).
//
//	idx is (N, C, OH, OW)
//	dy  is (N, C, OH, OW)
//	dx  is (N, C, H, W)
func MaxPoolBackward[F Float](idx []int32, dy, dx []F, s device.PoolShape) {
	OH, OW := s.OH(), s.OW()
	for i := range dx[:s.N*s.C*s.H*s.W] {
		dx[i] = 0
	}
	for nc := 0; nc < s.N*s.C; nc++ {
		for p := 0; p < OH*OW; p++ {
			dx[nc*s.H*s.W+int(idx[nc*OH*OW+p])] += dy[nc*OH*OW+p]
		}
	}
}

// ---------------------------------------------------------------------------
// Local response normalisation

// lrnWindow returns the channel range [lo, hi] summed for channel c:
// [c − Size/2, c + (Size−1)/2] clipped to [0, C), as PyTorch pads it.
func lrnWindow(c, C, size int) (lo, hi int) {
	lo, hi = c-size/2, c+(size-1)/2
	if lo < 0 {
		lo = 0
	}
	if hi > C-1 {
		hi = C - 1
	}
	return lo, hi
}

// LRNForward normalises across channels exactly as torch.nn.LocalResponseNorm:
//
//	scale[c] = K + Alpha/Size · Σ_{c' in window(c)} x[c']²
//	y[c]     = x[c] · scale[c]^(−Beta)
//
// The squares are summed in increasing c' order.
//
//	x, y, scale are (N, C, H, W)
func LRNForward[F Float](x, y, scale []F, s device.LRNShape) {
	HW := s.H * s.W
	alphaOverSize := F(s.Alpha) / F(s.Size)
	for n := 0; n < s.N; n++ {
		for c := 0; c < s.C; c++ {
			lo, hi := lrnWindow(c, s.C, s.Size)
			for p := 0; p < HW; p++ {
				var sum F
				for cc := lo; cc <= hi; cc++ {
					v := x[(n*s.C+cc)*HW+p]
					sum += v * v
				}
				i := (n*s.C+c)*HW + p
				scale[i] = F(s.K) + alphaOverSize*sum
				y[i] = x[i] * F(math.Pow(float64(scale[i]), -float64(s.Beta)))
			}
		}
	}
}

// LRNBackward overwrites dx with ∂L/∂x given dy = ∂L/∂y. With
// y[c] = x[c]·scale[c]^(−β) and ∂scale[c]/∂x[j] = 2·(α/n)·x[j] for j in
// window(c):
//
//	dx[j] = dy[j]·scale[j]^(−β) − (2αβ/n)·x[j]·Σ_{c : j in window(c)} dy[c]·y[c]/scale[c]
//
// j is in window(c) exactly when c lies in [j − (Size−1)/2, j + Size/2].
//
//	x, y, scale, dy, dx are (N, C, H, W)
func LRNBackward[F Float](x, y, scale, dy, dx []F, s device.LRNShape) {
	HW := s.H * s.W
	coef := 2 * F(s.Alpha) * F(s.Beta) / F(s.Size)
	for n := 0; n < s.N; n++ {
		for j := 0; j < s.C; j++ {
			lo, hi := j-(s.Size-1)/2, j+s.Size/2 // the channels whose window holds j
			if lo < 0 {
				lo = 0
			}
			if hi > s.C-1 {
				hi = s.C - 1
			}
			for p := 0; p < HW; p++ {
				var sum F
				for c := lo; c <= hi; c++ {
					i := (n*s.C+c)*HW + p
					sum += dy[i] * y[i] / scale[i]
				}
				i := (n*s.C+j)*HW + p
				dx[i] = dy[i]*F(math.Pow(float64(scale[i]), -float64(s.Beta))) - coef*x[i]*sum
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Dropout

// DropoutForward sets y = x·mask·1/(1−p), element i kept when
// device.DropoutKeep(key, i, device.DropoutThreshold(p)); the scale is
// device.DropoutScale(p) converted to F. p == 0 is the identity. x and y
// may be the same slice.
//
//	x, y are (n)
func DropoutForward[F Float](x, y []F, p float32, key device.DropoutKey) {
	dropoutApply(x, y, p, key)
}

// DropoutBackward overwrites dx = dy·mask·1/(1−p) with the mask the forward
// pass drew from the same key. dy and dx may be the same slice.
//
//	dy, dx are (n)
func DropoutBackward[F Float](dy, dx []F, p float32, key device.DropoutKey) {
	dropoutApply(dy, dx, p, key)
}

// dropoutApply is the forward and the backward: both multiply by the mask.
func dropoutApply[F Float](in, out []F, p float32, key device.DropoutKey) {
	if p == 0 {
		copy(out, in)
		return
	}
	thr := device.DropoutThreshold(p)
	scale := F(device.DropoutScale(p))
	for i := range in {
		if device.DropoutKeep(key, uint32(i), thr) {
			out[i] = in[i] * scale
		} else {
			out[i] = 0
		}
	}
}

// ---------------------------------------------------------------------------
// Softmax cross-entropy

// SoftmaxCrossEntropy computes, for every sample, the cross-entropy of the
// softmax of its logits against its label, numerically stable through
// max-subtraction:
//
//	loss[i] = log Σ_c exp(z[c] − max) − (z[label] − max)
//
// rank[i] is the number of classes c with z[c] > z[label], or z[c] == z[label]
// and c < label (rank 0 is a top-1 hit, rank < 5 a top-5 hit). dlogits, unless
// nil, is overwritten with the gradient of the batch mean loss,
// (softmax − onehot)/n. Labels must lie in [0, classes): this is a test
// oracle and panics otherwise; devices check labels and return an error.
//
//	logits  is (n, classes)
//	labels  is (n)
//	loss    is (n)
//	rank    is (n)
//	dlogits is (n, classes) or nil
func SoftmaxCrossEntropy[F Float](logits []F, labels []int32, loss []F, rank []int32, dlogits []F, n, classes int) {
	for i := 0; i < n; i++ {
		z := logits[i*classes : (i+1)*classes] // (classes)
		label := int(labels[i])
		if label < 0 || label >= classes {
			panic("ref.SoftmaxCrossEntropy: label out of range")
		}
		maxZ := z[0]
		for c := 1; c < classes; c++ {
			if z[c] > maxZ {
				maxZ = z[c]
			}
		}
		var sum F
		for c := 0; c < classes; c++ {
			sum += F(math.Exp(float64(z[c] - maxZ)))
		}
		loss[i] = F(math.Log(float64(sum))) - (z[label] - maxZ)

		r := int32(0)
		for c := 0; c < classes; c++ {
			if rankedAbove(z[c], z[label], c, label) {
				r++
			}
		}
		rank[i] = r

		if dlogits != nil {
			d := dlogits[i*classes : (i+1)*classes] // (classes)
			for c := 0; c < classes; c++ {
				prob := F(math.Exp(float64(z[c]-maxZ))) / sum
				if c == label {
					prob -= 1
				}
				d[c] = prob / F(n)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// SGD

// SGDUpdate applies one step of momentum SGD with weight decay, in F
// arithmetic and exactly this order of operations (each product and
// difference rounded to F, no fused multiply-add):
//
//	v = Momentum·v − WeightDecay·LR·w − LR·g
//	w = w + v
//
//	w, g, v are (n)
func SGDUpdate[F Float](w, g, v []F, p device.SGDParams) {
	lr, mom, wd := F(p.LR), F(p.Momentum), F(p.WeightDecay)
	wdlr := F(wd * lr)
	for i := range w {
		mv := F(mom * v[i])
		dw := F(wdlr * w[i])
		lg := F(lr * g[i])
		v[i] = F(F(mv-dw) - lg)
		w[i] = F(w[i] + v[i])
	}
}

// SumTol is the abs coefficient, relative to Σ|terms|, for a float32 sum of
// n terms in any order: the worst-case (n+2)·ε, capped at 8·√(n+2)·ε for
// large n, where the rounding errors of a long sum add up like a random
// walk rather than all in one direction (ε = 2⁻²³). The device suite
// (device/devicetest) holds every kernel to it, and the OpenCL device's
// choice of convolution path per layer shape holds each path to it.
func SumTol(n int) float64 {
	const eps = 1.0 / (1 << 23)
	return math.Min(float64(n+2), 8*math.Sqrt(float64(n+2))) * eps
}

// rankedAbove reports whether class c, of logit v, ranks above the label,
// of logit zl: v greater, or equal with c lower; a NaN v ranks above, and
// with zl NaN every class does (the label itself too), so a NaN row is a
// miss at every k. Written as !(v < zl) so that NaN compares the same way
// in Go, C and OpenCL.
func rankedAbove[F Float](v, zl F, c, label int) bool {
	return !(v < zl) && !(v == zl && c >= label)
}

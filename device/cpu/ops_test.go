package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
)

// TestKeysAreBits checks the test that lets max pooling compare raw bits:
// true exactly when no float is negative (−0 included) or NaN.
func TestKeysAreBits(t *testing.T) {
	for _, c := range []struct {
		b    uint32
		want bool
	}{
		{0, true}, {1, true}, {0x3f800000, true}, {0x7f7fffff, true}, {0x7f800000, true}, // +0 … +Inf
		{0x7f800001, false}, {0x7fffffff, false}, // NaN
		{0x80000000, false}, {0xbf800000, false}, {0xff800000, false}, {0xffffffff, false}, // −0, negatives, −Inf, −NaN
	} {
		for _, n := range []int{1, 2, 7, 8} { // odd and even lengths, c.b at every position
			for at := 0; at < n; at++ {
				plane := make([]uint32, n)
				for i := range plane {
					plane[i] = 0x3f800000
				}
				plane[at] = c.b
				if got := keysAreBits(plane); got != c.want {
					t.Fatalf("keysAreBits with %#x at %d of %d = %v, want %v", c.b, at, n, got, c.want)
				}
			}
		}
	}
}

// TestMaxPoolNonNegative runs 3×3 pooling on planes of non-negative numbers
// with many ties (the raw-bits path), next to planes that the key path
// must take (±0, two NaNs, negatives), against device/ref, bit for bit,
// on both worker counts.
func TestMaxPoolNonNegative(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	shapes := []device.PoolShape{
		{N: 2, C: 4, H: 13, W: 13, Size: 3, Stride: 2},
		{N: 1, C: 4, H: 28, W: 28, Size: 3, Stride: 2},
		{N: 1, C: 4, H: 12, W: 10, Size: 3, Stride: 2},
		{N: 1, C: 4, H: 9, W: 9, Size: 3, Stride: 1},
	}
	for _, d := range devices(t) {
		for _, s := range shapes {
			HW, nx, ny := s.H*s.W, s.N*s.C*s.H*s.W, s.N*s.C*s.OH()*s.OW()
			X := randF32(rng, nx)
			for i, v := range X { // zeros and a few values: many ties
				X[i] = float32(math.Round(float64(max(v, 0) * 3)))
			}
			X[HW/2] = float32(math.Inf(1)) // plane 0: +Inf, still raw
			for i := HW; i < 2*HW; i++ {   // plane 1: ±0, the first zero wins
				X[i] = float32(math.Copysign(0, float64(rng.IntN(2)*2-1)))
			}
			X[2*HW+HW/3] = math.Float32frombits(0x7fc00000) // plane 2: two NaNs, the first wins
			X[2*HW+HW/3+1] = math.Float32frombits(0x7fc00001)
			for i := 3 * HW; i < 4*HW; i++ { // plane 3: negatives
				X[i] = -X[i] - 1
			}
			x, y, idx := d.up(X), d.up(make([]float32, ny)), d.upInt(make([]int32, ny))
			d.must(d.MaxPoolForward(x, y, idx, s))
			Y, IDX := make([]float32, ny), make([]int32, ny)
			ref.MaxPoolForward(X, Y, IDX, s)
			bitsEqual(t, "maxpool_forward vs ref", s, d.down(y, ny), Y)
			compareInt(t, "maxpool_forward idx", s, d.downInt(idx, ny), IDX)
		}
	}
}

// TestLRNTiles runs LRN on planes larger than lrnTile (so split into
// tiles), and with fewer channels than a window, against device/ref, and
// checks that both worker counts give the same bits.
func TestLRNTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	shapes := []device.LRNShape{
		{N: 2, C: 11, H: 37, W: 29, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2},
		{N: 1, C: 6, H: 45, W: 50, Size: 5, Alpha: 0.7, Beta: 0.75, K: 1},
		{N: 3, C: 2, H: 5, W: 7, Size: 5, Alpha: 0.5, Beta: 0.75, K: 2},
		{N: 1, C: 9, H: 33, W: 33, Size: 5, Alpha: 0.5, Beta: 0.6, K: 1},
	}
	for _, s := range shapes {
		n := s.N * s.C * s.H * s.W
		X, DY := randF32(rng, n), randF32(rng, n)
		for i := range X {
			X[i] *= 4
		}
		var first [3][]float32
		for k, d := range devices(t) {
			x, y, sc, dy, dx := d.up(X), d.up(make([]float32, n)), d.up(make([]float32, n)), d.up(DY), d.up(make([]float32, n))
			d.must(d.LRNForward(x, y, sc, s))
			d.must(d.LRNBackward(x, y, sc, dy, dx, s))
			got := [3][]float32{d.down(y, n), d.down(sc, n), d.down(dx, n)}
			Y, SC, DX := make([]float32, n), make([]float32, n), make([]float32, n)
			ref.LRNForward(X, Y, SC, s)
			ref.LRNBackward(X, Y, SC, DY, DX, s)
			compare(t, "lrn_forward scale", s, got[1], SC, 0, 0)
			compare(t, "lrn_forward", s, got[0], Y, 1e-6, 1e-6)
			compare(t, "lrn_backward", s, got[2], DX, 1e-6, 1e-5)
			if k == 0 {
				first = got
				continue
			}
			bitsEqual(t, "lrn_forward y, 2 vs 13 workers", s, first[0], got[0])
			bitsEqual(t, "lrn_forward scale, 2 vs 13 workers", s, first[1], got[1])
			bitsEqual(t, "lrn_backward, 2 vs 13 workers", s, first[2], got[2])
		}
	}
}

package data

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// greyPlanes is an h×w single-channel image whose pixels all differ.
func greyPlanes(h, w int) planes {
	p := planes{C: 1, H: h, W: w, Pix: make([]float32, h*w)}
	for i := range p.Pix {
		p.Pix[i] = float32(i)
	}
	return p
}

// crop is the reference for emit without normalisation: the h×w window at (y0, x0) of p,
// optionally mirrored, in pixel units.
func crop(p planes, y0, x0, h, w int, flip bool) []float32 {
	out := make([]float32, 0, p.C*h*w)
	for c := 0; c < p.C; c++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				sx := x0 + x
				if flip {
					sx = x0 + w - 1 - x
				}
				out = append(out, p.Pix[(c*p.H+y0+y)*p.W+sx])
			}
		}
	}
	return out
}

// unit is normalisation that leaves pixel/255.
var unit = []float32{0, 0, 0}
var one = []float32{1, 1, 1}

func scaled(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x / 255
	}
	return out
}

func TestResize(t *testing.T) {
	// Upscaling 2 -> 4 is bilinear with half-pixel centres: [0, 100] -> [0, 25, 75, 100].
	p := resize(planes{C: 1, H: 1, W: 2, Pix: []float32{0, 100}}, 1, 4)
	if !equalF(p.Pix, []float32{0, 25, 75, 100}) {
		t.Fatalf("upscale %v", p.Pix)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][4]int{{7, 5, 3, 2}, {5, 7, 11, 13}, {1, 1, 4, 3}, {64, 48, 7, 5}, {9, 9, 9, 9}} {
		h, w, oh, ow := sz[0], sz[1], sz[2], sz[3]
		c := planes{C: 2, H: h, W: w, Pix: make([]float32, 2*h*w)}
		for i := range c.Pix {
			c.Pix[i] = float32(i / (h * w) * 200) // constant per channel
		}
		q := resize(c, oh, ow)
		if q.H != oh || q.W != ow || len(q.Pix) != 2*oh*ow {
			t.Fatalf("%v: shape %dx%d", sz, q.H, q.W)
		}
		for i, v := range q.Pix {
			if want := float32(i / (oh * ow) * 200); abs32(v-want) > 1e-3 {
				t.Fatalf("%v: constant image changed at %d: %g, want %g", sz, i, v, want)
			}
		}
		// Weights are non-negative: the output stays within the input's range.
		n := planes{C: 1, H: h, W: w, Pix: make([]float32, h*w)}
		for i := range n.Pix {
			n.Pix[i] = float32(r.IntN(256))
		}
		for _, v := range resize(n, oh, ow).Pix {
			if v < -1e-3 || v > 255+1e-3 {
				t.Fatalf("%v: value %g out of range", sz, v)
			}
		}
	}
	if q := resizeShorter(greyPlanes(12, 16), 9); q.H != 9 || q.W != 12 {
		t.Fatalf("resizeShorter 16x12 -> %dx%d, want 12x9", q.W, q.H)
	}
	if q := resizeShorter(greyPlanes(300, 100), 50); q.H != 150 || q.W != 50 {
		t.Fatalf("resizeShorter 100x300 -> %dx%d, want 50x150", q.W, q.H)
	}
}

func TestEmit(t *testing.T) {
	p := greyPlanes(5, 6)
	dst := make([]float32, 3*4)
	emit(p, view{Y0: 1, X0: 2, Flip: true}, 3, 4, []float32{0.5}, []float32{2}, dst)
	ref := crop(p, 1, 2, 3, 4, true)
	for i := range dst {
		if want := (ref[i]/255 - 0.5) / 2; abs32(dst[i]-want) > 1e-6 {
			t.Fatalf("emit[%d] = %g, want %g", i, dst[i], want)
		}
	}
	if dst[0] != (p.Pix[1*6+5]/255-0.5)/2 {
		t.Fatalf("first pixel of a flipped crop is not the window's right edge")
	}
	// Padding outside the image reads as pixel 0.
	emit(p, view{Y0: -1, X0: -1}, 3, 4, []float32{0}, []float32{1}, dst)
	if dst[0] != 0 || dst[5] != 0 || dst[11] != p.Pix[1*6+2]/255 {
		t.Fatalf("padded emit %v", dst)
	}
}

func TestTenCrop(t *testing.T) {
	p := greyPlanes(10, 12)
	o := Options{Channels: 1, Height: 6, Width: 6, Mean: unit[:1], Std: one[:1], Resize: 10, TenCrop: true}
	x := make([]float32, 10*36)
	if err := photoSample(p, o, 0, x); err != nil {
		t.Fatal(err)
	}
	corners := [][2]int{{0, 0}, {0, 6}, {4, 0}, {4, 6}, {2, 3}}
	for k := 0; k < 10; k++ {
		c := corners[k%5]
		want := scaled(crop(p, c[0], c[1], 6, 6, k >= 5))
		if !equalF(x[k*36:(k+1)*36], want) {
			t.Fatalf("view %d: %v, want %v", k, x[k*36:(k+1)*36], want)
		}
	}
	o.TenCrop = false
	if err := photoSample(p, o, 0, x[:36]); err != nil || !equalF(x[:36], scaled(crop(p, 2, 3, 6, 6, false))) {
		t.Fatalf("centre crop %v, %v", x[:36], err)
	}
	// With a resize, the one centre view (which resizes only its window)
	// is the ten views' centre (which resize the whole image).
	big := greyPlanes(37, 50)
	o = Options{Channels: 1, Height: 16, Width: 16, Mean: unit[:1], Std: one[:1], Resize: 20, TenCrop: true}
	ten := make([]float32, 10*256)
	if err := photoSample(big, o, 0, ten); err != nil {
		t.Fatal(err)
	}
	o.TenCrop = false
	single := make([]float32, 256)
	if err := photoSample(big, o, 0, single); err != nil || !equalF(single, ten[4*256:5*256]) {
		t.Fatalf("resized centre crop %v, %v; the ten views' centre is %v", single, err, ten[4*256:5*256])
	}
}

// TestAugmentCrop: every augmented grey sample is exactly one random window of the resized
// image, mirrored or not, and both flips and several offsets occur.
func TestAugmentCrop(t *testing.T) {
	p := greyPlanes(12, 16)
	o := Options{Channels: 1, Height: 8, Width: 8, Mean: unit[:1], Std: one[:1], Resize: 10, Augment: true}
	r := resizeShorter(p, 10) // 13x10
	x := make([]float32, 64)
	flips := map[bool]int{}
	offsets := map[[2]int]bool{}
	for key := uint64(0); key < 60; key++ {
		if err := photoSample(p, o, key, x); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, 64)
		if err := photoSample(p, o, key, y); err != nil || !equalF(x, y) {
			t.Fatalf("key %d: not a function of the key", key)
		}
		found := 0
		for y0 := 0; y0 <= r.H-8; y0++ {
			for x0 := 0; x0 <= r.W-8; x0++ {
				for _, f := range []bool{false, true} {
					if equalF(x, scaled(crop(r, y0, x0, 8, 8, f))) {
						found++
						flips[f]++
						offsets[[2]int{y0, x0}] = true
					}
				}
			}
		}
		if found != 1 {
			t.Fatalf("key %d: output matches %d windows, want 1", key, found)
		}
	}
	if flips[false] < 15 || flips[true] < 15 || len(offsets) < 6 {
		t.Fatalf("flips %v, %d offsets in 60 draws", flips, len(offsets))
	}
}

// TestLighting: with 3 channels the augmented sample is a window plus a constant per
// channel, distributed as AlexNet's PCA noise.
func TestLighting(t *testing.T) {
	p := planes{C: 3, H: 9, W: 9, Pix: make([]float32, 3*81)}
	for i := range p.Pix {
		p.Pix[i] = float32(i % 256)
	}
	o := Options{Channels: 3, Height: 9, Width: 9, Mean: unit, Std: one, Resize: 9, Augment: true}
	x := make([]float32, 3*81)
	if err := photoSample(p, o, 5, x); err != nil {
		t.Fatal(err)
	}
	var base []float32
	for _, f := range []bool{false, true} {
		if c := scaled(crop(p, 0, 0, 9, 9, f)); abs32(x[40]-c[40]-(x[0]-c[0])) < 1e-5 && abs32(x[1]-c[1]-(x[0]-c[0])) < 1e-5 {
			base = c
		}
	}
	if base == nil {
		t.Fatal("augmented sample is not a window plus a constant")
	}
	for c := 0; c < 3; c++ {
		d := x[c*81] - base[c*81]
		for i := 0; i < 81; i++ {
			if abs32(x[c*81+i]-base[c*81+i]-d) > 1e-5 {
				t.Fatalf("channel %d: offset not constant at %d", c, i)
			}
		}
	}
	// The offset's spread: std of channel c is 0.1·sqrt(sum_i (eigvec[c][i]·eigval[i])²).
	r := rand.New(rand.NewPCG(1, 1))
	var sum, sq [3]float64
	const n = 20000
	for k := 0; k < n; k++ {
		off := pcaLighting(r)
		for c := 0; c < 3; c++ {
			sum[c] += float64(off[c])
			sq[c] += float64(off[c]) * float64(off[c])
		}
	}
	for c := 0; c < 3; c++ {
		var want float64
		for i := 0; i < 3; i++ {
			v := float64(pcaEigvec[c][i] * pcaEigval[i])
			want += v * v
		}
		want = 0.1 * math.Sqrt(want)
		got := math.Sqrt(sq[c]/n - (sum[c]/n)*(sum[c]/n))
		if math.Abs(got-want) > 0.05*want || math.Abs(sum[c]/n) > 0.05*want {
			t.Fatalf("channel %d: offset std %g mean %g, want std %g mean 0", c, got, sum[c]/n, want)
		}
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in, out, err string
	}{
		{"mnist", "mnist", ""},
		{"MNIST:/d", "mnist:/d", ""},
		{"cifar10:c:/x", "cifar10:c:/x", ""},
		{"folder:imgs", "folder:imgs", ""},
		{"folder", "", `data: dataset "folder" needs a directory: write folder:DIR`},
		{"mnist:", "", `data: dataset "mnist:": empty directory after ':'`},
		{"imagenet:/x", "", `data: unknown dataset "imagenet:/x": want mnist, mnist:DIR, cifar10:DIR or folder:DIR`},
	} {
		s, err := ParseSpec(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseSpec(%q): %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || s.String() != tc.out {
			t.Errorf("ParseSpec(%q) = %v, %v; want %s", tc.in, s, err, tc.out)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Channels: 2}, "mnist: 2 channels: the model must take 1 or 3"},
		{Options{Mean: []float32{1, 2}}, "mnist: 2 mean values for 1 channel: give 1"},
		{Options{Std: []float32{0}}, "mnist: std[0] = 0: every std must be > 0"},
		{Options{Height: -3}, "mnist: input -3x-3: height and width must be in 1..4096"},
		{Options{Augment: true, TenCrop: true}, "mnist: TenCrop is for evaluation; it cannot be combined with Augment"},
	} {
		if _, err := Open(Spec{Kind: MNIST}, "test", tc.o); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if _, err := Open(Spec{Kind: MNIST}, "validation", Options{}); err == nil || err.Error() != `data: unknown split "validation": want train or test` {
		t.Errorf("split: %v", err)
	}
	o := DefaultOptions(Spec{Kind: Folder})
	if o.Resize != 256 || o.Height != 227 || o.Channels != 3 {
		t.Errorf("folder defaults %+v", o)
	}
}

// TestResizeWindow: every window resizeWindow computes is, bit for bit,
// that window of the whole resize, down- and upscaling.
func TestResizeWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][4]int{{375, 500, 256, 341}, {31, 17, 12, 9}, {12, 9, 31, 17}, {8, 8, 8, 5}, {1, 3, 4, 6}} {
		h, w, oh, ow := sz[0], sz[1], sz[2], sz[3]
		p := planes{C: 3, H: h, W: w, Pix: make([]float32, 3*h*w)}
		for i := range p.Pix {
			p.Pix[i] = float32(r.IntN(256))
		}
		whole := resizeWindow(p, oh, ow, 0, 0, oh, ow)
		for range 20 {
			wh, ww := 1+r.IntN(oh), 1+r.IntN(ow)
			y0, x0 := r.IntN(oh-wh+1), r.IntN(ow-ww+1)
			win := resizeWindow(p, oh, ow, y0, x0, wh, ww)
			for c := 0; c < 3; c++ {
				for y := 0; y < wh; y++ {
					for x := 0; x < ww; x++ {
						got, want := win.Pix[(c*wh+y)*ww+x], whole.Pix[(c*oh+y0+y)*ow+x0+x]
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("%v, window %dx%d at (%d, %d): [%d][%d][%d] = %v, the whole resize has %v", sz, wh, ww, y0, x0, c, y, x, got, want)
						}
					}
				}
			}
		}
	}
}

// TestToPlanesYCbCr: the row-wise YCbCr conversion equals the per-pixel
// one (YOffset, COffset, YCbCrToRGB) for every subsampling, for a
// sub-image whose bounds do not start at 0, in 3 channels and in grey.
func TestToPlanesYCbCr(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(image.Rect(1, 3, 24, 18), ratio)
		for _, b := range [][]uint8{m.Y, m.Cb, m.Cr} {
			for i := range b {
				b[i] = uint8(r.IntN(256))
			}
		}
		sub := m.SubImage(image.Rect(4, 6, 21, 17)).(*image.YCbCr)
		for _, img := range []*image.YCbCr{m, sub} {
			b := img.Bounds()
			w, h := b.Dx(), b.Dy()
			for _, c := range []int{3, 1} {
				p := toPlanes(img, c)
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						yi, ci := img.YOffset(b.Min.X+x, b.Min.Y+y), img.COffset(b.Min.X+x, b.Min.Y+y)
						R, G, B := color.YCbCrToRGB(img.Y[yi], img.Cb[ci], img.Cr[ci])
						want := []float32{float32(R), float32(G), float32(B)}
						if c == 1 {
							want = []float32{0.299*float32(R) + 0.587*float32(G) + 0.114*float32(B)}
						}
						for k, v := range want {
							if got := p.Pix[(k*h+y)*w+x]; got != v {
								t.Fatalf("%v, bounds %v, %d channels: (%d, %d) channel %d = %v, want %v", ratio, b, c, x, y, k, got, v)
							}
						}
					}
				}
			}
		}
	}
}

// resizeShorter resizes p so that its shorter side is s, keeping the
// aspect ratio: the whole image photoSample resizes only a window of.
func resizeShorter(p planes, s int) planes {
	h, w := shorterSize(p.H, p.W, s)
	return resize(p, h, w)
}

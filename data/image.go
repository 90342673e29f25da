package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register JPEG with image.Decode
	_ "image/png"  // register PNG with image.Decode
	"math"
	"math/rand/v2"
)

// maxPixels bounds the size of a decoded image (64 Mpixel, 768 MiB as float32 RGB), so a
// hostile header cannot make us allocate without limit.
const maxPixels = 1 << 26

// planes is a decoded image in planar layout with values in [0, 255].
type planes struct {
	C, H, W int
	Pix     []float32 // Pix is (C, H, W)
}

// decodeImage decodes a JPEG or PNG held in b into c channels (1 or 3).
func decodeImage(b []byte, c int) (planes, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if errors.Is(err, image.ErrFormat) {
		return planes{}, fmt.Errorf("%w: not a JPEG or PNG, the formats alexcl reads; convert it", err)
	}
	if err != nil {
		return planes{}, err
	}
	if err := checkDims(cfg.Width, cfg.Height); err != nil {
		return planes{}, err
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return planes{}, err
	}
	return toPlanes(img, c), nil
}

// checkDims rejects empty and oversized images.
func checkDims(w, h int) error {
	if w < 1 || h < 1 {
		return fmt.Errorf("image is %dx%d", w, h)
	}
	if int64(w)*int64(h) > maxPixels {
		return fmt.Errorf("image is %dx%d, over the limit of %d pixels", w, h, maxPixels)
	}
	return nil
}

// toPlanes converts any image to c planes (1 or 3). Colour images lose their alpha and keep
// their straight (non-premultiplied) colour, as PIL's convert("RGB") does; CMYK goes
// through image/color's CMYK-to-RGB; RGB goes to grey by BT.601 luma.
func toPlanes(img image.Image, c int) planes {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	p := planes{C: c, H: h, W: w, Pix: make([]float32, c*h*w)}
	hw := h * w
	put := func(y, x int, R, G, B uint8) {
		i := y*w + x
		if c == 1 {
			p.Pix[i] = 0.299*float32(R) + 0.587*float32(G) + 0.114*float32(B)
			return
		}
		p.Pix[i], p.Pix[hw+i], p.Pix[2*hw+i] = float32(R), float32(G), float32(B)
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				for k := 0; k < c; k++ {
					p.Pix[k*hw+y*w+x] = float32(v)
				}
			}
		}
	case *image.YCbCr: // JPEG: most photos
		// COffset is a row part plus a column part, whatever the
		// subsampling: the column parts once, then a row at a time.
		col := make([]int, w)
		c0 := m.COffset(r.Min.X, r.Min.Y)
		for x := range col {
			col[x] = m.COffset(r.Min.X+x, r.Min.Y) - c0
		}
		for y := 0; y < h; y++ {
			yrow := m.Y[m.YOffset(r.Min.X, r.Min.Y+y):][:w]
			crow := m.COffset(r.Min.X, r.Min.Y+y)
			out := p.Pix[y*w : (y+1)*w]
			for x, yy := range yrow {
				ci := crow + col[x]
				R, G, B := color.YCbCrToRGB(yy, m.Cb[ci], m.Cr[ci])
				if c == 1 {
					out[x] = 0.299*float32(R) + 0.587*float32(G) + 0.114*float32(B)
					continue
				}
				out[x], p.Pix[hw+y*w+x], p.Pix[2*hw+y*w+x] = float32(R), float32(G), float32(B)
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				R, G, B := color.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
				put(y, x, R, G, B)
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				put(y, x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				n := color.NRGBAModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
				put(y, x, n.R, n.G, n.B)
			}
		}
	}
	return p
}

// convertChannels turns planes of 1 or 3 channels into c channels.
func convertChannels(p planes, c int) planes {
	if p.C == c {
		return p
	}
	hw := p.H * p.W
	q := planes{C: c, H: p.H, W: p.W, Pix: make([]float32, c*hw)}
	if p.C == 1 { // grey -> RGB
		for k := 0; k < c; k++ {
			copy(q.Pix[k*hw:(k+1)*hw], p.Pix)
		}
		return q
	}
	for i := 0; i < hw; i++ { // RGB -> grey
		q.Pix[i] = 0.299*p.Pix[i] + 0.587*p.Pix[hw+i] + 0.114*p.Pix[2*hw+i]
	}
	return q
}

// resizeWeights returns, for each of the out output positions, the first input index and
// the normalised weights of a triangle filter from in positions; when shrinking, the
// filter's support grows by in/out so every input pixel contributes (antialiasing).
func resizeWeights(in, out int) (first []int, weights [][]float32) {
	scale := float64(in) / float64(out)
	support := math.Max(scale, 1)
	first = make([]int, out)
	weights = make([][]float32, out)
	for o := 0; o < out; o++ {
		center := (float64(o) + 0.5) * scale
		lo := max(int(math.Floor(center-support)), 0)
		hi := min(int(math.Ceil(center+support)), in)
		ws := make([]float32, 0, hi-lo)
		var sum float64
		for i := lo; i < hi; i++ {
			t := 1 - math.Abs((float64(i)+0.5-center)/support)
			if t < 0 {
				t = 0
			}
			ws = append(ws, float32(t))
			sum += t
		}
		if sum == 0 { // cannot happen for in >= 1, but never divide by zero
			lo, ws, sum = min(int(center), in-1), []float32{1}, 1
		}
		for k := range ws {
			ws[k] = float32(float64(ws[k]) / sum)
		}
		first[o], weights[o] = lo, ws
	}
	return first, weights
}

// resize returns p resized to oh×ow by separable triangle filtering.
func resize(p planes, oh, ow int) planes {
	if p.H == oh && p.W == ow {
		return p
	}
	return resizeWindow(p, oh, ow, 0, 0, oh, ow)
}

// resizeWindow returns the h×w window at (y0, x0) of p resized to oh×ow,
// computing only that window: each of its values is the same sum, in the
// same order, as resize's (the window of resize(p, oh, ow), bit for bit),
// and only the input rows the window reads are filtered horizontally. A
// random 227×227 crop of a 500×375 photo resized to 341×256 filters 59%
// of what the whole resize would.
func resizeWindow(p planes, oh, ow, y0, x0, h, w int) planes {
	xf, xw := resizeWeights(p.W, ow)
	yf, yw := resizeWeights(p.H, oh)
	xf, xw = xf[x0:x0+w], xw[x0:x0+w]
	yf, yw = yf[y0:y0+h], yw[y0:y0+h]
	// The input rows the window's output rows read: [ylo, yhi).
	ylo, yhi := p.H, 0
	for oy := range yf {
		ylo, yhi = min(ylo, yf[oy]), max(yhi, yf[oy]+len(yw[oy]))
	}
	rows := max(yhi-ylo, 0)
	// horizontal pass: (C, rows, W) -> (C, rows, w)
	tmp := make([]float32, p.C*rows*w)
	for c := 0; c < p.C; c++ {
		for y := 0; y < rows; y++ {
			src := p.Pix[(c*p.H+ylo+y)*p.W:]
			dst := tmp[(c*rows+y)*w:]
			for ox := 0; ox < w; ox++ {
				var s float32
				for k, wt := range xw[ox] {
					s += wt * src[xf[ox]+k]
				}
				dst[ox] = s
			}
		}
	}
	// vertical pass: (C, rows, w) -> (C, h, w)
	q := planes{C: p.C, H: h, W: w, Pix: make([]float32, p.C*h*w)}
	for c := 0; c < p.C; c++ {
		for oy := 0; oy < h; oy++ {
			dst := q.Pix[(c*h+oy)*w : (c*h+oy+1)*w]
			for k, wt := range yw[oy] {
				src := tmp[(c*rows+yf[oy]-ylo+k)*w:]
				for ox := range dst {
					dst[ox] += wt * src[ox]
				}
			}
		}
	}
	return q
}

// shorterSize returns the size of an h×w image resized so that its
// shorter side is s, keeping the aspect ratio.
func shorterSize(h, w, s int) (int, int) {
	if h <= w {
		return s, max(1, int(math.Round(float64(w)*float64(s)/float64(h))))
	}
	return max(1, int(math.Round(float64(h)*float64(s)/float64(w)))), s
}

// view describes one output image cut from source planes.
type view struct {
	Y0, X0 int        // top-left corner of the crop in the source; may lie outside (zero padding)
	Flip   bool       // mirror horizontally
	Light  [3]float32 // lighting offset per channel, in pixel/255 units
}

// emit writes the H×W view v of p into dst (C, H, W), normalised: (pix/255 + light - mean) / std.
// Source pixels outside p read as 0.
func emit(p planes, v view, h, w int, mean, std []float32, dst []float32) {
	for c := 0; c < p.C; c++ {
		inv := 1 / std[c]
		off := v.Light[c] - mean[c]
		for oy := 0; oy < h; oy++ {
			sy := v.Y0 + oy
			out := dst[(c*h+oy)*w : (c*h+oy+1)*w]
			if sy < 0 || sy >= p.H {
				for ox := range out {
					out[ox] = off * inv
				}
				continue
			}
			row := p.Pix[(c*p.H+sy)*p.W : (c*p.H+sy+1)*p.W]
			for ox := range out {
				sx := v.X0 + ox
				if v.Flip {
					sx = v.X0 + w - 1 - ox
				}
				var x float32
				if sx >= 0 && sx < p.W {
					x = row[sx] * (1.0 / 255)
				}
				out[ox] = (x + off) * inv
			}
		}
	}
}

// AlexNet's PCA colour augmentation: eigenvalues and eigenvectors (columns) of the RGB
// covariance of ImageNet pixels scaled to [0, 1].
var (
	pcaEigval = [3]float32{0.2175, 0.0188, 0.0045}
	pcaEigvec = [3][3]float32{
		{-0.5675, 0.7192, 0.4009},
		{-0.5808, -0.0045, -0.8140},
		{-0.5836, -0.6948, 0.4203},
	}
)

// pcaLighting draws alpha ~ N(0, 0.1)^3 and returns the RGB offset eigvec · (alpha ∘ eigval).
func pcaLighting(rng *rand.Rand) [3]float32 {
	var a [3]float32
	for i := range a {
		a[i] = float32(rng.NormFloat64() * 0.1)
	}
	var off [3]float32
	for c := 0; c < 3; c++ {
		for i := 0; i < 3; i++ {
			off[c] += pcaEigvec[c][i] * a[i] * pcaEigval[i]
		}
	}
	return off
}

// sampleRNG returns the random stream for one sample's augmentation.
func sampleRNG(key uint64) *rand.Rand {
	return rand.New(rand.NewPCG(key, 0x616c6578636c2d61)) // "alexcl-a"
}

// centreViews returns the views of a crop h×w from p for evaluation: the centre crop, or
// with tenCrop the 4 corners, the centre, then the same 5 mirrored.
func centreViews(p planes, h, w int, tenCrop bool) []view {
	cy, cx := (p.H-h)/2, (p.W-w)/2
	if !tenCrop {
		return []view{{Y0: cy, X0: cx}}
	}
	vs := []view{
		{Y0: 0, X0: 0}, {Y0: 0, X0: p.W - w}, {Y0: p.H - h, X0: 0}, {Y0: p.H - h, X0: p.W - w},
		{Y0: cy, X0: cx},
	}
	for i := 0; i < 5; i++ {
		v := vs[i]
		v.Flip = true
		vs = append(vs, v)
	}
	return vs
}

// photoSample turns a decoded photo into the model's views: the folder pipeline shared by
// folder datasets and LoadImage. p already has o.Channels channels.
func photoSample(p planes, o Options, key uint64, dst []float32) error {
	h, w := o.Height, o.Width
	size := o.Channels * h * w
	if !o.Augment {
		if p.H != h || p.W != w {
			rh, rw := shorterSize(p.H, p.W, o.Resize)
			if rh < h || rw < w {
				return fmt.Errorf("resized to %dx%d (shorter side %d), smaller than the %dx%d input: raise Resize", rw, rh, o.Resize, w, h)
			}
			if !o.TenCrop && (rh != p.H || rw != p.W) {
				// One view, the centre crop: only it is resized.
				p = resizeWindow(p, rh, rw, (rh-h)/2, (rw-w)/2, h, w)
				emit(p, view{}, h, w, o.Mean, o.Std, dst[:size])
				return nil
			}
			p = resize(p, rh, rw)
		}
		for k, v := range centreViews(p, h, w, o.TenCrop) {
			emit(p, v, h, w, o.Mean, o.Std, dst[k*size:(k+1)*size])
		}
		return nil
	}
	rh, rw := shorterSize(p.H, p.W, o.Resize)
	if rh < h || rw < w {
		return fmt.Errorf("resized to %dx%d (shorter side %d), smaller than the %dx%d input: raise Resize", rw, rh, o.Resize, w, h)
	}
	rng := sampleRNG(key)
	v := view{Y0: rng.IntN(rh - h + 1), X0: rng.IntN(rw - w + 1), Flip: rng.IntN(2) == 1}
	if o.Channels == 3 {
		v.Light = pcaLighting(rng)
	}
	// Only the crop is resized: the window of the whole resized image.
	if rh != p.H || rw != p.W {
		p = resizeWindow(p, rh, rw, v.Y0, v.X0, h, w)
		v.Y0, v.X0 = 0, 0
	}
	emit(p, v, h, w, o.Mean, o.Std, dst[:size])
	return nil
}

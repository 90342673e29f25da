package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// gradient is a w×h opaque RGB image whose pixels all differ.
func gradient(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x * 13), uint8(y * 11), uint8(x*y + 7), 255})
		}
	}
	return m
}

func encodePNG(t testing.TB, m image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, m image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// goImage returns one of Go's own image test files, or "" where GOROOT has no sources.
func goImage(name string) string {
	p := filepath.Join(runtime.GOROOT(), "src", "image", "testdata", name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// makeFolder writes a small ImageNet-style tree with every kind of image file.
func makeFolder(t testing.TB) (dir string, cmyk bool) {
	dir = t.TempDir()
	w := func(rel string, b []byte) { writeFile(t, filepath.Join(dir, rel), b) }
	rgba := gradient(20, 16)
	for i := 0; i < 20*16; i += 3 {
		rgba.Pix[4*i+3] = uint8(i) // translucent pixels
	}
	grey := image.NewGray(image.Rect(0, 0, 16, 20))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i)
	}
	w("train/cat/a_rgb.png", encodePNG(t, gradient(20, 16)))
	w("train/cat/b_grey.jpg", encodeJPEG(t, grey))
	w("train/cat/c_rgba.png", encodePNG(t, rgba))
	w("train/cat/d_zero.jpg", nil)
	w("train/cat/e_bad.png", []byte("this is not a PNG"))
	w("train/cat/notes.txt", []byte("ignored"))
	w("train/cat/.hidden.png", []byte("ignored"))
	w("train/dog/x.JPEG", encodeJPEG(t, gradient(30, 24)))
	w("train/dog/sub/y.png", encodePNG(t, grey))
	w("train/.git/z.png", []byte("ignored"))
	if p := goImage("video-001.cmyk.jpeg"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		w("train/dog/cmyk.jpeg", b)
		cmyk = true
	}
	w("val/dog/v.png", encodePNG(t, gradient(8, 8)))
	return dir, cmyk
}

func TestFolder(t *testing.T) {
	dir, cmyk := makeFolder(t)
	spec, err := ParseSpec("folder:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []int{1, 3} {
		ds, err := Open(spec, "train", Options{Channels: c, Height: 8, Resize: 12, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		// cat: a_rgb, b_grey, c_rgba; dog: cmyk, sub/y, x (sorted paths)
		wantLen, wantLabels := 6, []int32{0, 0, 0, 1, 1, 1}
		if !cmyk {
			wantLen, wantLabels = 5, []int32{0, 0, 0, 1, 1}
		}
		if ds.Len() != wantLen || ds.Skipped() != 2 || ds.Classes() != 2 || strings.Join(ds.ClassNames(), ",") != "cat,dog" {
			t.Fatalf("Len %d Skipped %d Classes %d names %v", ds.Len(), ds.Skipped(), ds.Classes(), ds.ClassNames())
		}
		x := make([]float32, c*8*8)
		for i := 0; i < ds.Len(); i++ {
			y, err := ds.Sample(i, 0, x)
			if err != nil || y != wantLabels[i] {
				t.Fatalf("%d channels: Sample(%d) = %d, %v", c, i, y, err)
			}
		}
		if ds.Skipped() != 2 {
			t.Fatalf("Skipped %d after sampling", ds.Skipped())
		}
	}
	val, err := Open(spec, "test", Options{Height: 8})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*8*8)
	if val.Len() != 1 || val.Classes() != 2 {
		t.Fatalf("val Len %d Classes %d", val.Len(), val.Classes())
	}
	if y, err := val.Sample(0, 0, x); err != nil || y != 1 {
		t.Fatalf("val Sample = %d, %v", y, err)
	}
	// An 8x8 image into an 8x8 model is used as is.
	g := gradient(8, 8)
	for c := 0; c < 3; c++ {
		for i := 0; i < 64; i++ {
			want := (float32(g.Pix[4*i+c])/255 - ImageNetMean[c]) / ImageNetStd[c]
			if abs32(x[c*64+i]-want) > 1e-5 {
				t.Fatalf("as-is pixel %d channel %d: %g, want %g", i, c, x[c*64+i], want)
			}
		}
	}

	_, err = Open(spec, "train", Options{Strict: true})
	if err == nil || !strings.Contains(err.Error(), "d_zero.jpg: zero-byte file") || !strings.Contains(err.Error(), "--strict") {
		t.Fatalf("Strict: %v", err)
	}
	os.Remove(filepath.Join(dir, "train/cat/d_zero.jpg"))
	_, err = Open(spec, "train", Options{Strict: true})
	if err == nil || !strings.Contains(err.Error(), "e_bad.png: not a readable JPEG or PNG: image: unknown format") {
		t.Fatalf("Strict: %v", err)
	}
}

func TestFolderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, split string
		edit        func(dir string)
		want        string
	}{
		{"empty class", "train", func(d string) { os.MkdirAll(filepath.Join(d, "train/emu"), 0o755) }, "train/emu has no images (.jpg, .jpeg, .png)"},
		{"all corrupt", "train", func(d string) { writeFile(t, filepath.Join(d, "train/emu/a.jpg"), nil) }, "train/emu has no readable images (1 corrupt, empty or unsupported files skipped)"},
		{"val class", "test", func(d string) { writeFile(t, filepath.Join(d, "val/emu/a.png"), encodePNG(t, gradient(4, 4))) }, `class "emu" of ` + "%DIR%/val is not a class of %DIR%/train"},
		{"no val", "val", func(d string) { os.RemoveAll(filepath.Join(d, "val")) }, "/val: no such file or directory"},
		{"no train", "train", func(d string) { os.RemoveAll(filepath.Join(d, "train")) }, "/train: no such file or directory (want"},
		{"resize", "train", func(string) {}, "Resize 3 is smaller than the 4x4 input: raise Resize to at least 4"},
		{"empty val", "val", func(d string) { os.RemoveAll(filepath.Join(d, "val/dog")) }, "no class folders in %DIR%/val"},
		{"only gifs", "train", func(d string) { writeFile(t, filepath.Join(d, "train/emu/a.gif"), []byte("GIF89a")) }, "train/emu has no readable images (1 corrupt, empty or unsupported files skipped)"},
		{"only text", "train", func(d string) { writeFile(t, filepath.Join(d, "train/emu/notes.txt"), []byte("hi")) }, "train/emu has no images (.jpg, .jpeg, .png): add some or remove the folder"},
	} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "train/cat/a.png"), encodePNG(t, gradient(4, 4)))
		writeFile(t, filepath.Join(dir, "val/dog/a.png"), encodePNG(t, gradient(4, 4)))
		os.MkdirAll(filepath.Join(dir, "train/dog"), 0o755)
		writeFile(t, filepath.Join(dir, "train/dog/b.png"), encodePNG(t, gradient(4, 4)))
		tc.edit(dir)
		o := Options{Height: 4}
		if tc.name == "resize" {
			o.Resize = 3
		}
		_, err := Open(Spec{Kind: Folder, Dir: dir}, tc.split, o)
		want := strings.ReplaceAll(tc.want, "%DIR%", dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", tc.name, err, want)
		}
	}
}

// TestFolderLateCorrupt: an image whose header is fine but whose body is cut short.
func TestFolderLateCorrupt(t *testing.T) {
	dir := t.TempDir()
	noise := image.NewRGBA(image.Rect(0, 0, 64, 64))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(r.IntN(256))
	}
	b := encodePNG(t, noise)
	writeFile(t, filepath.Join(dir, "train/a/cut.png"), b[:len(b)/2])
	writeFile(t, filepath.Join(dir, "train/b/ok.png"), b)
	spec := Spec{Kind: Folder, Dir: dir}
	ds, err := Open(spec, "train", Options{Height: 32})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*32*32)
	for k := 0; k < 2; k++ {
		x[0] = 1
		y, err := ds.Sample(0, 0, x)
		if err != nil || y != 0 || x[0] != 0 || ds.Skipped() != 1 {
			t.Fatalf("corrupt sample: %d, %v, x[0] %g, Skipped %d", y, err, x[0], ds.Skipped())
		}
	}
	strict, err := Open(spec, "train", Options{Height: 32, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Sample(0, 0, x); err == nil || !strings.Contains(err.Error(), "cut.png") {
		t.Fatalf("Strict corrupt sample: %v", err)
	}
	l, err := NewLoader(strict, 2, false, false, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Next(); err == nil || !strings.Contains(err.Error(), "epoch 0 batch 0 sample 0: "+filepath.Join(dir, "train/a/cut.png")) {
		t.Fatalf("loader: %v", err)
	}
}

func TestCMYK(t *testing.T) {
	m := image.NewCMYK(image.Rect(0, 0, 2, 1))
	m.Pix = []uint8{0, 0, 0, 0, 255, 0, 0, 0} // white, cyan
	p := toPlanes(m, 3)
	if want := []float32{255, 0, 255, 255, 255, 255}; !equalF(p.Pix, want) {
		t.Fatalf("CMYK planes %v, want %v", p.Pix, want)
	}
	jp, pp := goImage("video-001.cmyk.jpeg"), goImage("video-001.cmyk.png")
	if jp == "" || pp == "" {
		t.Skip("no CMYK JPEG in GOROOT")
	}
	jb, _ := os.ReadFile(jp)
	pb, _ := os.ReadFile(pp)
	a, err := decodeImage(jb, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeImage(pb, 3)
	if err != nil {
		t.Fatal(err)
	}
	if a.H != b.H || a.W != b.W {
		t.Fatalf("sizes %dx%d and %dx%d", a.W, a.H, b.W, b.H)
	}
	var diff float64
	for i := range a.Pix {
		diff += float64(abs32(a.Pix[i] - b.Pix[i]))
	}
	if diff /= float64(len(a.Pix)); diff > 4 {
		t.Fatalf("CMYK JPEG differs from its PNG by %.2f per channel", diff)
	}
}

func equalF(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if abs32(a[i]-b[i]) > 1e-4 {
			return false
		}
	}
	return true
}

func TestLoadImage(t *testing.T) {
	dir := t.TempDir()
	photo := filepath.Join(dir, "photo.jpg")
	writeFile(t, photo, encodeJPEG(t, gradient(300, 200)))
	x, err := LoadImage(photo, Options{})
	if err != nil || len(x) != 3*227*227 {
		t.Fatalf("LoadImage: %d floats, %v", len(x), err)
	}
	x10, err := LoadImage(photo, Options{TenCrop: true})
	if err != nil || len(x10) != 10*3*227*227 {
		t.Fatalf("LoadImage TenCrop: %d floats, %v", len(x10), err)
	}
	if !equalF(x, x10[4*len(x):5*len(x)]) {
		t.Fatal("view 4 of TenCrop is not the centre crop")
	}
	x, err = LoadImage(photo, Options{Channels: 1, Height: 28, Mean: MNISTMean, Std: MNISTStd})
	if err != nil || len(x) != 28*28 {
		t.Fatalf("LoadImage grey: %d floats, %v", len(x), err)
	}
	writeFile(t, filepath.Join(dir, "zero.png"), nil)
	if _, err := LoadImage(filepath.Join(dir, "zero.png"), Options{}); err == nil || !strings.Contains(err.Error(), "zero.png: zero-byte file") {
		t.Fatalf("zero-byte: %v", err)
	}
	writeFile(t, filepath.Join(dir, "bad.png"), []byte("nope"))
	if _, err := LoadImage(filepath.Join(dir, "bad.png"), Options{}); err == nil || !strings.Contains(err.Error(), "bad.png: image: unknown format") {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := LoadImage(photo, Options{Height: 300, Resize: 256}); err == nil || !strings.Contains(err.Error(), "smaller than the 300x300 input") {
		t.Fatalf("too small: %v", err)
	}
}

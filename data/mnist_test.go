package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeIDX builds an IDX file with the given magic, sizes and data.
func makeIDX(magic uint32, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestEmbeddedMNIST(t *testing.T) {
	for _, tc := range []struct {
		split string
		n     int
	}{{"train", 60000}, {"test", 10000}} {
		ds, err := Open(Spec{Kind: MNIST}, tc.split, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != tc.n || ds.Classes() != 10 || ds.Views() != 1 {
			t.Fatalf("%s: Len %d Classes %d Views %d, want %d 10 1", tc.split, ds.Len(), ds.Classes(), ds.Views(), tc.n)
		}
		raw := ds.(*mnistDataset).raw
		if raw.rows != 28 || raw.w != 28 {
			t.Fatalf("%s: images %dx%d", tc.split, raw.rows, raw.w)
		}
		var count [10]int
		for _, l := range raw.labels {
			count[l]++
		}
		for c, k := range count { // every digit is 8%..12% of each split
			if k < tc.n*8/100 || k > tc.n*12/100 {
				t.Errorf("%s: digit %d appears %d times of %d", tc.split, c, k, tc.n)
			}
		}
		if tc.split == "train" {
			if raw.labels[0] != 5 {
				t.Errorf("first train label %d, want 5", raw.labels[0])
			}
			x := make([]float32, 28*28)
			y, err := ds.Sample(0, 0, x)
			if err != nil || y != 5 {
				t.Fatalf("Sample(0) = %d, %v", y, err)
			}
			lo, hi := x[0], x[0]
			for _, v := range x {
				lo, hi = min(lo, v), max(hi, v)
			}
			// black background -> -mean/std; white ink -> (1-mean)/std
			if want := -0.1307 / 0.3081; abs32(lo-float32(want)) > 1e-5 {
				t.Errorf("min %g, want %g", lo, want)
			}
			if want := (1 - 0.1307) / 0.3081; abs32(hi-float32(want)) > 1e-5 {
				t.Errorf("max %g, want %g", hi, want)
			}
		}
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func TestMNISTResizeAndChannels(t *testing.T) {
	ds, err := Open(Spec{Kind: MNIST}, "test", Options{Channels: 3, Height: 32})
	if err != nil {
		t.Fatal(err)
	}
	o := ds.Options()
	if o.Width != 32 || len(o.Mean) != 3 || o.Mean[2] != 0.1307 {
		t.Fatalf("options %+v", o)
	}
	x := make([]float32, 3*32*32)
	if _, err := ds.Sample(3, 0, x); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 32*32; i++ {
		if x[i] != x[1024+i] || x[i] != x[2048+i] {
			t.Fatalf("pixel %d differs between channels", i)
		}
	}
}

func TestIDXErrors(t *testing.T) {
	img := func(n uint32) []byte { return makeIDX(0x803, []uint32{n, 2, 2}, make([]byte, 4*n)) }
	lab := func(ls ...byte) []byte { return makeIDX(0x801, []uint32{uint32(len(ls))}, ls) }
	for _, tc := range []struct {
		name        string
		images, lbl []byte
		want        string
	}{
		{"ok", img(3), lab(1, 2, 3), ""},
		{"ok gzip", gz(img(3)), gz(lab(1, 2, 3)), ""},
		{"bad magic", makeIDX(0x801, []uint32{3, 2, 2}, make([]byte, 12)), lab(1, 2, 3), "imgs: bad magic 0x00000801: want 0x00000803"},
		{"bad magic labels", img(3), makeIDX(0x08030000, nil, nil), "labs: bad magic 0x08030000"},
		{"truncated data", img(3)[:20], lab(1, 2, 3), "imgs: truncated: header says [3 2 2] = 12 bytes of data, file has 4"},
		{"truncated gzip", gz(img(3))[:30], lab(1, 2, 3), "imgs: reading data: unexpected EOF"},
		{"truncated header", img(3)[:6], lab(1, 2, 3), "imgs: truncated header: missing size of dimension 0"},
		{"empty", nil, lab(1), "imgs: truncated: no IDX magic number"},
		{"trailing", append(img(3), 0), lab(1, 2, 3), "imgs: trailing bytes"},
		{"mismatch", img(3), lab(1, 2), "imgs has 3 images but labs has 2 labels"},
		{"label range", img(3), lab(1, 10, 3), "labs: label 10 of item 1 is out of range 0..9"},
		{"absurd", makeIDX(0x803, []uint32{5, 0xffff, 2}, nil), lab(1), "imgs: dimension 1 has size 65535, over the limit of 4096"},
		{"absurd total", makeIDX(0x803, []uint32{1000, 4096, 4096}, nil), lab(1), "imgs: header announces more than 1073741824 bytes of data (size 4096 in dimension 2)"},
		{"zero", makeIDX(0x803, []uint32{0, 2, 2}, nil), lab(), "imgs: dimension 0 has size 0"},
	} {
		_, err := parseMNIST(tc.images, "imgs", tc.lbl, "labs")
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestMNISTDir(t *testing.T) {
	dir := t.TempDir()
	ims := make([]byte, 3*28*28)
	ims[28*28+5] = 255
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("train-images-idx3-ubyte.gz", gz(makeIDX(0x803, []uint32{3, 28, 28}, ims)))
	write("train-labels-idx1-ubyte", makeIDX(0x801, []uint32{3}, []byte{7, 8, 9}))
	write("t10k-images.idx3-ubyte", makeIDX(0x803, []uint32{2, 28, 28}, ims[:2*784]))
	write("t10k-labels.idx1-ubyte", makeIDX(0x801, []uint32{2}, []byte{7, 11}))

	spec, err := ParseSpec("mnist:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Open(spec, "train", Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 784)
	y, err := ds.Sample(1, 0, x)
	if err != nil || y != 8 || x[5] <= x[4] {
		t.Fatalf("Sample(1) = %d, %v, x[4:6] = %v", y, err, x[4:6])
	}
	_, err = Open(spec, "test", Options{})
	want := filepath.Join(dir, "t10k-labels.idx1-ubyte") + ": label 11 of item 1 is out of range 0..9"
	if err == nil || err.Error() != want {
		t.Fatalf("test split: %v, want %q", err, want)
	}
	os.Remove(filepath.Join(dir, "train-labels-idx1-ubyte"))
	if _, err = Open(spec, "train", Options{}); err == nil || !strings.Contains(err.Error(), "train-labels-idx1-ubyte.gz") {
		t.Fatalf("missing labels: %v", err)
	}
}

func FuzzIDX(f *testing.F) {
	f.Add(makeIDX(0x803, []uint32{2, 2, 2}, make([]byte, 8)))
	f.Add(makeIDX(0x801, []uint32{3}, []byte{1, 2, 3}))
	f.Add(gz(makeIDX(0x803, []uint32{1, 3, 1}, []byte{1, 2, 3})))
	f.Add(makeIDX(0x803, []uint32{0xffffffff, 0xffff, 0xffff}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, nd := range []int{1, 3} {
			m, err := readIDX(bytes.NewReader(b), "fuzz", nd, 4096)
			if err != nil {
				continue
			}
			n := 1
			for _, d := range m.Dims {
				n *= d
			}
			if len(m.Dims) != nd || n != len(m.Data) {
				t.Fatalf("dims %v but %d bytes", m.Dims, len(m.Data))
			}
		}
		// Split the input into an images and a labels file; parseMNIST must not panic.
		h := len(b) / 2
		if raw, err := parseMNIST(b[:h], "i", b[h:], "l"); err == nil {
			if raw.n*raw.rows*raw.w != len(raw.images) || raw.n != len(raw.labels) {
				t.Fatalf("inconsistent %d %d %d", raw.n, len(raw.images), len(raw.labels))
			}
		}
	})
}

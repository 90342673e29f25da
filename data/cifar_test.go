package data

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cifarRecords makes n records; record i has label (i+first)%10 and every pixel of channel
// c equal to (i+first+50c)%256.
func cifarRecords(first, n int) []byte {
	var b bytes.Buffer
	for i := first; i < first+n; i++ {
		b.WriteByte(byte(i % 10))
		for c := 0; c < 3; c++ {
			b.Write(bytes.Repeat([]byte{byte(i + 50*c)}, 1024))
		}
	}
	return b.Bytes()
}

// makeCIFAR writes a small CIFAR-10 tree: 5 train files of 3 records, a test file of 4.
func makeCIFAR(t testing.TB) string {
	dir := t.TempDir()
	for k := 1; k <= 5; k++ {
		writeFile(t, filepath.Join(dir, "data_batch_"+string(rune('0'+k))+".bin"), cifarRecords(3*(k-1), 3))
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(100, 4))
	return dir
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCIFAR(t *testing.T) {
	dir := makeCIFAR(t)
	spec, err := ParseSpec("cifar10:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Open(spec, "train", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 15 || ds.Classes() != 10 || ds.ClassNames()[9] != "truck" {
		t.Fatalf("Len %d Classes %d names %v", ds.Len(), ds.Classes(), ds.ClassNames())
	}
	x := make([]float32, 3*32*32)
	for i := 0; i < 15; i++ {
		y, err := ds.Sample(i, 0, x)
		if err != nil || y != int32(i%10) {
			t.Fatalf("Sample(%d) = %d, %v", i, y, err)
		}
		for c := 0; c < 3; c++ {
			want := (float32((i+50*c)%256)/255 - CIFAR10Mean[c]) / CIFAR10Std[c]
			if got := x[c*1024+517]; abs32(got-want) > 1e-5 {
				t.Fatalf("sample %d channel %d: %g, want %g", i, c, got, want)
			}
		}
	}
	test, err := Open(spec, "test", Options{Channels: 1, Height: 16})
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 4 {
		t.Fatalf("test Len %d", test.Len())
	}
	x = make([]float32, 16*16)
	if y, err := test.Sample(2, 0, x); err != nil || y != 2 {
		t.Fatalf("test Sample(2) = %d, %v", y, err)
	}
	luma := 0.299*102 + 0.587*152 + 0.114*202
	mean := 0.299*CIFAR10Mean[0] + 0.587*CIFAR10Mean[1] + 0.114*CIFAR10Mean[2]
	std := 0.299*CIFAR10Std[0] + 0.587*CIFAR10Std[1] + 0.114*CIFAR10Std[2]
	if want := (float32(luma)/255 - mean) / std; abs32(x[100]-want) > 1e-4 {
		t.Fatalf("grey resized pixel %g, want %g", x[100], want)
	}

	// Class names from batches.meta.txt.
	writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"))
	if ds, err = Open(spec, "test", Options{}); err != nil || ds.ClassNames()[9] != "j" {
		t.Fatalf("meta: %v %v", err, ds)
	}
	writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\n"))
	if _, err = Open(spec, "test", Options{}); err == nil || !strings.Contains(err.Error(), "batches.meta.txt: 2 class names, want 10") {
		t.Fatalf("short meta: %v", err)
	}
}

func TestCIFARAugment(t *testing.T) {
	dir := makeCIFAR(t)
	ds, err := Open(Spec{Kind: CIFAR10, Dir: dir}, "train", Options{Augment: true, Mean: []float32{0}, Std: []float32{1}})
	if err != nil {
		t.Fatal(err)
	}
	// Each sample is constant per channel, so an augmented view is that constant with a band
	// of zero padding at most 4 wide on each side.
	x := make([]float32, 3*32*32)
	var padded int
	for key := uint64(0); key < 20; key++ {
		if _, err := ds.Sample(7, key, x); err != nil {
			t.Fatal(err)
		}
		v := float32(7) / 255
		zeros := 0
		for i, got := range x[:1024] {
			switch {
			case got == 0:
				zeros++
			case abs32(got-v) < 1e-6:
			default:
				t.Fatalf("key %d pixel %d: %g", key, i, got)
			}
		}
		if zeros > 32*32-24*24 {
			t.Fatalf("key %d: %d padded pixels", key, zeros)
		}
		if zeros > 0 {
			padded++
		}
	}
	if padded == 0 {
		t.Fatal("no augmented sample is shifted")
	}
}

func TestCIFARErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(dir string)
		want string
	}{
		{"missing", func(d string) { os.Remove(filepath.Join(d, "data_batch_3.bin")) }, "data_batch_3.bin: no such file"},
		{"truncated", func(d string) { os.Truncate(filepath.Join(d, "data_batch_2.bin"), 3073*2+100) }, "data_batch_2.bin: 6246 bytes is not a whole, non-zero number of 3073-byte records"},
		{"empty", func(d string) { os.Truncate(filepath.Join(d, "data_batch_2.bin"), 0) }, "data_batch_2.bin: 0 bytes"},
		{"label", func(d string) {
			b := cifarRecords(0, 3)
			b[2*3073] = 10
			os.WriteFile(filepath.Join(d, "data_batch_5.bin"), b, 0o644)
		}, "data_batch_5.bin: record 2 has label 10, out of range 0..9"},
	} {
		dir := makeCIFAR(t)
		tc.edit(dir)
		_, err := Open(Spec{Kind: CIFAR10, Dir: dir}, "train", Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Open(Spec{Kind: CIFAR10, Dir: t.TempDir()}, "train", Options{TenCrop: true}); err == nil || !strings.Contains(err.Error(), "is for folder datasets only") {
		t.Errorf("TenCrop: %v", err)
	}
}

func FuzzCIFAR(f *testing.F) {
	f.Add(cifarRecords(0, 1))
	f.Add(cifarRecords(3, 2)[:5000])
	f.Add([]byte{10})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseCIFAR(b, "fuzz")
		if err != nil {
			return
		}
		if n*cifarRecord != len(b) {
			t.Fatalf("%d records in %d bytes", n, len(b))
		}
		d := &cifarDataset{recs: b, n: n, o: Options{Channels: 3, Height: 32, Width: 32, Mean: CIFAR10Mean, Std: CIFAR10Std, Augment: true}}
		x := make([]float32, 3*32*32)
		for i := 0; i < n; i++ {
			y, err := d.Sample(i, uint64(i), x)
			if err != nil || y < 0 || y > 9 {
				t.Fatalf("Sample(%d) = %d, %v", i, y, err)
			}
		}
	})
}

package data

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoaderMNIST: batches of 128 embedded MNIST digits per second.
func BenchmarkLoaderMNIST(b *testing.B) {
	ds, err := Open(Spec{Kind: MNIST}, "train", Options{})
	if err != nil {
		b.Fatal(err)
	}
	l, err := NewLoader(ds, 128, true, true, 1, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Next(); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}

// BenchmarkFolderSampleAugment: one 500x375 JPEG decoded, resized to 256, cropped to 227,
// flipped and lit: the per-image cost of ImageNet training.
func BenchmarkFolderSampleAugment(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "train/a/x.jpg")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, encodeJPEG(b, gradient(500, 375)), 0o644); err != nil {
		b.Fatal(err)
	}
	ds, err := Open(Spec{Kind: Folder, Dir: dir}, "train", Options{Augment: true, Strict: true})
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float32, 3*227*227)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ds.Sample(0, uint64(i), x); err != nil {
			b.Fatal(err)
		}
	}
}

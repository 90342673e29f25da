package train

import (
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/alexcl/alexcl/model"
	"github.com/alexcl/alexcl/model/safetensors"
)

// narrowMini is the mini network with far fewer channels (8, 16, 24, 16,
// 16) and 64 hidden units, so a test trains it in seconds on two cores. Its
// weights start at std 0.1: the paper's 0.01 leaves a net this narrow
// stalled at chance for hundreds of steps.
func narrowMini(t testing.TB, dropout float64) *model.Config {
	t.Helper()
	mc, err := model.Preset("mini")
	if err != nil {
		t.Fatal(err)
	}
	mc = mc.WithHidden(64).WithDropout(dropout)
	outs := []int{8, 16, 24, 16, 16}
	k := 0
	for i := range mc.Features {
		if mc.Features[i].Type == model.Conv {
			mc.Features[i].Out = outs[k]
			k++
		}
	}
	mc.Name = "mini-narrow"
	mc.WeightStd = 0.1
	if err := mc.Validate(); err != nil {
		t.Fatal(err)
	}
	return &mc
}

// testConfig is a narrow-network run on data (a spec) writing to a temp dir.
func testConfig(t testing.TB, dataSpec string, dropout float64) Config {
	cfg := DefaultConfig()
	cfg.Model = narrowMini(t, dropout)
	cfg.Preset = ""
	cfg.Data = dataSpec
	cfg.Device = "cpu"
	cfg.Batch = 32
	cfg.Out = filepath.Join(t.TempDir(), "run")
	cfg.LogEvery = 5
	cfg.Workers = 2
	return cfg
}

// writeSmallMNIST writes the first nTrain training and nTest test digits of
// the MNIST copy in package data as plain IDX files into a new directory,
// for runs whose epochs take a fraction of a second.
func writeSmallMNIST(t testing.TB, nTrain, nTest int) string {
	t.Helper()
	dir := t.TempDir()
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		copyIDX(t, filepath.Join("..", "data", "mnist", split.prefix+"-images-idx3-ubyte.gz"), filepath.Join(dir, split.prefix+"-images-idx3-ubyte"), split.n, 3)
		copyIDX(t, filepath.Join("..", "data", "mnist", split.prefix+"-labels-idx1-ubyte.gz"), filepath.Join(dir, split.prefix+"-labels-idx1-ubyte"), split.n, 1)
	}
	return dir
}

// copyIDX copies the first n records of a gzipped IDX file with dims
// dimensions (1 labels, 3 images) to dst, fixing the count in the header.
func copyIDX(t testing.TB, src, dst string, n, dims int) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	header := make([]uint32, 1+dims)
	if err := binary.Read(zr, binary.BigEndian, header); err != nil {
		t.Fatal(err)
	}
	rec := 1
	for _, d := range header[2:] {
		rec *= int(d)
	}
	header[1] = uint32(n)
	body := make([]byte, n*rec)
	if _, err := io.ReadFull(zr, body); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := binary.Write(out, binary.BigEndian, header); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write(body); err != nil {
		t.Fatal(err)
	}
}

// sameTensors fails unless the safetensors files a and b hold the same
// tensors with the same bits.
func sameTensors(t *testing.T, a, b string) {
	t.Helper()
	fa, err := safetensors.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := safetensors.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.FirstDifference(fb); err != nil {
		t.Fatalf("%s and %s differ: %v", a, b, err)
	}
}

package data

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A CIFAR-10 binary record: 1 label byte, then 32×32 red, 32×32 green, 32×32 blue bytes.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
	cifarRecord = 1 + cifarPixels
	cifarMaxLen = 1 << 30 // per file; the real ones are 30 MB
	cifarPad    = 4       // zero padding of the random-crop augmentation
)

var cifarClassNames = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// parseCIFAR validates the records of one CIFAR-10 binary file and returns how many it holds.
func parseCIFAR(b []byte, name string) (int, error) {
	if len(b) == 0 || len(b)%cifarRecord != 0 {
		return 0, fmt.Errorf("%s: %d bytes is not a whole, non-zero number of %d-byte records (1 label + 3x32x32 pixels): truncated or not a CIFAR-10 binary file", name, len(b), cifarRecord)
	}
	n := len(b) / cifarRecord
	for i := 0; i < n; i++ {
		if l := b[i*cifarRecord]; l >= 10 {
			return 0, fmt.Errorf("%s: record %d has label %d, out of range 0..9", name, i, l)
		}
	}
	return n, nil
}

// cifarDataset serves CIFAR-10 images from memory.
type cifarDataset struct {
	recs  []byte // records (N, 3073)
	n     int
	names []string
	o     Options
}

var _ Dataset = (*cifarDataset)(nil)

func openCIFAR10(dir string, train bool, o Options) (*cifarDataset, error) {
	// Accept the folder the archive unpacks to as well as its parent.
	if sub := filepath.Join(dir, "cifar-10-batches-bin"); isDir(sub) {
		dir = sub
	}
	files := []string{"test_batch.bin"}
	if train {
		files = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	}
	d := &cifarDataset{o: o, names: cifarClassNames}
	for _, f := range files {
		p := filepath.Join(dir, f)
		b, err := readLimited(p, cifarMaxLen)
		if err != nil {
			return nil, fmt.Errorf("cifar10:%s: %w", dir, err)
		}
		n, err := parseCIFAR(b, p)
		if err != nil {
			return nil, err
		}
		d.recs = append(d.recs, b...)
		d.n += n
	}
	meta := filepath.Join(dir, "batches.meta.txt")
	if b, err := os.ReadFile(meta); err == nil {
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			if s := strings.TrimSpace(line); s != "" {
				names = append(names, s)
			}
		}
		if len(names) != 10 {
			return nil, fmt.Errorf("%s: %d class names, want 10 (one a line)", meta, len(names))
		}
		d.names = names
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("cifar10:%s: %w", dir, err)
	}
	return d, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func (d *cifarDataset) Len() int             { return d.n }
func (d *cifarDataset) Classes() int         { return 10 }
func (d *cifarDataset) ClassNames() []string { return append([]string(nil), d.names...) }
func (d *cifarDataset) Skipped() int         { return 0 }
func (d *cifarDataset) Options() Options     { return d.o }
func (d *cifarDataset) Views() int           { return 1 }

// Sample writes image i, resized to the model's input if it is not 32x32; with Augment,
// randomly cropped from the image padded by 4 zero pixels and randomly flipped.
func (d *cifarDataset) Sample(i int, key uint64, x []float32) (int32, error) {
	if i < 0 || i >= d.n {
		return 0, fmt.Errorf("cifar10: sample %d out of range 0..%d", i, d.n-1)
	}
	rec := d.recs[i*cifarRecord : (i+1)*cifarRecord]
	p := planes{C: 3, H: cifarSide, W: cifarSide, Pix: make([]float32, cifarPixels)}
	for k, v := range rec[1:] {
		p.Pix[k] = float32(v)
	}
	h, w := d.o.Height, d.o.Width
	p = resize(convertChannels(p, d.o.Channels), h, w)
	var v view
	if d.o.Augment {
		rng := sampleRNG(key)
		v = view{Y0: rng.IntN(2*cifarPad+1) - cifarPad, X0: rng.IntN(2*cifarPad+1) - cifarPad, Flip: rng.IntN(2) == 1}
	}
	emit(p, v, h, w, d.o.Mean, d.o.Std, x)
	return int32(rec[0]), nil
}

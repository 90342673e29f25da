package data

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// mnistFS holds the MNIST IDX files, gzipped (about 11 MB).
//
//go:embed mnist/*.gz
var mnistFS embed.FS

// mnistRaw is a parsed MNIST split: images (N, rows, cols) and labels (N), as bytes.
type mnistRaw struct {
	images     []byte
	labels     []byte
	n, rows, w int
}

// The embedded splits are parsed once per process.
var embeddedMNIST = [2]func() (*mnistRaw, error){
	sync.OnceValues(func() (*mnistRaw, error) { return loadEmbeddedMNIST(false) }),
	sync.OnceValues(func() (*mnistRaw, error) { return loadEmbeddedMNIST(true) }),
}

func mnistBase(train bool) (images, labels string) {
	if train {
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
	}
	return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
}

func loadEmbeddedMNIST(train bool) (*mnistRaw, error) {
	img, lab := mnistBase(train)
	ib, err := mnistFS.ReadFile("mnist/" + img + ".gz")
	if err != nil {
		return nil, err
	}
	lb, err := mnistFS.ReadFile("mnist/" + lab + ".gz")
	if err != nil {
		return nil, err
	}
	return parseMNIST(ib, "mnist/"+img+".gz (embedded)", lb, "mnist/"+lab+".gz (embedded)")
}

// parseMNIST parses and cross-checks an images file and a labels file.
func parseMNIST(images []byte, imagesName string, labels []byte, labelsName string) (*mnistRaw, error) {
	im, err := readIDX(bytes.NewReader(images), imagesName, 3, 4096)
	if err != nil {
		return nil, err
	}
	lb, err := readIDX(bytes.NewReader(labels), labelsName, 1, 0)
	if err != nil {
		return nil, err
	}
	if im.Dims[0] != lb.Dims[0] {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels: the files do not belong together", imagesName, im.Dims[0], labelsName, lb.Dims[0])
	}
	for i, l := range lb.Data {
		if l > 9 {
			return nil, fmt.Errorf("%s: label %d of item %d is out of range 0..9", labelsName, l, i)
		}
	}
	return &mnistRaw{images: im.Data, labels: lb.Data, n: im.Dims[0], rows: im.Dims[1], w: im.Dims[2]}, nil
}

// findFile returns the first of names that exists in dir.
func findFile(dir string, names ...string) (string, error) {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("none of %v found in %s", names, dir)
}

// idxNames lists the names an MNIST file goes by: base[.gz], and base with a '.' before
// "idx" (train-images.idx3-ubyte) as some mirrors name it.
func idxNames(base string) []string {
	dotted := base[:len(base)-len("-idx3-ubyte")] + "." + base[len(base)-len("idx3-ubyte"):]
	return []string{base + ".gz", base, dotted + ".gz", dotted}
}

func loadDirMNIST(dir string, train bool) (*mnistRaw, error) {
	img, lab := mnistBase(train)
	ip, err := findFile(dir, idxNames(img)...)
	if err != nil {
		return nil, fmt.Errorf("mnist:%s: %w", dir, err)
	}
	lp, err := findFile(dir, idxNames(lab)...)
	if err != nil {
		return nil, fmt.Errorf("mnist:%s: %w", dir, err)
	}
	ib, err := readLimited(ip, maxIDXBytes+64)
	if err != nil {
		return nil, err
	}
	lb, err := readLimited(lp, maxIDXBytes+64)
	if err != nil {
		return nil, err
	}
	return parseMNIST(ib, ip, lb, lp)
}

// readLimited reads a whole file, refusing files over limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, over the limit of %d", path, st.Size(), limit)
	}
	return os.ReadFile(path)
}

// mnistDataset serves MNIST digits to the model: white on black, labels 0..9.
type mnistDataset struct {
	raw *mnistRaw
	o   Options
}

var _ Dataset = (*mnistDataset)(nil)

func openMNIST(spec Spec, train bool, o Options) (*mnistDataset, error) {
	var raw *mnistRaw
	var err error
	if spec.Embedded() {
		raw, err = embeddedMNIST[b2i(train)]()
	} else {
		raw, err = loadDirMNIST(spec.Dir, train)
	}
	if err != nil {
		return nil, err
	}
	return &mnistDataset{raw: raw, o: o}, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var mnistClassNames = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

func (d *mnistDataset) Len() int             { return d.raw.n }
func (d *mnistDataset) Classes() int         { return 10 }
func (d *mnistDataset) ClassNames() []string { return append([]string(nil), mnistClassNames...) }
func (d *mnistDataset) Skipped() int         { return 0 }
func (d *mnistDataset) Options() Options     { return d.o }
func (d *mnistDataset) Views() int           { return 1 }

// Sample writes digit i, resized to the model's input if it is not 28x28. MNIST has no
// augmentation, so key is unused.
func (d *mnistDataset) Sample(i int, key uint64, x []float32) (int32, error) {
	r := d.raw
	if i < 0 || i >= r.n {
		return 0, fmt.Errorf("mnist: sample %d out of range 0..%d", i, r.n-1)
	}
	hw := r.rows * r.w
	p := planes{C: 1, H: r.rows, W: r.w, Pix: make([]float32, hw)}
	for k, v := range r.images[i*hw : (i+1)*hw] {
		p.Pix[k] = float32(v)
	}
	p = resize(convertChannels(p, d.o.Channels), d.o.Height, d.o.Width)
	emit(p, view{}, d.o.Height, d.o.Width, d.o.Mean, d.o.Std, x)
	return int32(r.labels[i]), nil
}

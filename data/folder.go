package data

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// folderDataset serves images from DIR/{train,val}/<class>/..., decoded on demand.
type folderDataset struct {
	paths   []string // sorted by class, then path
	labels  []int32  // labels is (len(paths))
	names   []string // class names: the sorted train/ folder names
	o       Options
	views   int
	skipped int // at Open

	lateMu      sync.Mutex
	late        map[string]bool // files whose body failed to decode in Sample
	lateSkipped atomic.Int64
}

var _ Dataset = (*folderDataset)(nil)

// isImageName reports whether a file name has an image extension the loader decodes.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// isOtherImageName reports whether a file name has the extension of an
// image format the loader does not decode; such files are unreadable
// images (skipped and counted, or an error with Strict), not silently
// ignored like other files.
func isOtherImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jp2", ".ppm", ".pgm", ".pnm", ".jxl":
		return true
	}
	return false
}

// classFolders lists the sub-folders of dir, sorted, ignoring hidden ones.
func classFolders(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() || (e.Type()&fs.ModeSymlink != 0 && isDir(filepath.Join(dir, e.Name()))) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// imageFiles lists the image files under dir, recursively, in sorted path
// order: JPEG and PNG, and images in formats checkImageFile rejects.
func imageFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && (isImageName(d.Name()) || isOtherImageName(d.Name())) {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// checkImageFile reads an image file's header: it must be non-empty, a JPEG or PNG, and of
// a sane size.
func checkImageFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return errors.New("zero-byte file")
	}
	if isOtherImageName(path) {
		return fmt.Errorf("unsupported format %s: alexcl reads JPEG and PNG; convert it", strings.ToLower(filepath.Ext(path)))
	}
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return fmt.Errorf("not a readable JPEG or PNG: %w", err)
	}
	return checkDims(cfg.Width, cfg.Height)
}

func openFolder(dir string, train bool, o Options) (*folderDataset, error) {
	if o.Resize < max(o.Height, o.Width) {
		return nil, fmt.Errorf("folder:%s: Resize %d is smaller than the %dx%d input: raise Resize to at least %d", dir, o.Resize, o.Width, o.Height, max(o.Height, o.Width))
	}
	trainDir := filepath.Join(dir, "train")
	classes, err := classFolders(trainDir)
	if err != nil {
		return nil, fmt.Errorf("folder:%s: %w (want %s/train/<class>/*.jpg and %s/val/<class>/*.jpg)", dir, err, dir, dir)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("folder:%s: no class folders in %s", dir, trainDir)
	}
	splitDir := trainDir
	if !train {
		splitDir = filepath.Join(dir, "val")
	}
	splitClasses := classes
	if !train {
		if splitClasses, err = classFolders(splitDir); err != nil {
			return nil, fmt.Errorf("folder:%s: %w", dir, err)
		}
		if len(splitClasses) == 0 {
			return nil, fmt.Errorf("folder:%s: no class folders in %s", dir, splitDir)
		}
	}
	d := &folderDataset{names: classes, o: o, views: 1, late: map[string]bool{}}
	if o.TenCrop {
		d.views = 10
	}
	var classOf []int32 // per file
	for _, c := range splitClasses {
		label, found := slices.BinarySearch(classes, c)
		if !found {
			return nil, fmt.Errorf("folder:%s: class %q of %s is not a class of %s: val classes must be train classes", dir, c, splitDir, trainDir)
		}
		files, err := imageFiles(filepath.Join(splitDir, c))
		if err != nil {
			return nil, fmt.Errorf("folder:%s: %w", dir, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("folder:%s: class folder %s has no images (.jpg, .jpeg, .png): add some or remove the folder", dir, filepath.Join(splitDir, c))
		}
		d.paths = append(d.paths, files...)
		for range files {
			classOf = append(classOf, int32(label))
		}
	}

	// Check every file's header in parallel; decide in path order.
	bad := make([]error, len(d.paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(o.Workers, len(d.paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(d.paths); i = int(next.Add(1) - 1) {
				bad[i] = checkImageFile(d.paths[i])
			}
		}()
	}
	wg.Wait()
	paths := d.paths[:0:0]
	perClass := map[int32]int{}
	skippedPerClass := map[int32]int{}
	for i, err := range bad {
		if err != nil {
			if o.Strict {
				return nil, fmt.Errorf("folder:%s: %s: %w (strict mode, --strict: without it corrupt images are skipped and counted)", dir, d.paths[i], err)
			}
			d.skipped++
			skippedPerClass[classOf[i]]++
			continue
		}
		paths = append(paths, d.paths[i])
		d.labels = append(d.labels, classOf[i])
		perClass[classOf[i]]++
	}
	d.paths = paths
	for _, c := range splitClasses {
		label, _ := slices.BinarySearch(classes, c)
		if perClass[int32(label)] == 0 {
			return nil, fmt.Errorf("folder:%s: class folder %s has no readable images (%d corrupt, empty or unsupported files skipped)", dir, filepath.Join(splitDir, c), skippedPerClass[int32(label)])
		}
	}
	return d, nil
}

func (d *folderDataset) Len() int             { return len(d.paths) }
func (d *folderDataset) Classes() int         { return len(d.names) }
func (d *folderDataset) ClassNames() []string { return append([]string(nil), d.names...) }
func (d *folderDataset) Skipped() int         { return d.skipped + int(d.lateSkipped.Load()) }
func (d *folderDataset) Options() Options     { return d.o }
func (d *folderDataset) Views() int           { return d.views }

// Sample decodes image i and applies the folder pipeline (see the package comment).
func (d *folderDataset) Sample(i int, key uint64, x []float32) (int32, error) {
	if i < 0 || i >= len(d.paths) {
		return 0, fmt.Errorf("folder: sample %d out of range 0..%d", i, len(d.paths)-1)
	}
	path := d.paths[i]
	err := loadPhoto(path, d.o, key, x)
	if err != nil {
		if d.o.Strict {
			return 0, err
		}
		clear(x) // the dataset mean, after normalisation
		d.lateMu.Lock()
		if !d.late[path] {
			d.late[path] = true
			d.lateSkipped.Add(1)
		}
		d.lateMu.Unlock()
	}
	return d.labels[i], nil
}

// loadPhoto reads, decodes and prepares one image file into x.
func loadPhoto(path string, o Options, key uint64, x []float32) error {
	b, err := readLimited(path, 1<<30)
	if err != nil {
		return err
	}
	p, err := decodeImage(b, o.Channels)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := photoSample(p, o, key, x); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// LoadImage reads one JPEG or PNG and prepares it for the model as a folder dataset's
// evaluation sample: an image already Height×Width is used as is, otherwise its shorter
// side is resized to Resize and the centre is cropped. With opts.TenCrop it returns 10
// views (4 corners, centre, then their mirrors), one after the other. The result is
// (Views, C, H, W). Zero fields of opts take the folder defaults (3 channels, 227×227,
// ImageNet mean and std): pass the Channels, size, Mean and Std the model was trained
// with. Augment is ignored.
func LoadImage(path string, opts Options) ([]float32, error) {
	opts.Augment = false
	o, err := opts.resolve(DefaultOptions(Spec{Kind: Folder}), path)
	if err != nil {
		return nil, err
	}
	views := 1
	if o.TenCrop {
		views = 10
	}
	x := make([]float32, views*o.Channels*o.Height*o.Width)
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if st.Size() == 0 {
		return nil, fmt.Errorf("%s: zero-byte file", path)
	}
	if err := loadPhoto(path, o, 0, x); err != nil {
		return nil, err
	}
	return x, nil
}

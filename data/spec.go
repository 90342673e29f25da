package data

import (
	"fmt"
	"runtime"
	"strings"
)

// Kind is the type of a dataset source.
type Kind int

// The dataset kinds a [Spec] can name.
const (
	MNIST   Kind = iota // MNIST IDX files (embedded when Spec.Dir is "")
	CIFAR10             // CIFAR-10 binary batches
	Folder              // ImageNet-style image folders
)

// String returns the kind's name as written in a spec ("mnist", "cifar10", "folder").
func (k Kind) String() string {
	switch k {
	case MNIST:
		return "mnist"
	case CIFAR10:
		return "cifar10"
	case Folder:
		return "folder"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Spec names a dataset: its kind and, except for the embedded MNIST, a directory.
type Spec struct {
	Kind Kind   // what the files are
	Dir  string // where they are; "" only for the embedded MNIST
}

// Embedded reports whether the spec names the MNIST copy built into the binary.
func (s Spec) Embedded() bool { return s.Kind == MNIST && s.Dir == "" }

// String returns the spec in the form ParseSpec accepts.
func (s Spec) String() string {
	if s.Embedded() {
		return "mnist"
	}
	return s.Kind.String() + ":" + s.Dir
}

// ParseSpec parses a dataset spec: "mnist" (embedded), "mnist:DIR", "cifar10:DIR" or
// "folder:DIR". The kind is case-insensitive; DIR is taken verbatim.
func ParseSpec(s string) (Spec, error) {
	name, dir, hasDir := strings.Cut(s, ":")
	var k Kind
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "mnist":
		k = MNIST
	case "cifar10", "cifar-10":
		k = CIFAR10
	case "folder":
		k = Folder
	default:
		return Spec{}, fmt.Errorf("data: unknown dataset %q: want mnist, mnist:DIR, cifar10:DIR or folder:DIR", s)
	}
	if hasDir && dir == "" {
		return Spec{}, fmt.Errorf("data: dataset %q: empty directory after ':'", s)
	}
	if !hasDir && k != MNIST {
		return Spec{}, fmt.Errorf("data: dataset %q needs a directory: write %s:DIR", s, k)
	}
	return Spec{Kind: k, Dir: dir}, nil
}

// Normalisation constants: per-channel mean and standard deviation of pixel/255.
var (
	MNISTMean    = []float32{0.1307}
	MNISTStd     = []float32{0.3081}
	CIFAR10Mean  = []float32{0.4914, 0.4822, 0.4465}
	CIFAR10Std   = []float32{0.2470, 0.2435, 0.2616}
	ImageNetMean = []float32{0.485, 0.456, 0.406}
	ImageNetStd  = []float32{0.229, 0.224, 0.225}
)

// Options describe the model's input and how samples are prepared. Zero fields take the
// dataset's defaults (see DefaultOptions).
type Options struct {
	Channels int // model input channels, 1 or 3; 0: the dataset's native channels
	Height   int // model input height; 0: native (28 MNIST, 32 CIFAR-10, 227 folders)
	Width    int // model input width; 0: like Height

	// Mean and Std normalise pixel/255 per channel: (x - Mean[c]) / Std[c]. Each has
	// Channels entries, or one entry used for every channel; nil: the dataset's defaults.
	Mean, Std []float32

	Augment bool // training augmentation (see the package comment); false: evaluation
	Resize  int  // folders and LoadImage: shorter side before cropping; 0: round(256·max(H,W)/227)
	TenCrop bool // evaluation only, folders and LoadImage: 10 views per sample
	Strict  bool // corrupt or zero-byte images are errors instead of being skipped and counted
	Workers int  // goroutines for decoding and augmentation; 0: GOMAXPROCS

	// Seed is mixed with the loader's seed into every augmentation decision; 0 is fine.
	Seed uint64
}

// DefaultOptions returns the defaults for a dataset: native channels and size,
// normalisation constants, Resize and Workers.
func DefaultOptions(spec Spec) Options {
	o := Options{Workers: runtime.GOMAXPROCS(0)}
	switch spec.Kind {
	case MNIST:
		o.Channels, o.Height, o.Width = 1, 28, 28
		o.Mean, o.Std = MNISTMean, MNISTStd
	case CIFAR10:
		o.Channels, o.Height, o.Width = 3, 32, 32
		o.Mean, o.Std = CIFAR10Mean, CIFAR10Std
	default:
		o.Channels, o.Height, o.Width = 3, 227, 227
		o.Mean, o.Std = ImageNetMean, ImageNetStd
	}
	o.Resize = defaultResize(o.Height, o.Width)
	return o
}

// defaultResize keeps the paper's 256/227 ratio for any input size.
func defaultResize(h, w int) int {
	m := max(h, w)
	return (m*256 + 227/2) / 227
}

// resolve fills the zero fields of o from def and validates the result. what names the
// dataset in errors.
func (o Options) resolve(def Options, what string) (Options, error) {
	if o.Channels == 0 {
		o.Channels = def.Channels
	}
	if o.Channels != 1 && o.Channels != 3 {
		return o, fmt.Errorf("%s: %d channels: the model must take 1 or 3", what, o.Channels)
	}
	if o.Height == 0 && o.Width == 0 {
		o.Height, o.Width = def.Height, def.Width
	} else if o.Width == 0 {
		o.Width = o.Height
	} else if o.Height == 0 {
		o.Height = o.Width
	}
	if o.Height < 1 || o.Width < 1 || o.Height > 4096 || o.Width > 4096 {
		return o, fmt.Errorf("%s: input %dx%d: height and width must be in 1..4096", what, o.Height, o.Width)
	}
	var err error
	if o.Mean, err = channelParams(o.Mean, def.Mean, o.Channels, "mean", what); err != nil {
		return o, err
	}
	if o.Std, err = channelParams(o.Std, def.Std, o.Channels, "std", what); err != nil {
		return o, err
	}
	for c, s := range o.Std {
		if !(s > 0) {
			return o, fmt.Errorf("%s: std[%d] = %g: every std must be > 0", what, c, s)
		}
	}
	if o.Resize == 0 {
		o.Resize = defaultResize(o.Height, o.Width)
	}
	if o.Resize < 1 || o.Resize > 1<<14 {
		return o, fmt.Errorf("%s: resize %d out of range 1..16384", what, o.Resize)
	}
	if o.TenCrop && o.Augment {
		return o, fmt.Errorf("%s: TenCrop is for evaluation; it cannot be combined with Augment", what)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o, nil
}

// DefaultNormalization returns the mean and std the loaders of spec give
// images of c channels when the options leave them unset: the dataset's
// own, replicated from grey to RGB or taken to grey (0.299 R + 0.587 G +
// 0.114 B) when c differs from the dataset's.
func DefaultNormalization(spec Spec, c int) (mean, std []float32, err error) {
	def := DefaultOptions(spec)
	if mean, err = channelParams(nil, def.Mean, c, "mean", spec.String()); err != nil {
		return nil, nil, err
	}
	if std, err = channelParams(nil, def.Std, c, "std", spec.String()); err != nil {
		return nil, nil, err
	}
	return mean, std, nil
}

// channelParams returns a per-channel copy of p (or of the default when p is nil).
func channelParams(p, def []float32, c int, name, what string) ([]float32, error) {
	if p == nil {
		p = def
		if len(def) != c { // defaults for a different channel count
			switch {
			case len(def) == 1:
				// grey replicated to RGB: the same statistics in every channel
			case len(def) == 3 && c == 1:
				p = []float32{0.299*def[0] + 0.587*def[1] + 0.114*def[2]}
			}
		}
	}
	switch len(p) {
	case c:
		return append([]float32(nil), p...), nil
	case 1:
		out := make([]float32, c)
		for i := range out {
			out[i] = p[0]
		}
		return out, nil
	}
	if c == 1 {
		return nil, fmt.Errorf("%s: %d %s values for 1 channel: give 1", what, len(p), name)
	}
	return nil, fmt.Errorf("%s: %d %s values for %d channels: give %d or 1", what, len(p), name, c, c)
}

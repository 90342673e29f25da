package data

import (
	"fmt"
	"strings"
)

// Dataset is one split of a dataset, ready to produce model-shaped samples.
// Implementations are safe for concurrent use by the loader's workers.
type Dataset interface {
	// Len is the number of samples.
	Len() int
	// Classes is the number of classes; labels are in [0, Classes).
	Classes() int
	// ClassNames returns the class names, indexed by label.
	ClassNames() []string
	// Skipped is the number of corrupt or unreadable images skipped so far (at Open, and
	// images whose body failed to decode in the loader); always 0 for MNIST and CIFAR-10.
	Skipped() int
	// Options returns the resolved options: defaults filled in, Mean and Std per channel.
	Options() Options
	// Views is the number of images per sample: 10 with TenCrop, 1 otherwise.
	Views() int
	// Sample writes sample i, Views() images of (C, H, W) each, into x, which must hold
	// Views()·C·H·W floats, and returns its label. key seeds every random augmentation
	// decision; the same (i, key) always gives the same output.
	Sample(i int, key uint64, x []float32) (label int32, err error)
}

// Open opens split "train" or "test" ("val" is a synonym of "test") of the dataset spec.
// Zero fields of opts take the dataset's defaults (DefaultOptions).
func Open(spec Spec, split string, opts Options) (Dataset, error) {
	train, err := parseSplit(split)
	if err != nil {
		return nil, err
	}
	what := spec.String()
	o, err := opts.resolve(DefaultOptions(spec), what)
	if err != nil {
		return nil, err
	}
	switch spec.Kind {
	case MNIST:
		if o.TenCrop {
			return nil, fmt.Errorf("%s: ten-crop evaluation (TenCrop, eval --ten-crop) is for folder datasets only", what)
		}
		return openMNIST(spec, train, o)
	case CIFAR10:
		if o.TenCrop {
			return nil, fmt.Errorf("%s: ten-crop evaluation (TenCrop, eval --ten-crop) is for folder datasets only", what)
		}
		return openCIFAR10(spec.Dir, train, o)
	case Folder:
		return openFolder(spec.Dir, train, o)
	}
	return nil, fmt.Errorf("data: unknown dataset kind %v", spec.Kind)
}

func parseSplit(split string) (train bool, err error) {
	switch strings.ToLower(split) {
	case "train":
		return true, nil
	case "test", "val":
		return false, nil
	}
	return false, fmt.Errorf("data: unknown split %q: want train or test", split)
}

// Package data provides alexcl's datasets and the batch loader that feeds training.
//
// # Datasets
//
// A dataset is named by a [Spec], parsed from a string by [ParseSpec]:
//
//	mnist            MNIST embedded in the binary (the default dataset)
//	mnist:DIR        MNIST IDX files in DIR (train-images-idx3-ubyte[.gz], ...; gzipped or plain)
//	cifar10:DIR      CIFAR-10 binary batches: data_batch_1..5.bin (train), test_batch.bin (test),
//	                 optional batches.meta.txt with the class names, one a line
//	folder:DIR       image folders in the ImageNet layout: DIR/train/<class>/*.{jpg,jpeg,png}
//	                 and DIR/val/<class>/*; class index = sorted order of the train/ class folders;
//	                 val/ classes must be a subset of train/ classes
//
// [Open] opens one split ("train", or "test"; "val" is accepted as a synonym of "test",
// and for folders "test" reads DIR/val) with [Options] that describe the model's input:
// channels, height and width, normalisation, augmentation. Zero fields take the defaults
// of [DefaultOptions] for the dataset.
//
// # What a sample is
//
// Every sample is a float32 image (C, H, W) in the model's layout, built as
//
//	decode -> convert to C channels -> geometry (resize/crop/flip) -> lighting -> x/255 -> (x-mean)/std
//
// Channel conversion: grey is replicated to 3 channels; RGB, CMYK (through image/color's
// CMYK-to-RGB) and images with alpha are converted to RGB, alpha dropped and straight
// (non-premultiplied) colour kept, as PIL's convert("RGB") does; 3 channels go to 1 by
// ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B). EXIF orientation is not applied (nor is
// it by PIL or torchvision).
//
// Geometry by dataset:
//
//   - MNIST and CIFAR-10: if the model's H×W differs from the native 28×28 or 32×32, the
//     image is resized to H×W (bilinear, antialiased when shrinking); no error. MNIST has no
//     augmentation (flipping a digit changes it), so Augment is accepted and ignored.
//     CIFAR-10 augmentation is the usual 4-pixel zero padding, random H×W crop and random
//     horizontal flip. TenCrop is refused for these datasets.
//   - Folders, training with Augment (the paper's recipe): shorter side resized to Resize
//     (default 256), a random H×W crop (default 227), a horizontal flip with probability
//     1/2, and PCA colour noise with AlexNet's ImageNet eigenvalues and eigenvectors,
//     alpha ~ N(0, 0.1) per component (3-channel models only).
//   - Folders, evaluation (Augment false): an image already H×W is used as is; otherwise
//     the shorter side is resized to Resize and the centre H×W is cropped. With TenCrop,
//     each sample is 10 views: the 4 corner crops, the centre crop, then their mirror
//     images, in that order.
//
// Resizing is a separable triangle (bilinear) filter whose support is widened by the
// shrink factor, so large photos are area-averaged instead of aliased.
//
// # Corrupt images
//
// [Open] checks every image of a folder split by its header (image.DecodeConfig, in
// parallel): zero-byte files, files that are not JPEG/PNG, and images over 2^26 pixels are
// skipped and counted ([Dataset.Skipped]); with Options.Strict the first such file is an
// error. A file whose header is valid but whose body fails to decode surfaces later, in the
// loader: with Strict it is the loader's error; otherwise the sample is replaced by an
// all-zero image (the dataset mean after normalisation), keeps its label and is counted in
// Skipped (once per file). Empty class folders and splits with no images are errors.
//
// # Loader
//
// [NewLoader] streams batches as NCHW float32 plus int32 labels. Decoding and augmentation
// run on Options.Workers goroutines (default GOMAXPROCS), sample by sample, ahead of the
// consumer, with a fixed number of batches in flight, so memory is bounded.
//
// Everything a batch holds is a pure function of (seed, Options.Seed, epoch, position in
// the epoch), never of goroutine scheduling: the order of an epoch is a permutation drawn
// from math/rand/v2's PCG seeded with (seed, epoch) (or file order without shuffling:
// IDX/CIFAR record order, sorted path order for folders), and each sample's augmentation
// draws come from a PCG seeded from a hash of (seed, Options.Seed, epoch, position). So a
// loader started at (epoch, batch) produces exactly the batches an uninterrupted run
// would have produced from there, whatever the number of workers.
//
// The loader runs epoch after epoch until [Loader.Close]; [Loader.Next] returns io.EOF
// once at the end of every epoch, and the call after that starts the next epoch.
//
// # Single images
//
// [LoadImage] prepares one image file for prediction exactly as an evaluation sample of a
// folder dataset (centre crop, or 10 views with TenCrop).
package data

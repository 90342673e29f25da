package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/model"
	"github.com/alexcl/alexcl/train"
	"github.com/urfave/cli/v2"
)

func init() {
	commands = append(commands, &cli.Command{
		Name:      "predict",
		Usage:     "classify images with trained weights",
		ArgsUsage: "IMAGE...",
		Description: "Prints the top-K classes of each JPEG or PNG image with their probabilities,\n" +
			"and class names when the weights file has them (alexcl train stores them).\n" +
			"Images are prepared as the test split was: resized (shorter side) and\n" +
			"centre-cropped to the network's input, normalised with the training dataset's\n" +
			"mean and std. MNIST networks expect a light digit on a dark background.\n" +
			"--json prints one JSON object per image and line: image, top (class, label,\n" +
			"probability) and logits (every class, before the softmax).",
		Flags: []cli.Flag{
			weightsFlag, netPresetFlag, netConfigFlag, deviceFlag,
			&cli.IntFlag{Name: "top", Aliases: []string{"k"}, Value: 5, Usage: "how many classes to show per image"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON Lines"},
		},
		Action: predictAction,
	})
}

// predictClass is one entry of a prediction's top list.
type predictClass struct {
	Class       int     `json:"class"`
	Label       string  `json:"label"`
	Probability float64 `json:"probability"`
}

// prediction is the JSON Lines record of one image.
type prediction struct {
	Image  string         `json:"image"`
	Top    []predictClass `json:"top"`
	Logits []float32      `json:"logits"`
}

// predictBatch is the most images predict runs through the net at once.
const predictBatch = 32

// predictAction is the action of `alexcl predict`.
func predictAction(ctx *cli.Context) error {
	images := ctx.Args().Slice()
	if len(images) == 0 {
		return fmt.Errorf("no images: give one or more JPEG or PNG files, e.g. alexcl predict --weights runs/mini/best.safetensors digit.png")
	}
	k := ctx.Int("top")
	if k < 1 {
		return fmt.Errorf("--top %d: must be at least 1", k)
	}
	tn, err := networkForWeights(ctx)
	if err != nil {
		return err
	}
	opts := imageOptions(tn)
	d, err := openDevice(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	batch := min(len(images), predictBatch)
	net, err := model.New(d, tn.cfg, batch)
	if err != nil {
		return err
	}
	defer net.Close()
	if err := net.Load(ctx.String("weights")); err != nil {
		return err
	}
	x, err := device.AllocFloat32(d, batch*net.InputLen())
	if err != nil {
		return err
	}
	defer d.Free(x)

	classes := net.Classes()
	k = min(k, classes)
	host := make([]float32, batch*net.InputLen())
	logits := make([]float32, batch*classes)
	failed := 0
	for lo := 0; lo < len(images); lo += batch {
		var names []string // the images of this chunk that loaded
		for _, path := range images[lo:min(lo+batch, len(images))] {
			img, err := data.LoadImage(path, opts)
			if err != nil {
				fmt.Fprintf(os.Stderr, "alexcl: predict %s: %v\n", path, err)
				failed++
				continue
			}
			if len(img) != net.InputLen() {
				return fmt.Errorf("predict %s: prepared image has %d values, the network takes %d", path, len(img), net.InputLen())
			}
			copy(host[len(names)*net.InputLen():], img)
			names = append(names, path)
		}
		n := len(names)
		if n == 0 {
			continue
		}
		if err := d.Write(x, 0, device.Float32Bytes(host[:n*net.InputLen()])); err != nil {
			return fmt.Errorf("predict: upload images: %w", err)
		}
		out, err := net.Forward(x, n, false, 0)
		if err != nil {
			return fmt.Errorf("predict: %w", err)
		}
		if err := d.Read(out, 0, device.Float32Bytes(logits[:n*classes])); err != nil {
			return fmt.Errorf("predict: read logits: %w", err)
		}
		for i, path := range names {
			lg := logits[i*classes : (i+1)*classes]
			p := prediction{Image: path, Logits: append([]float32(nil), lg...), Top: topK(train.Softmax(lg), k, tn)}
			if err := printPrediction(ctx.App.Writer, p, ctx.Bool("json")); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d image%s could not be read (see above)", failed, len(images), plural(len(images)))
	}
	return nil
}

// imageOptions prepare a single image as the network's test data was:
// its input shape and the training dataset's normalisation. MNIST and
// CIFAR-10 images are scaled whole to the input size, as those datasets are.
func imageOptions(tn trainedNet) data.Options {
	opts := tn.inputOptions()
	spec, err := data.ParseSpec(tn.data)
	if err != nil { // unknown dataset: guess from the channels
		spec = data.Spec{Kind: data.Folder}
		if opts.Channels == 1 {
			spec = data.Spec{Kind: data.MNIST}
		}
	}
	// As training normalised them: the dataset's statistics, taken to
	// grey for a 1-channel network trained on colour images.
	if mean, std, err := data.DefaultNormalization(spec, opts.Channels); err == nil {
		opts.Mean, opts.Std = mean, std
	}
	if spec.Kind != data.Folder {
		opts.Resize = max(opts.Height, opts.Width)
	}
	return opts
}

// topK returns the k most probable classes, ties to the lower index.
func topK(p []float64, k int, tn trainedNet) []predictClass {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	out := make([]predictClass, 0, k)
	for _, c := range idx[:k] {
		out = append(out, predictClass{Class: c, Label: tn.classLabel(c), Probability: p[c]})
	}
	return out
}

// printPrediction writes one image's result as a JSON line or as text.
func printPrediction(w io.Writer, p prediction, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("predict %s: %w", p.Image, err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	fmt.Fprintf(w, "%s\n", p.Image)
	for i, c := range p.Top {
		fmt.Fprintf(w, "  %d. %-20s %7.3f%%  (class %d)\n", i+1, c.Label, 100*c.Probability, c.Class)
	}
	return nil
}

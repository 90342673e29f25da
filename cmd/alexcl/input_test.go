package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/model"
)

// TestImageOptions: predict normalises an image as training did, for a
// network whose channels differ from its dataset's (a 1-channel network
// trained on a folder of colour photos or on CIFAR-10 takes them as grey,
// and MNIST's grey statistics serve every channel of a 3-channel one),
// and the image then loads.
func TestImageOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.png")
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 40 {
			img.Set(x, y, color.RGBA{uint8(6 * x), uint8(8 * y), 100, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()

	grey := func(v []float32) float32 { return 0.299*v[0] + 0.587*v[1] + 0.114*v[2] }
	for _, tc := range []struct {
		spec     string
		channels int
		mean0    float32
	}{
		{"folder:/photos", 1, grey(data.ImageNetMean)},
		{"folder:/photos", 3, data.ImageNetMean[0]},
		{"cifar10:/c", 1, grey(data.CIFAR10Mean)},
		{"cifar10:/c", 3, data.CIFAR10Mean[0]},
		{"mnist", 1, data.MNISTMean[0]},
		{"mnist", 3, data.MNISTMean[0]},
	} {
		tn := trainedNet{cfg: model.Config{Input: model.Input{Channels: tc.channels, Height: 28, Width: 28}}, data: tc.spec}
		opts := imageOptions(tn)
		if len(opts.Mean) != tc.channels || len(opts.Std) != tc.channels || opts.Mean[0] != tc.mean0 {
			t.Errorf("%s, %d channels: mean %v std %v, want %d values, the first %v", tc.spec, tc.channels, opts.Mean, opts.Std, tc.channels, tc.mean0)
			continue
		}
		x, err := data.LoadImage(path, opts)
		if err != nil {
			t.Errorf("%s, %d channels: %v", tc.spec, tc.channels, err)
		} else if len(x) != tc.channels*28*28 {
			t.Errorf("%s, %d channels: %d values, want %d", tc.spec, tc.channels, len(x), tc.channels*28*28)
		}
	}
}

// TestSummaryOfTrainingConfig: summary --config takes the network of a
// training config (a run's config.toml), and reads a network TOML as
// before.
func TestSummaryOfTrainingConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("preset = \"mini\"\nepochs = 3\nout = \"runs/x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "summary", "--config", cfg)
	if err != nil || !strings.HasPrefix(out, "mini: input 28x28x1") {
		t.Errorf("summary --config of a training config: %v\n%s", err, out)
	}
	net := filepath.Join(dir, "net.toml")
	toml, err := runCLI(t, "summary", "--preset", "mini", "--toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(net, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := runCLI(t, "summary", "--config", net); err != nil || again != out {
		t.Errorf("summary --config of a network TOML: %v\n%s\nwant\n%s", err, again, out)
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/model"
	"github.com/urfave/cli/v2"
)

// runCLI runs alexcl with args and returns what it printed on stdout.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "alexcl", Commands: commands, Writer: &out, ErrWriter: &out}
	err := app.Run(append([]string{"alexcl"}, args...))
	return out.String(), err
}

// narrowNetworkFile writes a network TOML of the mini structure with few
// channels, which trains in seconds on the CPU device.
func narrowNetworkFile(t *testing.T) string {
	t.Helper()
	mc, err := model.Preset("mini")
	if err != nil {
		t.Fatal(err)
	}
	mc = mc.WithHidden(64)
	outs := []int{8, 16, 24, 16, 16}
	k := 0
	for i := range mc.Features {
		if mc.Features[i].Type == model.Conv {
			mc.Features[i].Out = outs[k]
			k++
		}
	}
	mc.Name, mc.WeightStd = "narrow", 0.1
	text, err := mc.TOML()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "narrow.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeDigits writes the first n MNIST test digits as 28×28 grey PNGs and
// returns their paths and labels.
func writeDigits(t *testing.T, n int) ([]string, []int32) {
	t.Helper()
	ds, err := data.Open(data.Spec{Kind: data.MNIST}, "test", data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	x := make([]float32, 28*28)
	var paths []string
	var labels []int32
	for i := 0; i < n; i++ {
		y, err := ds.Sample(i, 0, x)
		if err != nil {
			t.Fatal(err)
		}
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for j, v := range x {
			p := (v*data.MNISTStd[0] + data.MNISTMean[0]) * 255
			img.SetGray(j%28, j/28, color.Gray{Y: uint8(max(0, min(255, p+0.5)))})
		}
		path := filepath.Join(dir, fmt.Sprintf("digit%d.png", i))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		paths = append(paths, path)
		labels = append(labels, y)
	}
	return paths, labels
}

// TestTrainEvalPredict drives the three commands as a user would: train a
// narrow network briefly, resume it for more steps, evaluate the best
// weights, and predict digits as text and as JSON Lines.
func TestTrainEvalPredict(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	net := narrowNetworkFile(t)
	out := filepath.Join(t.TempDir(), "run")
	if _, err := runCLI(t, "train", "--config", net, "--device", "cpu", "--batch", "32", "--max-steps", "100",
		"--dropout", "0", "--out", out); err != nil {
		t.Fatal(err)
	}
	// Flags override the run's config.toml on resume.
	if _, err := runCLI(t, "train", "--resume", "--out", out, "--max-steps", "200"); err != nil {
		t.Fatal(err)
	}
	cfgText, err := os.ReadFile(filepath.Join(out, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfgText), "max_steps = 200") || !strings.Contains(string(cfgText), `device = "cpu"`) {
		t.Errorf("resolved config after resume:\n%s", cfgText)
	}

	best := filepath.Join(out, "best.safetensors")
	// The network comes from the checkpoint: no --preset or --config needed.
	evalOut, err := runCLI(t, "eval", "--weights", best, "--device", "cpu", "--limit", "1000")
	if err != nil {
		t.Fatal(err)
	}
	var loss, top1, top5 float64
	if _, err := fmt.Sscanf(evalOut[strings.Index(evalOut, "loss "):], "loss %f  top-1 %f%%  top-5 %f%%", &loss, &top1, &top5); err != nil {
		t.Fatalf("eval output %q: %v", evalOut, err)
	}
	if !strings.Contains(evalOut, "1000 samples") || top1 < 70 || top5 < top1 {
		t.Errorf("eval after 200 steps: %q", evalOut)
	}
	// The run's config.toml works as --config too.
	if _, err := runCLI(t, "eval", "--weights", best, "--config", filepath.Join(out, "config.toml"), "--device", "cpu", "--limit", "100"); err != nil {
		t.Errorf("eval --config config.toml: %v", err)
	}

	images, labels := writeDigits(t, 20)
	// Test data of other classes (folders cat and dog) than the weights'
	// digits: refused by name, not scored against the wrong labels.
	pets := t.TempDir()
	for i, class := range []string{"cat", "dog"} {
		for _, split := range []string{"train", "val"} {
			dir := filepath.Join(pets, split, class)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(images[i])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "a.png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := runCLI(t, "eval", "--weights", best, "--device", "cpu", "--data", "folder:"+pets); err == nil ||
		!strings.Contains(err.Error(), `class 0 is "cat", the weights' is "0"`) {
		t.Errorf("eval on other classes: %v, want a refusal naming them", err)
	}
	text, err := runCLI(t, append([]string{"predict", "--weights", best, "--device", "cpu", "--top", "3"}, images[:2]...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, images[0]) || !strings.Contains(text, "  3. ") {
		t.Errorf("predict text output:\n%s", text)
	}

	jsonOut, err := runCLI(t, append([]string{"predict", "--weights", best, "--device", "cpu", "--json"}, images...)...)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(jsonOut))
	lines, correct := 0, 0
	for sc.Scan() {
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", lines+1, err, sc.Text())
		}
		for _, key := range []string{"image", "top", "logits"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("line %d has no %q: %s", lines+1, key, sc.Text())
			}
		}
		var p prediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Image != images[lines] || len(p.Logits) != 10 || len(p.Top) != 5 {
			t.Errorf("line %d: image %q, %d logits, %d top entries", lines+1, p.Image, len(p.Logits), len(p.Top))
		}
		arg := 0
		for c, v := range p.Logits {
			if v > p.Logits[arg] {
				arg = c
			}
		}
		if p.Top[0].Class != arg || p.Top[0].Label != fmt.Sprint(arg) || p.Top[0].Probability < p.Top[1].Probability {
			t.Errorf("line %d: top %+v does not match the logits' argmax %d", lines+1, p.Top, arg)
		}
		if int32(arg) == labels[lines] {
			correct++
		}
		lines++
	}
	if lines != len(images) {
		t.Errorf("%d JSON lines for %d images", lines, len(images))
	}
	if correct < len(images)*7/10 {
		t.Errorf("predict got %d of %d test digits right", correct, len(images))
	}
}

// TestCommandErrors checks that bad input gets a message saying what to do.
func TestCommandErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.safetensors")
	// A training config whose model_config (beside it) is malformed: the
	// error names the file beside the config, not one in the working
	// directory.
	cfgDir := t.TempDir()
	cfgFile := filepath.Join(cfgDir, "train.toml")
	if err := os.WriteFile(cfgFile, []byte("model_config = \"net.toml\"\nepochs = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "net.toml"), []byte("layers = [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--weights", missing}, "alexcl train"},
		{[]string{"eval"}, "weights file runs/mini/best.safetensors does not exist: train one with `alexcl train`"},
		{[]string{"predict", "--weights", missing, "x.png"}, "does not exist"},
		{[]string{"predict", "--weights", missing}, "no images"},
		{[]string{"train", "--epochs", "0", "--max-steps", "0", "--device", "cpu", "--out", t.TempDir()}, "at least one epoch"},
		{[]string{"train", "--resume", "--out", filepath.Join(t.TempDir(), "none")}, "earlier alexcl train"},
		{[]string{"train", "--preset", "tiny"}, "unknown preset"},
		{[]string{"summary", "mini"}, "--preset mini"},
		{[]string{"summary", "--batch", "-1"}, "--batch -1"},
		{[]string{"eval", "--weights", missing, "--limit", "-5"}, "--limit -5"},
		{[]string{"bench", "--device", "cpu", "paper"}, "--preset paper"},
		{[]string{"selftest", "--device", "cpu", "extra"}, "selftest takes no arguments"},
		{[]string{"list-devices", "gpu0"}, "list-devices takes no arguments"},
		{[]string{"train", "--resume", "--preset", "paper", "--out", t.TempDir()}, "drop --config and --preset"},
		{[]string{"train", "--config", cfgFile, "--device", "cpu", "--out", filepath.Join(t.TempDir(), "m")}, filepath.Join(cfgDir, "net.toml")},
		{[]string{"train", "--data", "imagenet", "--device", "cpu", "--out", t.TempDir()}, "folder:DIR"},
		{[]string{"train", "--device", "gpu7", "--max-steps", "1", "--out", filepath.Join(t.TempDir(), "d")}, "cpu"},
	}
	for _, c := range cases {
		_, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("alexcl %s: error %v, want one mentioning %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

package model

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPresetPaperNumbers(t *testing.T) {
	c, err := Preset("paper")
	if err != nil {
		t.Fatal(err)
	}
	layers, err := c.Layers()
	if err != nil {
		t.Fatal(err)
	}
	params, flops := Totals(layers)
	if params != 60965224 {
		t.Errorf("paper: %d parameters, want 60,965,224", params)
	}
	// 0.72 GMAC per 227x227 image forward (shared/anchors/README.md).
	if flops < 1.44e9 || flops > 1.46e9 {
		t.Errorf("paper: %d forward FLOPs, want about 1.45e9", flops)
	}
	if len(layers) != 15+7 {
		t.Fatalf("paper: %d layers, want 22", len(layers))
	}
	conv1 := layers[0]
	if conv1.Name != "features.0" || conv1.Out != (Shape{96, 55, 55}) || conv1.Params != 34944 || conv1.FLOPs != 2*96*55*55*3*11*11 {
		t.Errorf("conv1: %+v", conv1)
	}
	if got := layers[14].Out; got != (Shape{256, 6, 6}) {
		t.Errorf("features.14 output %v, want 6x6x256", got)
	}
	fc6 := layers[16]
	if fc6.Name != "classifier.1" || !reflect.DeepEqual(fc6.WeightShape, []int{4096, 9216}) {
		t.Errorf("fc6: %s %v, want classifier.1 [4096 9216]", fc6.Name, fc6.WeightShape)
	}
	conv2 := layers[4]
	if !reflect.DeepEqual(conv2.WeightShape, []int{256, 48, 5, 5}) {
		t.Errorf("conv2 weight %v, want [256 48 5 5] (groups=2)", conv2.WeightShape)
	}
	// The paper's bias init: 1 in conv2, conv4, conv5 and the hidden fully connected layers.
	var ones []string
	for _, l := range layers {
		if l.Layer.BiasInit == 1 {
			ones = append(ones, l.Name)
		}
	}
	if want := []string{"features.4", "features.10", "features.12", "classifier.1", "classifier.4"}; !reflect.DeepEqual(ones, want) {
		t.Errorf("bias_init 1 in %v, want %v", ones, want)
	}

	var b bytes.Buffer
	if err := c.Summary(&b); err != nil {
		t.Fatal(err)
	}
	line := strings.Split(b.String(), "\n")[1]
	for _, want := range []string{"features.0", "conv 96 11x11/4", "227x227x3 -> 55x55x96", "34944 params", "0.211 GFLOPs"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary line %q lacks %q", line, want)
		}
	}
	if !strings.Contains(b.String(), "60965224 params") {
		t.Errorf("summary lacks the total:\n%s", b.String())
	}
}

func TestPresetMiniNumbers(t *testing.T) {
	c, err := Preset("mini")
	if err != nil {
		t.Fatal(err)
	}
	layers, err := c.Layers()
	if err != nil {
		t.Fatal(err)
	}
	params, _ := Totals(layers)
	// 64·25+64 + 192·64·25+192 + 384·192·9+384 + 256·384·9+256 + 256·256·9+256
	// + 1024·1024+1024 + 1024·1024+1024 + 10·1024+10
	if params != 4557514 {
		t.Errorf("mini: %d parameters, want 4,557,514", params)
	}
	if got := layers[14].Out; got != (Shape{256, 2, 2}) {
		t.Errorf("features.14 output %v, want 2x2x256", got)
	}
	var b bytes.Buffer
	if err := c.Summary(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "4557514 params") || !strings.Contains(b.String(), "28x28x1 -> 28x28x64") {
		t.Errorf("mini summary:\n%s", b.String())
	}
}

func TestConfigTOMLRoundTrip(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.TOML()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConfig([]byte(s), name+" round trip")
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, s)
		}
		l1, _ := c.Layers()
		l2, _ := c2.Layers()
		if !reflect.DeepEqual(l1, l2) {
			t.Errorf("%s: layers differ after a TOML round trip", name)
		}
	}
}

func TestConfigOverrides(t *testing.T) {
	c, _ := Preset("paper")
	c2 := c.WithClasses(10).WithHidden(512).WithDropout(0).WithInput(3, 195, 195)
	layers, err := c2.Layers()
	if err != nil {
		t.Fatal(err)
	}
	last := layers[len(layers)-1]
	if last.Out.C != 10 || layers[16].Out.C != 512 || layers[19].Out.C != 512 {
		t.Errorf("overrides not applied: classes %d hidden %d/%d", last.Out.C, layers[16].Out.C, layers[19].Out.C)
	}
	if layers[15].Layer.P != 0 || layers[18].Layer.P != 0 {
		t.Errorf("dropout override not applied")
	}
	if layers[14].Out != (Shape{256, 5, 5}) {
		t.Errorf("195x195 input gives %v at features.14, want 5x5x256", layers[14].Out)
	}
	// The original is untouched.
	if l, _ := c.Layers(); l[len(l)-1].Out.C != 1000 || l[16].Out.C != 4096 {
		t.Errorf("With* modified the original config")
	}
}

func TestConfigErrors(t *testing.T) {
	paper, _ := Preset("paper")
	cases := []struct {
		name string
		c    Config
		want []string
	}{
		{"input too small", paper.WithInput(3, 60, 60), []string{"features.14 maxpool", "input 2x2x256", "3x3 window", "0x0x256"}},
		{"kernel too large", paper.WithInput(3, 8, 8), []string{"features.0 conv", "input 8x8x3", "11x11 kernel"}},
		{"zero classes", paper.WithClasses(0), []string{"classes = 0"}},
		{"zero input", paper.WithInput(0, 227, 227), []string{"input 227x227x0"}},
		{"bad dropout", paper.WithDropout(1), []string{"dropout = 1"}},
		{"zero hidden", paper.WithHidden(0), []string{"classifier.1 linear", "hidden"}},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}

	groups := paper.clone()
	groups.Features[4].Groups = 5
	if err := groups.Validate(); err == nil || !strings.Contains(err.Error(), "features.4 conv") || !strings.Contains(err.Error(), "groups = 5") {
		t.Errorf("groups 5 on 96 channels: %v", err)
	}
	wrongKey := paper.clone()
	wrongKey.Features[1].Kernel = 3
	if err := wrongKey.Validate(); err == nil || !strings.Contains(err.Error(), `features.1 relu: key "kernel" does not apply`) {
		t.Errorf("kernel on relu: %v", err)
	}
	lastOut := paper.clone()
	lastOut.Classifier[6].Out = 7
	if err := lastOut.Validate(); err == nil || !strings.Contains(err.Error(), "classifier.6 linear") {
		t.Errorf("last linear out != classes: %v", err)
	}
	neg := paper.clone()
	neg.Features[0].Pad = -1
	if err := neg.Validate(); err == nil || !strings.Contains(err.Error(), "pad = -1") {
		t.Errorf("negative pad: %v", err)
	}
	typo := paper.clone()
	typo.Features[0].Type = "convolution"
	if err := typo.Validate(); err == nil || !strings.Contains(err.Error(), `unknown layer type "convolution"`) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "classes = 10\nhidden = 8\n[input]\nchannels = 1\nheight = 8\nwidth = 8\n" +
		"[[features]]\ntype = \"conv\"\nout = 4\nkernel = 3\n" +
		"[[classifier]]\ntype = \"linear\"\n"
	if _, err := LoadConfig(write("ok.toml", base)); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	// Unknown keys, with the line they are on.
	p := write("unknown.toml", "colour = 1\n"+strings.Replace(base, "kernel = 3", "kernel = 3\nkernal = 3", 1))
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), p+":12: unknown key \"features.kernal\"") || !strings.Contains(err.Error(), p+`:1: unknown key "colour"`) {
		t.Errorf("unknown keys: %v", err)
	}
	// Syntax errors carry file and line.
	p = write("syntax.toml", "classes = 10\nhidden = = 8\n")
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p+":2:") {
		t.Errorf("syntax error: %v", err)
	}
	// Type errors too.
	p = write("type.toml", strings.Replace(base, "out = 4", "out = \"four\"", 1))
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 9") {
		t.Errorf("type error: %v", err)
	}
	// Shape errors name the file and the layer.
	p = write("shape.toml", strings.Replace(base, "kernel = 3", "kernel = 9", 1))
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p+": features.0 conv") {
		t.Errorf("shape error: %v", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.toml")); err == nil {
		t.Errorf("missing file: no error")
	}
	if _, err := Preset("resnet"); err == nil || !strings.Contains(err.Error(), "mini, paper") {
		t.Errorf("unknown preset: %v", err)
	}
}

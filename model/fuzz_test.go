package model

import (
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// tinyNet is a valid network TOML small enough to mutate usefully.
const tinyNet = `classes = 3
hidden = 8
[input]
channels = 1
height = 8
width = 8
[[features]]
type = "conv"
out = 4
kernel = 3
[[features]]
type = "maxpool"
size = 2
[[classifier]]
type = "dropout"
p = 0.5
[[classifier]]
type = "linear"
`

// TestConfigLimits checks that sizes no device could hold, and floats
// that are not numbers, are rejected by validation, before anything is
// allocated, with the layer named.
func TestConfigLimits(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		want           []string
	}{
		{"1e12 channels", "out = 4", "out = 1000000000000", []string{"features.0 conv", "out = 1000000000000", "at most 16777216"}},
		{"huge linear", "type = \"dropout\"\np = 0.5", "type = \"linear\"\nout = 16000000\n[[classifier]]\ntype = \"linear\"\nout = 16000000",
			[]string{"classifier.1 linear", "weight [16000000 16000000]", "more than 17179869184 elements"}},
		{"huge input", "height = 8\nwidth = 8", "height = 16000000\nwidth = 16000000", []string{"input 16000000x16000000x1", "more than 17179869184 elements"}},
		{"huge output", "out = 4\nkernel = 3", "out = 16000000\nkernel = 1\npad = 16000000", []string{"features.0 conv", "output has more than"}},
		{"huge pad", "kernel = 3", "kernel = 3\npad = 9000000000000000000", []string{"features.0 conv", "pad = 9000000000000000000", "at most"}},
		{"negative out", "out = 4", "out = -4", []string{"features.0 conv", "out = -4", "must be positive"}},
		{"zero kernel", "kernel = 3", "kernel = 0\nstride = 1", []string{"features.0 conv", "kernel = 0"}},
		{"zero classes", "classes = 3", "classes = 0", []string{"classes = 0"}},
		{"negative input", "channels = 1", "channels = -1", []string{"input 8x8x-1", "must be positive"}},
		{"nan p", "p = 0.5", "p = nan", []string{"classifier.0 dropout", "p = NaN", "finite"}},
		{"inf bias", "kernel = 3", "kernel = 3\nbias_init = inf", []string{"features.0 conv", "bias_init = +Inf"}},
		{"nan std", "hidden = 8", "hidden = 8\nweight_std = nan", []string{"weight_std = NaN"}},
		{"nan dropout", "hidden = 8", "hidden = 8\ndropout = nan", []string{"dropout = NaN"}},
	} {
		text := strings.Replace(tinyNet, tc.old, tc.new, 1)
		if text == tinyNet {
			t.Fatalf("%s: %q not in the base config", tc.name, tc.old)
		}
		start := time.Now()
		_, err := ParseConfig([]byte(text), "net.toml")
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range append(tc.want, "net.toml") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: rejecting took %v", tc.name, d)
		}
	}
	c, err := ParseConfig([]byte(tinyNet), "net.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeviceBytes(math.MaxInt); err == nil || !strings.Contains(err.Error(), "batch") {
		t.Errorf("DeviceBytes(MaxInt) = %v, want an overflow error", err)
	}
	if n, err := c.DeviceBytes(1 << 20); err != nil || n <= 0 {
		t.Errorf("DeviceBytes(2^20) = %d, %v", n, err)
	}
}

// FuzzParseConfig feeds network TOML to ParseConfig: it must not panic,
// a config it accepts must resolve, give a finite, non-negative memory
// estimate (or an error) at any batch, print its summary, and survive a
// round trip through TOML unchanged. Seeds: the presets, tinyNet and the
// files in testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	for _, name := range PresetNames() {
		b, err := PresetTOML(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(tinyNet))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "fuzz")
		if err != nil {
			return
		}
		layers, err := c.Layers()
		if err != nil {
			t.Fatalf("ParseConfig accepted what Layers rejects: %v", err)
		}
		params, flops := Totals(layers)
		if params < 0 || flops < 0 {
			t.Fatalf("totals overflow: %d params, %d FLOPs", params, flops)
		}
		for _, batch := range []int{0, 1, 4096, math.MaxInt32, math.MaxInt} {
			if n, err := c.DeviceBytes(batch); err == nil && n < 0 {
				t.Fatalf("DeviceBytes(%d) = %d", batch, n)
			}
		}
		if err := c.Summary(io.Discard); err != nil {
			t.Fatalf("Summary: %v", err)
		}
		text, err := c.TOML()
		if err != nil {
			t.Fatalf("TOML: %v", err)
		}
		back, err := ParseConfig([]byte(text), "round trip")
		if err != nil {
			t.Fatalf("the TOML of an accepted config does not parse: %v\n%s", err, text)
		}
		if text2, _ := back.TOML(); text2 != text {
			t.Fatalf("round trip changed the config:\n%s\n---\n%s", text, text2)
		}
	})
}

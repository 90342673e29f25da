package train

import (
	"strings"
	"testing"
)

// FuzzParseConfig feeds training-config TOML to ParseConfig: it must not
// panic; Validate, Network and the memory estimate of an accepted config
// must not panic or overflow; and its TOML must parse back to the same
// text. Seeds: the default config, a resolved run config and the files in
// testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	def, err := DefaultConfig().TOML()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(def))
	resolved, err := testConfig(f, "mnist", 0.5).TOML()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(resolved))
	f.Add([]byte("preset = \"paper\"\nepochs = 90\nbatch = 256\nkeep = 5\nstrict = true\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "fuzz")
		if err != nil {
			return
		}
		_ = c.Validate()
		if c.ModelConfig == "" { // a model_config file would be read from disk
			if mc, err := c.Network(); err == nil {
				if n, err := mc.DeviceBytes(max(c.Batch, 0)); err == nil && n < 0 {
					t.Fatalf("DeviceBytes(%d) = %d", c.Batch, n)
				}
			}
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

// TestConfigErrors checks the messages for training settings that cannot
// work: each names the key, the value and what it must be.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"batch = 0", "batch = 0: must be at least 1"},
		{"batch = -8", "batch = -8: must be at least 1"},
		{"epochs = -1", "epochs = -1: must not be negative"},
		{"epochs = 0\nmax_steps = 0", "give at least one epoch or step"},
		{"epochs = 9000000000", "epochs = 9000000000: must be at most"},
		{"lr = 0", "lr = 0: must be a finite number > 0"},
		{"lr = inf", "lr = +Inf: must be a finite number > 0"},
		{"lr = nan", "lr = NaN"},
		{"momentum = nan", "momentum = NaN: must be in [0, 1)"},
		{"momentum = 1", "momentum = 1: must be in [0, 1)"},
		{"weight_decay = -1", "weight_decay = -1: must be a finite number >= 0"},
		{"dropout = 1.5", "dropout = 1.5: must be in [0, 1)"},
		{"keep = -1", "keep = -1: must be >= 1"},
		{"workers = -2", "workers = -2: must not be negative"},
		{"checkpoint_every = -5", "checkpoint_every = -5"},
		{"out = \"\"", "out is empty"},
		{"schedule = \"cosine\"", "plateau"},
		{"data = \"imagenet\"", "folder:DIR"},
		{"seed = -1", "seed = 18446744073709551615: must be in [0, 9223372036854775807]"},
	} {
		c, err := ParseConfig([]byte(tc.text+"\n"), "run.toml")
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
	// Errors in the file itself carry its name and line.
	for _, tc := range []struct{ text, want string }{
		{"preset = \"mini\"\nbatch = = 3\n", "run.toml:2:"},
		{"preset = \"mini\"\nbatchsize = 3\n", `run.toml: unknown key "batchsize"`},
		{"batch = \"many\"\n", "run.toml"},
		{"[model]\nclasses = 10\n[model.input]\nchannels = 1\nheight = 8\nwidth = 8\n[[model.features]]\ntype = \"conv\"\nout = 1000000000000\nkernel = 3\n[[model.classifier]]\ntype = \"linear\"\n",
			"run.toml: [model]: features.0 conv: out = 1000000000000: must be at most 16777216"},
	} {
		if _, err := ParseConfig([]byte(tc.text), "run.toml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
}

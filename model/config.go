package model

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Layer types a Config may list.
const (
	Conv    = "conv"
	ReLU    = "relu"
	LRN     = "lrn"
	MaxPool = "maxpool"
	Dropout = "dropout"
	Linear  = "linear"
)

// Defaults applied to a zero field (see Layer).
const (
	DefaultLRNSize   = 5
	DefaultLRNAlpha  = 1e-4
	DefaultLRNBeta   = 0.75
	DefaultLRNK      = 2.0
	DefaultWeightStd = 0.01
)

// Config describes a network as data: the input, the class count and two
// layer lists mirroring PyTorch's `features` and `classifier` nn.Sequentials.
// A layer's position in its list is its index in the parameter names
// (features.4.weight), counting ReLU, LRN, pooling and dropout as
// nn.Sequential does. The flatten between the lists is implicit and
// channel-major (C, H, W), which is a no-op on NCHW activations.
// model/presets/paper.toml documents the TOML form.
type Config struct {
	Name    string `toml:"name,omitempty"`
	Input   Input  `toml:"input"`
	Classes int    `toml:"classes"`
	// Hidden is the width of every linear layer but the last whose Out is 0.
	Hidden int `toml:"hidden,omitzero"`
	// Dropout, when set, overrides the p of every dropout layer.
	Dropout *float64 `toml:"dropout,omitempty"`
	// Init names how weights start: "normal" (the paper's: N(0, WeightStd²),
	// the default) or "he" (N(0, 2/fan_in), He et al. 2015, where fan_in is
	// a weight's inputs: C/Groups·R·S for conv, the input width for linear).
	// Biases start at each layer's bias_init either way.
	Init string `toml:"init,omitempty"`
	// WeightStd is the standard deviation of "normal" weights (0: 0.01).
	WeightStd  float64 `toml:"weight_std,omitzero"`
	Features   []Layer `toml:"features"`
	Classifier []Layer `toml:"classifier"`
}

// Input is the shape of one input image, channel-major.
type Input struct {
	Channels int `toml:"channels"`
	Height   int `toml:"height"`
	Width    int `toml:"width"`
}

// Layer is one entry of a Config's layer lists. Which fields a type uses:
//
//	conv     Out, Kernel, Stride (0: 1), Pad, Groups (0: 1), BiasInit
//	relu     -
//	lrn      Size (0: 5), Alpha (0: 1e-4), Beta (0: 0.75), K (0: 2), as torch.nn.LocalResponseNorm
//	maxpool  Size, Stride (0: Size)
//	dropout  P (0 disables it)
//	linear   Out (0: Config.Hidden, or Config.Classes for the last linear), BiasInit
//
// Setting a field the type does not use is a validation error.
type Layer struct {
	Type     string  `toml:"type"`
	Out      int     `toml:"out,omitzero"`
	Kernel   int     `toml:"kernel,omitzero"`
	Stride   int     `toml:"stride,omitzero"`
	Pad      int     `toml:"pad,omitzero"`
	Groups   int     `toml:"groups,omitzero"`
	Size     int     `toml:"size,omitzero"`
	Alpha    float64 `toml:"alpha,omitzero"`
	Beta     float64 `toml:"beta,omitzero"`
	K        float64 `toml:"k,omitzero"`
	P        float64 `toml:"p,omitzero"`
	BiasInit float64 `toml:"bias_init,omitzero"`
}

//go:embed presets/*.toml
var presetFS embed.FS

// PresetNames lists the built-in presets.
func PresetNames() []string {
	ents, _ := presetFS.ReadDir("presets")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// Preset returns a built-in network: "paper" (AlexNet 2012, 227×227×3,
// 1000 classes) or "mini" (the same structure on 28×28×1, 10 classes).
// Both match ci/torch/alexnet_torch.py layer for layer.
func Preset(name string) (Config, error) {
	data, err := presetFS.ReadFile("presets/" + name + ".toml")
	if err != nil {
		return Config{}, fmt.Errorf("unknown preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
	}
	c, err := ParseConfig(data, "preset "+name)
	if err != nil {
		return Config{}, err
	}
	return c, nil
}

// PresetTOML returns the TOML text of a built-in preset.
func PresetTOML(name string) ([]byte, error) {
	data, err := presetFS.ReadFile("presets/" + name + ".toml")
	if err != nil {
		return nil, fmt.Errorf("unknown preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
	}
	return data, nil
}

// LoadConfig reads a network description from a TOML file and validates it.
// Syntax errors carry the file and line; unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("network config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig decodes and validates a network description in TOML; source
// names the text in error messages (a file path, say).
func ParseConfig(data []byte, source string) (Config, error) {
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, fmt.Errorf("%s:%d: %s", source, pe.Position.Line, pe.Message)
		}
		return Config{}, fmt.Errorf("%s: %s", source, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		var msgs []string
		for _, k := range und {
			msgs = append(msgs, fmt.Sprintf("%s:%s: unknown key %q", source, keyLines(data, k[len(k)-1]), k.String()))
		}
		return Config{}, errors.New(strings.Join(msgs, "; "))
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", source, err)
	}
	return c, nil
}

// keyLines returns the lines on which key is assigned, for error messages.
func keyLines(data []byte, key string) string {
	re := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*=`)
	var lines []string
	for i, l := range strings.Split(string(data), "\n") {
		if re.MatchString(l) {
			lines = append(lines, fmt.Sprint(i+1))
		}
	}
	if len(lines) == 0 {
		return "?"
	}
	return strings.Join(lines, ",")
}

// TOML encodes c in the format LoadConfig reads.
func (c Config) TOML() (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return "", fmt.Errorf("encode network config: %w", err)
	}
	return b.String(), nil
}

// clone returns a deep copy of c.
func (c Config) clone() Config {
	c.Features = append([]Layer(nil), c.Features...)
	c.Classifier = append([]Layer(nil), c.Classifier...)
	if c.Dropout != nil {
		p := *c.Dropout
		c.Dropout = &p
	}
	return c
}

// lastLinear returns the index in Classifier of the last linear layer, or -1.
func (c Config) lastLinear() int {
	for i := len(c.Classifier) - 1; i >= 0; i-- {
		if c.Classifier[i].Type == Linear {
			return i
		}
	}
	return -1
}

// WithClasses returns a copy of c with n output classes.
func (c Config) WithClasses(n int) Config {
	c = c.clone()
	c.Classes = n
	if i := c.lastLinear(); i >= 0 {
		c.Classifier[i].Out = 0
	}
	return c
}

// WithInput returns a copy of c taking channels×height×width images.
func (c Config) WithInput(channels, height, width int) Config {
	c = c.clone()
	c.Input = Input{Channels: channels, Height: height, Width: width}
	return c
}

// WithHidden returns a copy of c whose hidden linear layers (all but the
// last) are n wide.
func (c Config) WithHidden(n int) Config {
	c = c.clone()
	c.Hidden = n
	last := c.lastLinear()
	for i := range c.Classifier {
		if c.Classifier[i].Type == Linear && i != last {
			c.Classifier[i].Out = 0
		}
	}
	return c
}

// WithDropout returns a copy of c whose dropout layers all drop with
// probability p (0 turns dropout off).
func (c Config) WithDropout(p float64) Config {
	c = c.clone()
	c.Dropout = &p
	return c
}

// dropoutP is the drop probability a dropout layer uses.
func (c Config) dropoutP(l Layer) float64 {
	if c.Dropout != nil {
		return *c.Dropout
	}
	return l.P
}

// Weight initialisations Config.Init accepts.
const (
	InitNormal = "normal"
	InitHe     = "he"
)

// weightStd is the standard deviation of the initial weights of a layer
// whose weight has fanIn inputs per output.
func (c Config) weightStd(fanIn int) float64 {
	if c.Init == InitHe {
		return math.Sqrt(2 / float64(fanIn))
	}
	if c.WeightStd == 0 {
		return DefaultWeightStd
	}
	return c.WeightStd
}

// Validate reports whether c describes a network that can be built, and
// if not, which layer is wrong and why.
func (c Config) Validate() error {
	_, err := c.Layers()
	return err
}

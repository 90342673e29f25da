package train

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/model"
)

// Config is one training run, as written in a TOML file and as resolved
// into the output directory's config.toml. The network is a preset, a
// network TOML file, or an inline [model] table (the resolved config
// always carries the inline table, so config.toml alone rebuilds the net).
//
//	preset = "mini"
//	data = "mnist"
//	device = "auto"
//	epochs = 2
//	batch = 128
//	lr = 0.01
//	schedule = "step"
//	step_epochs = 1
//	out = "runs/mini"
type Config struct {
	Preset      string        `toml:"preset,omitempty"`       // built-in network: mini or paper
	ModelConfig string        `toml:"model_config,omitempty"` // network TOML file (instead of preset)
	Model       *model.Config `toml:"model,omitempty"`        // inline network (instead of preset and model_config)

	Data   string `toml:"data"`   // dataset spec: mnist, mnist:DIR, cifar10:DIR, folder:DIR
	Device string `toml:"device"` // device id: auto, cpu, gpuN, clN

	Epochs   int   `toml:"epochs"`    // passes over the training split
	MaxSteps int64 `toml:"max_steps"` // stop after this many steps in all (0: no limit)
	Batch    int   `toml:"batch"`     // images per step

	LR          float64  `toml:"lr"`           // initial learning rate
	Momentum    float64  `toml:"momentum"`     // SGD momentum
	WeightDecay float64  `toml:"weight_decay"` // L2 weight decay, as the paper applies it
	Dropout     *float64 `toml:"dropout,omitempty"`
	Seed        uint64   `toml:"seed"`    // weights, data order, augmentation and dropout masks
	Shuffle     bool     `toml:"shuffle"` // draw a new sample order every epoch
	Augment     bool     `toml:"augment"` // training augmentation (see package data)

	Schedule   string `toml:"schedule"`    // step, plateau or none
	StepEpochs int    `toml:"step_epochs"` // step: divide the rate by 10 every this many epochs
	Patience   int    `toml:"patience"`    // plateau: evaluations without a better test error

	Init            string `toml:"init,omitempty"`   // initial weights (safetensors), e.g. from PyTorch
	Out             string `toml:"out"`              // output directory
	CheckpointEvery int64  `toml:"checkpoint_every"` // steps between checkpoints (0: only at epoch ends)
	Keep            int    `toml:"keep"`             // step-numbered checkpoints kept in ckpt/ (0: all)
	LogEvery        int64  `toml:"log_every"`        // steps between training rows of metrics.csv
	Workers         int    `toml:"workers"`          // data loader goroutines (0: one per core)
	// Strict makes a corrupt, truncated or zero-byte image an error
	// instead of being skipped and counted (folder datasets).
	Strict bool `toml:"strict"`
}

// DefaultConfig is the run `alexcl train` does with no flags: the mini
// network on the embedded MNIST, on the best device found, with the paper's
// SGD settings, for two epochs with the rate divided by ten after the
// first (936 steps of 128), writing runs/mini.
func DefaultConfig() Config {
	return Config{
		Preset:          "mini",
		Data:            "mnist",
		Device:          "auto",
		Epochs:          2,
		Batch:           128,
		LR:              0.01,
		Momentum:        0.9,
		WeightDecay:     5e-4,
		Seed:            1,
		Shuffle:         true,
		Augment:         true,
		Schedule:        ScheduleStep,
		StepEpochs:      1,
		Patience:        2,
		Out:             "runs/mini",
		CheckpointEvery: 500,
		Keep:            3,
		LogEvery:        50,
	}
}

// configHead is the first line of the config.toml a run writes.
const configHead = "# Resolved by alexcl train; `alexcl train --config` and `alexcl eval --config` read it.\n"

// Beside returns c read from the file at path: its relative model_config
// taken from path's directory, where the file's author put it.
func (c Config) Beside(path string) Config {
	if c.ModelConfig != "" && !filepath.IsAbs(c.ModelConfig) {
		c.ModelConfig = filepath.Join(filepath.Dir(path), c.ModelConfig)
	}
	return c
}

// LoadConfig reads a training config from a TOML file. Keys it leaves out
// keep their DefaultConfig values; unknown keys are errors. A relative
// model_config is taken from the config file's directory.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("training config: %w", err)
	}
	c, err := ParseConfig(b, path)
	if err != nil {
		return c, err
	}
	return c.Beside(path), nil
}

// ParseConfig decodes a training config in TOML over DefaultConfig; source
// names the text in errors.
func ParseConfig(b []byte, source string) (Config, error) {
	c := DefaultConfig()
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, fmt.Errorf("%s:%d: %s", source, pe.Position.Line, pe.Message)
		}
		return Config{}, fmt.Errorf("%s: %s", source, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = fmt.Sprintf("%q", k.String())
		}
		return Config{}, fmt.Errorf("%s: unknown key %s (training keys: %s)", source, strings.Join(keys, ", "), strings.Join(configKeys(), ", "))
	}
	// The TOML decoder matches keys case-insensitively, so look for any spelling.
	presetSet := false
	for _, k := range md.Keys() {
		presetSet = presetSet || len(k) == 1 && strings.EqualFold(k[0], "preset")
	}
	if !presetSet && (c.Model != nil || c.ModelConfig != "") {
		c.Preset = "" // the default preset does not apply beside another network
	}
	if presetSet && c.Preset == "" && c.Model == nil && c.ModelConfig == "" {
		return Config{}, fmt.Errorf("%s: preset is empty: name a preset (%s), or set model_config or a [model] table", source, strings.Join(model.PresetNames(), ", "))
	}
	if err := c.checkSeed(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", source, err)
	}
	if c.Model != nil {
		if err := c.Model.Validate(); err != nil {
			return Config{}, fmt.Errorf("%s: [model]: %w", source, err)
		}
	}
	return c, nil
}

// IsTrainingConfig reports whether the TOML text b is a training config
// (it has training keys such as preset, data or a [model] table) rather
// than a bare network description (which has features and classifier).
func IsTrainingConfig(b []byte) bool {
	var m map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		return false
	}
	if _, ok := m["features"]; ok {
		return false
	}
	for _, k := range configKeys() {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// configKeys lists the top-level keys of a training config.
func configKeys() []string {
	return []string{"preset", "model_config", "model", "data", "device", "epochs", "max_steps", "batch",
		"lr", "momentum", "weight_decay", "dropout", "seed", "shuffle", "augment", "schedule",
		"step_epochs", "patience", "init", "out", "checkpoint_every", "keep", "log_every", "workers", "strict"}
}

// TOML encodes c in the format LoadConfig reads.
func (c Config) TOML() (string, error) {
	// configHead also marks a directory as alexcl's (Run).
	var b bytes.Buffer
	b.WriteString(configHead)
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return "", fmt.Errorf("encode training config: %w", err)
	}
	return b.String(), nil
}

// Network resolves the network the config names (inline table, file or
// preset, in that order of precedence) with the dropout override applied.
func (c Config) Network() (model.Config, error) {
	var (
		mc  model.Config
		err error
	)
	switch {
	case c.Model != nil:
		mc = *c.Model
	case c.ModelConfig != "":
		mc, err = model.LoadConfig(c.ModelConfig)
	case c.Preset != "":
		mc, err = model.Preset(c.Preset)
	default:
		err = errors.New("no network: set preset (mini or paper), model_config or a [model] table")
	}
	if err != nil {
		return model.Config{}, err
	}
	if c.Dropout != nil {
		mc = mc.WithDropout(*c.Dropout)
	}
	return mc, nil
}

// checkSeed rejects seeds a TOML file cannot hold (config.toml must be
// read back to resume).
func (c Config) checkSeed() error {
	if c.Seed > math.MaxInt64 {
		return fmt.Errorf("seed = %d: must be in [0, %d] (a negative seed wraps around)", c.Seed, int64(math.MaxInt64))
	}
	return nil
}

// maxEpochs bounds Config.Epochs, so the step count cannot overflow.
const maxEpochs = 1 << 30

// Validate reports the first setting that cannot work, and how to fix it.
func (c Config) Validate() error {
	if _, err := data.ParseSpec(c.Data); err != nil {
		return err
	}
	switch {
	case c.Epochs < 0:
		return fmt.Errorf("epochs = %d: must not be negative", c.Epochs)
	case c.MaxSteps < 0:
		return fmt.Errorf("max_steps = %d: must not be negative (0: no limit)", c.MaxSteps)
	case c.Epochs < 1 && c.MaxSteps < 1:
		return fmt.Errorf("epochs = %d and max_steps = %d: give at least one epoch or step", c.Epochs, c.MaxSteps)
	case c.Epochs > maxEpochs:
		return fmt.Errorf("epochs = %d: must be at most %d", c.Epochs, maxEpochs)
	case c.Batch < 1:
		return fmt.Errorf("batch = %d: must be at least 1", c.Batch)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("lr = %g: must be a finite number > 0", c.LR)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return fmt.Errorf("momentum = %g: must be in [0, 1)", c.Momentum)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight_decay = %g: must be a finite number >= 0", c.WeightDecay)
	case c.Dropout != nil && !(*c.Dropout >= 0 && *c.Dropout < 1):
		return fmt.Errorf("dropout = %g: must be in [0, 1)", *c.Dropout)
	case c.Out == "":
		return errors.New("out is empty: name an output directory")
	case c.CheckpointEvery < 0 || c.LogEvery < 0:
		return fmt.Errorf("checkpoint_every = %d, log_every = %d: must not be negative", c.CheckpointEvery, c.LogEvery)
	case c.Keep < 0:
		return fmt.Errorf("keep = %d: must be >= 1 (checkpoints kept), or 0 to keep every checkpoint", c.Keep)
	case c.Workers < 0:
		return fmt.Errorf("workers = %d: must not be negative (0: one per core)", c.Workers)
	}
	if err := c.checkSeed(); err != nil {
		return err
	}
	if _, err := newSchedule(c); err != nil {
		return err
	}
	return nil
}

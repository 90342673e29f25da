package main

// Flags and helpers shared by train, eval and predict.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl"
	"github.com/alexcl/alexcl/model"
	"github.com/alexcl/alexcl/model/safetensors"
	"github.com/alexcl/alexcl/train"
	"github.com/urfave/cli/v2"
)

// Flags of the commands that run a trained network (eval, predict).
var (
	weightsFlag = &cli.StringFlag{Name: "weights", Aliases: []string{"w"}, Value: "runs/mini/best.safetensors",
		Usage: "trained weights `FILE` (.safetensors written by alexcl train, or a PyTorch state_dict); the default is what `alexcl train` writes"}
	netPresetFlag = &cli.StringFlag{Name: "preset",
		Usage: "built-in network `NAME` (mini or paper); default: the network stored in the weights file"}
	netConfigFlag = &cli.StringFlag{Name: "config",
		Usage: "network TOML `FILE`, or a run's config.toml; default: the network stored in the weights file"}
	deviceFlag = &cli.StringFlag{Name: "device", Value: "auto",
		Usage: "device `ID`: auto (the first GPU, else cpu), cpu, gpu0, cl0, ... (alexcl list-devices)"}
)

// openCLOptions are the OpenCL settings every command uses.
//
// Kernel tunables are autotuned on a device's first use (10-20 s under
// POCL, 37 s on an H200, where the driver compiles every candidate; then
// cached beside the kernel binaries; ALEXCL_TUNE=off uses vendor defaults),
// and the tuner's progress lines go to stderr so that wait is explained,
// as do warnings (a kernel file the driver could not build).
func openCLOptions() opencl.Options {
	return opencl.Options{
		Version: version,
		Tune:    true,
		Logf: func(format string, args ...any) {
			if strings.HasPrefix(format, "warning:") ||
				strings.HasPrefix(format, "tun") && !strings.HasPrefix(format, "tuning record hit") {
				fmt.Fprintf(os.Stderr, "alexcl: "+format+"\n", args...)
			}
		},
	}
}

// openDevice opens the device --device names.
func openDevice(ctx *cli.Context) (device.Device, error) {
	return train.OpenDevice(ctx.String("device"), openCLOptions())
}

// checkpointMeta reads only the header metadata of a safetensors file; a
// missing file gets a message that says where weights come from.
func checkpointMeta(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("weights file %s does not exist: train one with `alexcl train` (it writes runs/mini/best.safetensors) or pass the path of a .safetensors file", path)
		}
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("weights %s is not a safetensors file (too short): %w", path, err)
	}
	if n > safetensors.MaxHeader {
		return nil, fmt.Errorf("weights %s is not a safetensors file (header length %d)", path, n)
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(f, h); err != nil {
		return nil, fmt.Errorf("weights %s is not a safetensors file (truncated header): %w", path, err)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(h, &header); err != nil {
		return nil, fmt.Errorf("weights %s is not a safetensors file (bad header): %w", path, err)
	}
	meta := map[string]string{}
	if raw, ok := header["__metadata__"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("weights %s: bad __metadata__: %w", path, err)
		}
	}
	return meta, nil
}

// trainedNet is what eval and predict know about a weights file.
type trainedNet struct {
	cfg     model.Config
	data    string   // dataset spec it was trained on, "" if unknown
	classes []string // class names by label, nil if unknown
}

// networkForWeights resolves the network of a weights file: --config (a
// network TOML or a run's config.toml), --preset, or the description
// alexcl stores in every checkpoint, in that order.
func networkForWeights(ctx *cli.Context) (trainedNet, error) {
	path := ctx.String("weights")
	meta, err := checkpointMeta(path)
	if err != nil {
		return trainedNet{}, err
	}
	var tn trainedNet
	tn.data = meta[train.MetaData]
	if s := meta[train.MetaClasses]; s != "" {
		if err := json.Unmarshal([]byte(s), &tn.classes); err != nil {
			tn.classes = nil
		}
	}
	switch {
	case ctx.String("config") != "":
		file := ctx.String("config")
		b, err := os.ReadFile(file)
		if err != nil {
			return tn, fmt.Errorf("--config: %w", err)
		}
		if train.IsTrainingConfig(b) {
			tc, err := train.ParseConfig(b, file)
			if err != nil {
				return tn, err
			}
			if tn.cfg, err = tc.Beside(file).Network(); err != nil {
				return tn, err
			}
			if tn.data == "" {
				tn.data = tc.Data
			}
		} else if tn.cfg, err = model.ParseConfig(b, file); err != nil {
			return tn, err
		}
	case ctx.String("preset") != "":
		if tn.cfg, err = model.Preset(ctx.String("preset")); err != nil {
			return tn, err
		}
	case meta[model.MetaConfig] != "":
		if tn.cfg, err = model.ParseConfig([]byte(meta[model.MetaConfig]), path+" (stored network)"); err != nil {
			return tn, err
		}
	default:
		return tn, fmt.Errorf("%s does not say which network it holds (it was not written by alexcl): pass --preset mini|paper or --config FILE", path)
	}
	if len(tn.classes) != tn.cfg.Classes {
		tn.classes = nil
	}
	return tn, nil
}

// classLabel is the name of class c, or its index when names are unknown.
func (tn trainedNet) classLabel(c int) string {
	if c >= 0 && c < len(tn.classes) {
		return tn.classes[c]
	}
	return fmt.Sprint(c)
}

// dataSpec parses --data, defaulting to the dataset the weights were trained on.
func (tn trainedNet) dataSpec(ctx *cli.Context) (data.Spec, error) {
	s := ctx.String("data")
	if s == "" {
		s = tn.data
	}
	if s == "" {
		return data.Spec{}, errors.New("the weights file does not name its dataset: pass --data mnist|mnist:DIR|cifar10:DIR|folder:DIR")
	}
	return data.ParseSpec(s)
}

// inputOptions are data options shaped for the network.
func (tn trainedNet) inputOptions() data.Options {
	in := tn.cfg.Input
	return data.Options{Channels: in.Channels, Height: in.Height, Width: in.Width}
}

// plural returns "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// noArgs wraps the action of a command that takes only flags: an argument
// is an error (a preset's name gets a hint), not silently ignored, as
// `alexcl summary mini` once printed paper.
func noArgs(action cli.ActionFunc) cli.ActionFunc {
	return func(ctx *cli.Context) error {
		if ctx.NArg() == 0 {
			return action(ctx)
		}
		name := ctx.Command.Name
		if a := ctx.Args().First(); slices.Contains(model.PresetNames(), a) && hasFlag(ctx, "preset") {
			return fmt.Errorf("%s takes no arguments, got %q: for the %s network, --preset %s", name, ctx.Args().Slice(), a, a)
		}
		return fmt.Errorf("%s takes no arguments, got %q: options are flags (alexcl %s --help)", name, ctx.Args().Slice(), name)
	}
}

// hasFlag reports whether ctx's command has a flag of that name.
func hasFlag(ctx *cli.Context, name string) bool {
	for _, f := range ctx.Command.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

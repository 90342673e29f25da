package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/alexcl/alexcl/train"
	"github.com/urfave/cli/v2"
)

func init() {
	def := train.DefaultConfig()
	commands = append(commands, &cli.Command{
		Name:  "train",
		Usage: "train a network (default: mini on the embedded MNIST, to runs/mini)",
		Description: "With no flags, trains the mini network on the MNIST copy built into alexcl, on\n" +
			"the first GPU (else the CPU), for 2 epochs with the paper's SGD (batch 128, lr 0.01,\n" +
			"momentum 0.9, weight decay 5e-4; lr ÷10 after epoch 1), and writes runs/mini/:\n" +
			"last.safetensors, best.safetensors (best test top-1), metrics.csv, curves.png,\n" +
			"config.toml (the resolved settings) and the resume state (state.json, ckpt/).\n" +
			"Checkpoints load in PyTorch (ci/torch/alexnet_torch.py defines the modules).\n\n" +
			"--config reads a training config TOML (as the config.toml a run writes) or a\n" +
			"network TOML; flags override it. Ctrl-C (or SIGTERM) finishes the current step,\n" +
			"saves a checkpoint and prints the command that resumes it (`--resume --out DIR`);\n" +
			"after a crash or SIGKILL the same command continues from the last checkpoint.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Value: def.Preset, Usage: "built-in network `NAME`: mini or paper"},
			&cli.StringFlag{Name: "config", Usage: "training config or network TOML `FILE`"},
			&cli.StringFlag{Name: "device", Value: def.Device, Usage: "device `ID`: auto (the first GPU, else cpu), cpu, gpu0, cl0, ..."},
			&cli.StringFlag{Name: "data", Value: def.Data, Usage: "dataset `SPEC`: mnist (embedded), mnist:DIR, cifar10:DIR, folder:DIR"},
			&cli.IntFlag{Name: "epochs", Value: def.Epochs, Usage: "passes over the training set"},
			&cli.Int64Flag{Name: "max-steps", Usage: "stop after `N` steps in all, even inside an epoch (0: no limit)"},
			&cli.IntFlag{Name: "batch", Value: def.Batch, Usage: "images per step"},
			&cli.Float64Flag{Name: "lr", Value: def.LR, Usage: "initial learning rate"},
			&cli.Float64Flag{Name: "momentum", Value: def.Momentum, Usage: "SGD momentum"},
			&cli.Float64Flag{Name: "weight-decay", Value: def.WeightDecay, Usage: "weight decay"},
			&cli.Float64Flag{Name: "dropout", DefaultText: "the network's, 0.5", Usage: "drop probability `P` of every dropout layer"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "seed of weights, data order, augmentation and dropout"},
			&cli.BoolFlag{Name: "no-shuffle", DisableDefaultText: true, Usage: "take samples in file order every epoch"},
			&cli.BoolFlag{Name: "no-augment", DisableDefaultText: true, Usage: "no training augmentation"},
			&cli.StringFlag{Name: "schedule", Value: def.Schedule, Usage: "learning-rate schedule: step (÷10 every --step-epochs), plateau (÷10 when the test error stalls for --patience epochs) or none"},
			&cli.IntFlag{Name: "step-epochs", Value: def.StepEpochs, Usage: "step schedule: epochs between ÷10"},
			&cli.IntFlag{Name: "patience", Value: def.Patience, Usage: "plateau schedule: evaluations without improvement before ÷10"},
			&cli.Int64Flag{Name: "checkpoint-every", Value: def.CheckpointEvery, Usage: "steps between checkpoints, beside every epoch end (0: epoch ends only)"},
			&cli.IntFlag{Name: "keep", Value: def.Keep, Usage: "step-numbered checkpoints kept in DIR/ckpt (0: all); last and best are kept apart"},
			&cli.BoolFlag{Name: "strict", DisableDefaultText: true, Usage: "stop at the first corrupt, truncated or zero-byte image instead of skipping and counting it"},
			&cli.StringFlag{Name: "init", Usage: "initial weights `FILE.safetensors` (alexcl's or PyTorch's state_dict)"},
			&cli.StringFlag{Name: "out", Usage: "output `DIR` (default runs/NETWORK, e.g. runs/mini)"},
			&cli.BoolFlag{Name: "resume", DisableDefaultText: true, Usage: "continue the run in --out exactly where it stopped (reads DIR/config.toml)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, DisableDefaultText: true, Usage: "print the layer table and the device"},
		},
		Action: trainAction,
	})
}

// trainConfig resolves the training config: the run directory's
// config.toml (--resume), --config, or the defaults, then the flags.
func trainConfig(ctx *cli.Context) (train.Config, error) {
	cfg := train.DefaultConfig()
	cfg.Out = ""
	switch {
	case ctx.Bool("resume"):
		if ctx.IsSet("config") || ctx.IsSet("preset") {
			return cfg, errors.New("--resume reads the run's own config.toml (its network included) from --out; drop --config and --preset (flags such as --epochs still override it)")
		}
		out := ctx.String("out")
		if out == "" {
			out = "runs/mini"
		}
		var err error
		if cfg, err = train.LoadConfig(filepath.Join(out, train.ConfigFile)); err != nil {
			return cfg, fmt.Errorf("resume %s: %w (is it the --out of an earlier alexcl train?)", out, err)
		}
		cfg.Out = out
	case ctx.IsSet("config"):
		file := ctx.String("config")
		b, err := os.ReadFile(file)
		if err != nil {
			return cfg, fmt.Errorf("--config: %w", err)
		}
		if train.IsTrainingConfig(b) {
			if cfg, err = train.ParseConfig(b, file); err != nil {
				return cfg, err
			}
			cfg = cfg.Beside(file)
		} else {
			cfg.Preset, cfg.ModelConfig = "", file
		}
	}
	if ctx.IsSet("preset") {
		cfg.Preset, cfg.ModelConfig, cfg.Model = ctx.String("preset"), "", nil
	}
	set := func(name string, apply func()) {
		if ctx.IsSet(name) {
			apply()
		}
	}
	set("device", func() { cfg.Device = ctx.String("device") })
	set("data", func() { cfg.Data = ctx.String("data") })
	set("epochs", func() { cfg.Epochs = ctx.Int("epochs") })
	set("max-steps", func() { cfg.MaxSteps = ctx.Int64("max-steps") })
	set("batch", func() { cfg.Batch = ctx.Int("batch") })
	set("lr", func() { cfg.LR = ctx.Float64("lr") })
	set("momentum", func() { cfg.Momentum = ctx.Float64("momentum") })
	set("weight-decay", func() { cfg.WeightDecay = ctx.Float64("weight-decay") })
	set("dropout", func() { p := ctx.Float64("dropout"); cfg.Dropout = &p })
	set("seed", func() { cfg.Seed = ctx.Uint64("seed") })
	set("no-shuffle", func() { cfg.Shuffle = !ctx.Bool("no-shuffle") })
	set("no-augment", func() { cfg.Augment = !ctx.Bool("no-augment") })
	set("schedule", func() { cfg.Schedule = ctx.String("schedule") })
	set("step-epochs", func() { cfg.StepEpochs = ctx.Int("step-epochs") })
	set("patience", func() { cfg.Patience = ctx.Int("patience") })
	set("checkpoint-every", func() { cfg.CheckpointEvery = ctx.Int64("checkpoint-every") })
	set("keep", func() { cfg.Keep = ctx.Int("keep") })
	set("strict", func() { cfg.Strict = ctx.Bool("strict") })
	set("init", func() { cfg.Init = ctx.String("init") })
	set("out", func() { cfg.Out = ctx.String("out") })
	if cfg.Out == "" {
		mc, err := cfg.Network()
		if err != nil {
			return cfg, err
		}
		cfg.Out = filepath.Join("runs", mc.Name)
	}
	return cfg, nil
}

// trainAction is the action of `alexcl train`.
func trainAction(ctx *cli.Context) error {
	if ctx.NArg() > 0 {
		return fmt.Errorf("train takes no arguments, got %q: options are flags (alexcl train --help)", ctx.Args().Slice())
	}
	cfg, err := trainConfig(ctx)
	if err != nil {
		return err
	}
	// The first SIGINT/SIGTERM cancels the run, which then saves a
	// checkpoint; the handler is removed at once, so a second one kills.
	runCtx, cancel := context.WithCancel(ctx.Context)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			fmt.Fprintf(os.Stderr, "\n%v: stopping after this step to save a checkpoint (again to quit without one)\n", s)
			cancel()
		case <-runCtx.Done():
		}
	}()
	_, err = train.Run(runCtx, cfg, train.RunOptions{
		Resume:  ctx.Bool("resume"),
		OpenCL:  openCLOptions(),
		Verbose: ctx.Bool("verbose"),
		Log:     os.Stderr,
	})
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}

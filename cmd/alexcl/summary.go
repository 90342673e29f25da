package main

import (
	"fmt"
	"os"

	"github.com/alexcl/alexcl/model"
	"github.com/alexcl/alexcl/train"
	"github.com/urfave/cli/v2"
)

func init() {
	commands = append(commands, &cli.Command{
		Name:  "summary",
		Usage: "print a network's layers: output shapes, parameters and FLOPs",
		Description: "Prints one line per layer, as Darknet does, for a built-in preset or a TOML\n" +
			"network description (see model/presets/paper.toml for the format), and totals.\n" +
			"FLOPs are forward, per image, counting a multiply-add as 2.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "paper", Usage: "built-in network: mini or paper"},
			&cli.StringFlag{Name: "config", Usage: "network TOML `FILE`, or a training config (a run's config.toml) to take its network (overrides --preset)"},
			&cli.IntFlag{Name: "batch", Usage: "also print the device memory a training net needs at this batch size"},
			&cli.BoolFlag{Name: "toml", Usage: "print the network description as TOML instead"},
		}, configOverrideFlags...),
		Action: noArgs(func(ctx *cli.Context) error {
			if b := ctx.Int("batch"); b < 0 {
				return fmt.Errorf("--batch %d: must be at least 1 (or left out)", b)
			}
			c, err := configFromFlags(ctx)
			if err != nil {
				return err
			}
			if ctx.Bool("toml") {
				s, err := c.TOML()
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(ctx.App.Writer, s)
				return err
			}
			if err := c.Summary(ctx.App.Writer); err != nil {
				return err
			}
			if b := ctx.Int("batch"); b > 0 {
				need, err := c.DeviceBytes(b)
				if err != nil {
					return err
				}
				fmt.Fprintf(ctx.App.Writer, "training at batch %d needs about %.2f GiB of device memory\n", b, float64(need)/(1<<30))
			}
			return nil
		}),
	})
}

// configOverrideFlags change a preset or config file's network.
var configOverrideFlags = []cli.Flag{
	&cli.IntFlag{Name: "classes", Usage: "number of output classes"},
	&cli.IntFlag{Name: "hidden", Usage: "width of the hidden fully connected layers"},
	&cli.StringFlag{Name: "input", Usage: "input image size `HxWxC`, e.g. 227x227x3"},
	&cli.Float64Flag{Name: "dropout", Value: -1, Usage: "drop probability of every dropout layer (0 turns dropout off)"},
}

// configFromFlags loads --config or --preset and applies the override flags.
func configFromFlags(ctx *cli.Context) (model.Config, error) {
	var c model.Config
	var err error
	if path := ctx.String("config"); path != "" {
		c, err = networkOfFile(path)
	} else {
		c, err = model.Preset(ctx.String("preset"))
	}
	if err != nil {
		return c, err
	}
	if n := ctx.Int("classes"); ctx.IsSet("classes") {
		c = c.WithClasses(n)
	}
	if n := ctx.Int("hidden"); ctx.IsSet("hidden") {
		c = c.WithHidden(n)
	}
	if s := ctx.String("input"); s != "" {
		var h, w, ch int
		if _, err := fmt.Sscanf(s, "%dx%dx%d", &h, &w, &ch); err != nil {
			return c, fmt.Errorf("--input %q: want HxWxC, e.g. 227x227x3", s)
		}
		c = c.WithInput(ch, h, w)
	}
	if ctx.IsSet("dropout") {
		c = c.WithDropout(ctx.Float64("dropout"))
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("network %s: %w", c.Name, err)
	}
	return c, nil
}

// networkOfFile reads the network of a TOML file: a network description,
// or a training config (a run's config.toml) whose network it takes.
func networkOfFile(path string) (model.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return model.Config{}, fmt.Errorf("network config: %w", err)
	}
	if !train.IsTrainingConfig(b) {
		return model.LoadConfig(path)
	}
	cfg, err := train.ParseConfig(b, path)
	if err != nil {
		return model.Config{}, err
	}
	return cfg.Beside(path).Network()
}

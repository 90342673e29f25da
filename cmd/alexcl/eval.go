package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/model"
	"github.com/alexcl/alexcl/train"
	"github.com/urfave/cli/v2"
)

func init() {
	commands = append(commands, &cli.Command{
		Name:  "eval",
		Usage: "loss, top-1 and top-5 accuracy of trained weights on a test/val split",
		Description: "Evaluates --weights on the test split (val/ for folder datasets) of --data,\n" +
			"by default the dataset the weights were trained on. The network comes from the\n" +
			"weights file itself when alexcl wrote it; otherwise pass --preset or --config.\n" +
			"--ten-crop averages the softmax of the paper's 10 views (folder datasets).",
		Flags: []cli.Flag{
			weightsFlag, netPresetFlag, netConfigFlag, deviceFlag,
			&cli.StringFlag{Name: "data", Usage: "dataset `SPEC` (default: the one the weights were trained on)"},
			&cli.BoolFlag{Name: "ten-crop", Usage: "average the 4 corner + centre crops and their mirrors (folder datasets)"},
			&cli.IntFlag{Name: "batch", Value: 128, Usage: "images per forward pass"},
			&cli.IntFlag{Name: "limit", Usage: "evaluate only the first `N` samples (0: all)"},
		},
		Action: evalAction,
	})
}

// evalAction is the action of `alexcl eval`.
func evalAction(ctx *cli.Context) error {
	if ctx.NArg() > 0 {
		return fmt.Errorf("eval takes no arguments, got %q: pass the weights with --weights", ctx.Args().Slice())
	}
	batch := ctx.Int("batch")
	if batch < 1 {
		return fmt.Errorf("--batch %d: must be at least 1", batch)
	}
	if l := ctx.Int("limit"); l < 0 {
		return fmt.Errorf("--limit %d: must be at least 1 (or 0, the default: every sample)", l)
	}
	tn, err := networkForWeights(ctx)
	if err != nil {
		return err
	}
	spec, err := tn.dataSpec(ctx)
	if err != nil {
		return err
	}
	opts := tn.inputOptions()
	opts.TenCrop = ctx.Bool("ten-crop")
	if opts.TenCrop && batch < 10 {
		return fmt.Errorf("--batch %d cannot hold the 10 views of one sample: use --batch 10 or more", batch)
	}
	ds, err := data.Open(spec, "test", opts)
	if err != nil {
		return fmt.Errorf("test data: %w", err)
	}
	if ds.Classes() > tn.cfg.Classes {
		return fmt.Errorf("%s has %d classes but the network only %d: evaluate on the dataset it was trained on", spec, ds.Classes(), tn.cfg.Classes)
	}
	// Labels are class indices: the test data's classes must be the
	// weights' (or their first ones), by name where the weights know them.
	if names := ds.ClassNames(); len(tn.classes) >= len(names) {
		for i, n := range names {
			if tn.classes[i] != n {
				return fmt.Errorf("%s's class %d is %q, the weights' is %q: evaluate on the dataset they were trained on (its classes: %s)",
					spec, i, n, tn.classes[i], abbrev(tn.classes, 10))
			}
		}
	} else if ds.Classes() < tn.cfg.Classes {
		fmt.Fprintf(os.Stderr, "note: %s has %d classes and the network %d: its labels are taken as the network's first %d classes\n",
			spec, ds.Classes(), tn.cfg.Classes, ds.Classes())
	}
	if batch > ds.Len()*ds.Views() {
		batch = ds.Len() * ds.Views()
	}
	d, err := openDevice(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	net, err := model.New(d, tn.cfg, batch)
	if err != nil {
		return err
	}
	defer net.Close()
	if err := net.Load(ctx.String("weights")); err != nil {
		return err
	}
	t0 := time.Now()
	res, err := train.Evaluate(ctx.Context, net, ds, train.EvalOptions{Batch: batch, Limit: ctx.Int("limit")})
	if err != nil {
		return err
	}
	crop := ""
	if res.Views > 1 {
		crop = fmt.Sprintf(", %d-crop", res.Views)
	}
	fmt.Fprintf(ctx.App.Writer, "%s on %s test split (%d samples%s, %s, %s):\n", ctx.String("weights"), spec, res.Samples, crop, d.Info().ID, time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(ctx.App.Writer, "loss %.4f  top-1 %.2f%%  top-5 %.2f%%\n", res.Loss, 100*res.Top1, 100*res.Top5)
	if ds.Skipped() > 0 {
		fmt.Fprintf(os.Stderr, "note: %d unreadable image(s) were replaced by blank ones\n", ds.Skipped())
	}
	return nil
}

// abbrev joins the first n of names, and says how many more there are.
func abbrev(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d in all)", strings.Join(names[:n], ", "), len(names))
}

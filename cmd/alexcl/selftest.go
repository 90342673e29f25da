package main

import (
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/devicetest"
	"github.com/alexcl/alexcl/device/lookup"
	"github.com/urfave/cli/v2"
)

func init() {
	commands = append(commands, &cli.Command{
		Name:  "selftest",
		Usage: "check every op of a device against the Go reference and PyTorch fixtures",
		Description: "Runs the device test suite (package device/devicetest) on one device: buffer\n" +
			"handling, the error contract and every op forward and backward on awkward shapes,\n" +
			"compared with the plain Go reference computed on the host, then the embedded\n" +
			"PyTorch fixtures. Prints one line per case and exits with status 1 if any fails.\n" +
			"`alexcl list-devices` shows the device IDs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "device", Value: "auto", Usage: "device `ID` to test: auto (the first GPU, else cpu), cpu, cl0, ..."},
			&cli.StringFlag{Name: "run", Usage: "only run cases whose op/shape matches `REGEXP`"},
			&cli.BoolFlag{Name: "no-torch", Usage: "skip the PyTorch fixtures"},
		},
		Action: noArgs(selftest),
	})
}

// selftest is the action of `alexcl selftest`.
func selftest(ctx *cli.Context) error {
	var filter *regexp.Regexp
	if s := ctx.String("run"); s != "" {
		re, err := regexp.Compile(s)
		if err != nil {
			return cli.Exit(fmt.Sprintf("selftest: --run: %v", err), 2)
		}
		filter = re
	}
	cases := devicetest.Cases()
	if !ctx.Bool("no-torch") {
		cases = append(cases, devicetest.TorchCases()...)
	}
	if filter != nil {
		var kept []devicetest.Case
		for _, c := range cases {
			if filter.MatchString(c.Name()) {
				kept = append(kept, c)
			}
		}
		cases = kept
	}
	if len(cases) == 0 {
		return cli.Exit("selftest: no case matches --run", 2)
	}
	d, err := lookup.Open(ctx.String("device"), openCLOptions())
	if err != nil {
		return fmt.Errorf("selftest: %w", err)
	}
	defer d.Close()
	info := d.Info()
	w := ctx.App.Writer
	fmt.Fprintf(w, "selftest on %s: %s (%s, %s)\n\n", info.ID, info.Name, info.Platform, info.Type)
	failed, skipped := runSelftest(w, d, cases)
	fmt.Fprintf(w, "\n%d cases: %d passed, %d failed, %d skipped\n", len(cases), len(cases)-failed-skipped, failed, skipped)
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("selftest: %d of %d cases failed on %s", failed, len(cases), info.ID), 1)
	}
	return nil
}

// runSelftest runs cases on d, printing a row per case as it finishes
// (the shape last, as it is long) and the failures' details after the
// table, and returns how many failed and were skipped.
func runSelftest(w io.Writer, d device.Device, cases []devicetest.Case) (failed, skipped int) {
	const row = "%-22s %11s %11s %10s  %-6s %s\n"
	fmt.Fprintf(w, row, "OP", "MAX ABS ERR", "MAX REL ERR", "TIME", "RESULT", "SHAPE")
	var details []string
	for _, c := range cases {
		r := c.Run(d)
		status := "PASS"
		switch {
		case r.Failed():
			status = "FAIL"
			failed++
			details = append(details, fmt.Sprintf("FAIL %s %s: %v", c.Op, c.Shape, r.Err))
		case r.Skip != "":
			status = "SKIP"
			skipped++
			details = append(details, fmt.Sprintf("SKIP %s %s: %s", c.Op, c.Shape, r.Skip))
		}
		fmt.Fprintf(w, row, c.Op, fmt.Sprintf("%.3g", r.MaxAbs), fmt.Sprintf("%.3g", r.MaxRel),
			r.Elapsed.Round(time.Microsecond), status, c.Shape)
	}
	if len(details) > 0 {
		fmt.Fprintln(w)
		for _, s := range details {
			fmt.Fprintln(w, s)
		}
	}
	return failed, skipped
}

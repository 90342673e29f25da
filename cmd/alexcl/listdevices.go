package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/lookup"
	"github.com/urfave/cli/v2"
)

func init() {
	commands = append(commands, &cli.Command{
		Name:  "list-devices",
		Usage: "list the devices alexcl can train on (the ids --device accepts)",
		Description: "Lists the pure-Go cpu device and every OpenCL device over all platforms:\n" +
			"clN numbers all of them in order, gpuN only the GPUs. `auto` (the default\n" +
			"--device) is the first GPU, else cpu.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"},
		},
		Action: noArgs(listDevices),
	})
}

// deviceList is list-devices' JSON output.
type deviceList struct {
	Devices []lookup.Entry `json:"devices"`
	Auto    string         `json:"auto"`
	// OpenCLError says why no OpenCL device is listed, when none is.
	OpenCLError string `json:"opencl_error,omitempty"`
}

func listDevices(ctx *cli.Context) error {
	entries, listErr := lookup.List()
	out := deviceList{Devices: entries}
	for _, e := range entries {
		if e.Auto {
			out.Auto = e.ID
		}
	}
	if listErr != nil {
		out.OpenCLError = listErr.Error()
	}
	w := ctx.App.Writer
	if ctx.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tVENDOR\tPLATFORM\tTYPE\tUNITS\tCLOCK\tMEMORY\tMAX ALLOC\tLOCAL\tOPENCL C\tFP16\tFP64\tAUTO")
	for _, e := range entries {
		id := e.ID
		if len(e.Aliases) > 0 {
			id += " (" + strings.Join(e.Aliases, ", ") + ")"
		}
		cver := strings.TrimPrefix(e.CVersion, "OpenCL C ")
		if cver == "" {
			cver = "-"
		}
		auto := ""
		if e.Auto {
			auto = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			id, orDash(e.Name), orDash(e.Vendor), orDash(e.Platform), orDash(e.Type), e.ComputeUnits,
			mhz(e.ClockMHz), bytesHuman(e.GlobalMem), bytesHuman(e.MaxAlloc), bytesHuman(e.LocalMem),
			cver, yesNo(e.FP16), yesNo(e.FP64), auto)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nauto (the default --device) is %s.\n", out.Auto)
	if listErr != nil {
		fmt.Fprintf(w, "No OpenCL device: %v\n%s\n", strings.TrimPrefix(listErr.Error(), lookup.ErrNoOpenCL.Error()+": "), lookup.InstallHint)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func mhz(m int) string {
	if m <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d MHz", m)
}

// bytesHuman is device.HumanBytes, with "-" for an unknown (zero) size.
func bytesHuman(n int64) string {
	if n <= 0 {
		return "-"
	}
	return device.HumanBytes(n)
}

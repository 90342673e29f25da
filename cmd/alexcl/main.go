// Command alexcl trains and runs AlexNet on any OpenCL device, or on the
// CPU in pure Go. `alexcl help` lists the commands.
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
)

// version is alexcl's version; it is part of the OpenCL binary cache key.
var version = "0.1.0"

// commands is filled by each command's file in its init function.
var commands []*cli.Command

func main() {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	app := &cli.App{
		Name:     "alexcl",
		Usage:    "AlexNet on any GPU through OpenCL, or on the CPU in pure Go",
		Version:  version,
		Commands: commands,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "alexcl:", err)
		os.Exit(1)
	}
}

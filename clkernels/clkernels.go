// Package clkernels embeds alexcl's OpenCL C 1.2 kernel sources. Each file
// holds one layer family; its header comment lists the kernels, the shapes
// of their buffers and the -D tunables it reads. Kernel names match the Go
// ops they serve (conv2d_backward_filter ↔ Conv2DBackwardFilter).
package clkernels

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.cl
var files embed.FS

// File is one embedded .cl file.
type File struct {
	Name string // "gemm.cl"
	Text string
}

// Files returns every .cl file: common.cl first (shared definitions), then
// the rest in file-name order, so the program's source (and the binary
// cache key built from it) is stable.
func Files() []File {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".cl") {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "common.cl") != (names[j] == "common.cl") {
			return names[i] == "common.cl"
		}
		return names[i] < names[j]
	})
	out := make([]File, 0, len(names))
	for _, n := range names {
		b, _ := files.ReadFile(n)
		out = append(out, File{Name: n, Text: string(b)})
	}
	return out
}

// Sources returns the text of every .cl file, in the order of Files.
func Sources() []string {
	all := Files()
	out := make([]string, len(all))
	for i, f := range all {
		out[i] = f.Text
	}
	return out
}

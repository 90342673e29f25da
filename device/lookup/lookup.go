// Package lookup resolves the device ids a user types (--device=gpu0) to an
// opened device.Device, and lists every device for `alexcl list-devices`.
//
// Ids:
//
//	cpu    the pure-Go device (package device/cpu), always present
//	clN    the N-th OpenCL device of any type over all platforms, in order
//	       (on a machine with only POCL, its CPU device is cl0)
//	gpuN   the N-th OpenCL device of type GPU over all platforms ("gpu" is gpu0)
//	auto   the first GPU if there is one, else cpu (the default)
package lookup

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/device/opencl"
)

// Entry describes one device a user can choose.
type Entry struct {
	device.Info
	// Aliases are other ids of the same device, e.g. gpu0 for cl1.
	Aliases []string `json:"aliases,omitempty"`
	// Auto marks the device the id "auto" opens.
	Auto bool `json:"auto"`
}

// IDs returns the entry's id followed by its aliases.
func (e Entry) IDs() []string { return append([]string{e.ID}, e.Aliases...) }

// ErrNoOpenCL is wrapped by List's error when no OpenCL device can be used.
var ErrNoOpenCL = errors.New("no OpenCL device")

// InstallHint tells a user how to get an OpenCL device.
const InstallHint = "To train on a GPU, install its vendor's OpenCL driver (NVIDIA driver, AMD ROCm, " +
	"or Intel compute runtime); for OpenCL on the CPU, `apt-get install pocl-opencl-icd`."

// List returns every device: cpu first, then the OpenCL devices cl0, cl1,
// ... with their gpuN aliases, one of them marked Auto. When OpenCL cannot
// be used (no runtime, no driver, no device) it still returns the cpu entry,
// together with an error wrapping ErrNoOpenCL that says why.
func List() ([]Entry, error) {
	cpuDev := cpu.New()
	entries := []Entry{{Info: cpuDev.Info()}}
	cpuDev.Close()

	infos, err := opencl.List()
	if err == nil && len(infos) == 0 {
		err = errors.New("the OpenCL runtime lists no device")
	}
	gpu := 0
	for _, info := range infos {
		e := Entry{Info: info}
		if info.Type == "GPU" || strings.HasPrefix(info.Type, "GPU|") {
			e.Aliases = []string{fmt.Sprintf("gpu%d", gpu)}
			if gpu == 0 {
				e.Auto = true
			}
			gpu++
		}
		entries = append(entries, e)
	}
	if gpu == 0 {
		entries[0].Auto = true
	}
	if err != nil {
		return entries, fmt.Errorf("%w: %v", ErrNoOpenCL, err)
	}
	return entries, nil
}

// Open opens the device a user named (see the package comment for ids;
// "" means auto). opts configure an OpenCL device and are ignored for cpu.
// An unknown id gives an error listing the ids that exist.
func Open(id string, opts opencl.Options) (device.Device, error) {
	want := strings.ToLower(strings.TrimSpace(id))
	switch want {
	case "", "gpu":
		if want == "" {
			want = "auto"
		} else {
			want = "gpu0"
		}
	}
	entries, listErr := List()
	var chosen *Entry
	for i := range entries {
		e := &entries[i]
		if (want == "auto" && e.Auto) || e.ID == want || contains(e.Aliases, want) {
			chosen = e
			break
		}
	}
	if chosen == nil {
		return nil, unknownID(id, want, entries, listErr)
	}
	if chosen.ID == "cpu" {
		d, err := cpu.Open()
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	index, err := strconv.Atoi(strings.TrimPrefix(chosen.ID, "cl"))
	if err != nil {
		return nil, fmt.Errorf("device %q: unexpected OpenCL id %q", id, chosen.ID)
	}
	d, err := opencl.Open(index, opts)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w (--device=cpu runs on the CPU without OpenCL)", want, err)
	}
	return d, nil
}

// unknownID explains that id names no device and lists those that exist.
func unknownID(id, want string, entries []Entry, listErr error) error {
	var ids []string
	for _, e := range entries {
		s := e.ID
		if len(e.Aliases) > 0 {
			s += " (" + strings.Join(e.Aliases, ", ") + ")"
		}
		ids = append(ids, s)
	}
	ids = append(ids, "auto")
	what := "unknown device"
	if isOpenCLID(want) {
		what = "no device"
	}
	msg := fmt.Sprintf("%s %q; the devices here are: %s", what, id, strings.Join(ids, ", "))
	if listErr != nil && isOpenCLID(want) {
		msg += fmt.Sprintf(" (%v. %s)", listErr, InstallHint)
	}
	return errors.New(msg)
}

// isOpenCLID reports whether id has the form clN or gpuN.
func isOpenCLID(id string) bool {
	for _, p := range []string{"cl", "gpu"} {
		if rest, ok := strings.CutPrefix(id, p); ok {
			if _, err := strconv.ParseUint(rest, 10, 31); err == nil {
				return true
			}
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

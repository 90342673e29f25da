package train

import (
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/lookup"
	"github.com/alexcl/alexcl/device/opencl"
)

// OpenDevice opens the device a user named (cpu, gpuN, clN, auto; see
// package device/lookup). An unknown id gives an error listing the ids
// that exist.
func OpenDevice(id string, opts opencl.Options) (device.Device, error) {
	return lookup.Open(id, opts)
}

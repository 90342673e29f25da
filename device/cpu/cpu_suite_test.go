package cpu_test

import (
	"testing"

	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/device/devicetest"
)

// TestSuite runs the shared device suite and the PyTorch fixtures on the CPU device.
func TestSuite(t *testing.T) {
	d := cpu.New()
	defer d.Close()
	devicetest.RunAll(t, d)
	devicetest.RunTorch(t, d)
}

package model

import (
	"os"
	"testing"

	"github.com/alexcl/alexcl/device/opencl"
)

// TestFixturesOpenCL runs the PyTorch fixture comparison on OpenCL device 0:
// the same model code, the other device. It skips when no OpenCL platform
// can be opened, unless ALEXCL_REQUIRE_OPENCL=1.
func TestFixturesOpenCL(t *testing.T) {
	d := openCL0(t)
	for _, name := range []string{"mini_narrow", "paper_narrow"} {
		t.Run(name, func(t *testing.T) { runFixture(t, d, loadFixture(t, name)) })
	}
}

// TestFullPresetsOpenCL runs the full-size paper and mini forward passes of
// full_test.go on OpenCL device 0, against the same PyTorch logits. It skips
// when no OpenCL platform can be opened, unless ALEXCL_REQUIRE_OPENCL=1.
func TestFullPresetsOpenCL(t *testing.T) {
	d := openCL0(t)
	for _, preset := range []string{"mini", "paper"} {
		t.Run(preset, func(t *testing.T) { runFull(t, d, preset) })
	}
}

// openCL0 opens OpenCL device 0 for the test and closes it at its end. It
// skips when no OpenCL platform can be opened, unless
// ALEXCL_REQUIRE_OPENCL=1, where it fails.
func openCL0(t *testing.T) *opencl.Device {
	t.Helper()
	d, err := opencl.Open(0, opencl.Options{Version: "test"})
	if err != nil {
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but OpenCL device 0 does not open: %v", err)
		}
		t.Skipf("no OpenCL device: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	t.Logf("OpenCL device 0: %s (%s)", d.Info().Name, d.Info().Platform)
	return d
}

package opencl_test

import (
	"errors"
	"os"
	"testing"

	"github.com/alexcl/alexcl/device/devicetest"
	"github.com/alexcl/alexcl/device/opencl"
	"github.com/alexcl/alexcl/device/opencl/cl"
)

// TestSuite runs the shared device suite and the PyTorch fixtures on every
// OpenCL device found, one subtest per device ID. Without an OpenCL
// platform it skips, unless ALEXCL_REQUIRE_OPENCL=1 (as CI sets it where a
// platform such as POCL is installed), where it fails.
func TestSuite(t *testing.T) {
	infos, err := opencl.List()
	noPlatform := errors.Is(err, cl.ErrNoRuntime) || errors.Is(err, cl.PlatformNotFoundKHR) || (err == nil && len(infos) == 0)
	if noPlatform {
		const hint = "no OpenCL platform found (%v); install one (e.g. apt-get install pocl-opencl-icd ocl-icd-libopencl1) or check /etc/OpenCL/vendors"
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but "+hint, err)
		}
		t.Skipf(hint+"; set ALEXCL_REQUIRE_OPENCL=1 to make this a failure", err)
	}
	if err != nil {
		t.Fatalf("listing OpenCL devices: %v", err)
	}
	for i, info := range infos {
		t.Run(info.ID, func(t *testing.T) {
			d, err := opencl.Open(i, opencl.Options{Version: "test"})
			if err != nil {
				t.Fatalf("open %s (%s, %s): %v", info.ID, info.Name, info.Platform, err)
			}
			defer d.Close()
			t.Logf("%s: %s, %s, %s", info.ID, info.Name, info.Platform, info.Driver)
			devicetest.RunAll(t, d)
			devicetest.RunTorch(t, d)
		})
	}
}

// TestSuiteGPUFamilies runs the shared suite and the PyTorch fixtures on
// OpenCL device 0 with each GPU kernel family (tiled, blocked), whatever
// the device's type: under POCL this is how the GPU paths (implicit-GEMM
// forward convolution, im2col and col2im a work item per element, the
// filter gradient in runs of images) are checked op by op; and with
// Winograd (CONV_WINO=on, CONV_WINO5=on) on the tiled and the CPU family,
// and with the larger tiles, F(4×4, 3×3) and F(3×3, 5×5) (CONV_WINO43=on,
// CONV_WINO35=on), on both.
func TestSuiteGPUFamilies(t *testing.T) {
	infos, err := opencl.List()
	if err != nil || len(infos) == 0 {
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but no OpenCL device: %v", err)
		}
		t.Skipf("no OpenCL device: %v", err)
	}
	for _, c := range []struct {
		name    string
		defines map[string]string
	}{
		{"tiled", map[string]string{"GEMM_KIND": "tiled"}},
		{"blocked", map[string]string{"GEMM_KIND": "blocked"}},
		// Winograd for every 3x3 convolution, on a GPU family and the CPU one.
		// (CONV_WINO_MINCH=1: the suite's shapes have few channels.)
		{"tiled_winograd", map[string]string{"GEMM_KIND": "tiled", "CONV_WINO": "on", "CONV_WINO5": "on", "CONV_WINO_MINCH": "1"}},
		{"vector_winograd", map[string]string{"GEMM_KIND": "vector", "CONV_WINO": "on", "CONV_WINO5": "on", "CONV_WINO_MINCH": "1"}},
		{"tiled_winograd_large", map[string]string{"GEMM_KIND": "tiled", "CONV_WINO43": "on", "CONV_WINO35": "on", "CONV_WINO_MINCH": "1"}},
		{"vector_winograd_large", map[string]string{"GEMM_KIND": "vector", "CONV_WINO43": "on", "CONV_WINO35": "on", "CONV_WINO_MINCH": "1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := opencl.Open(0, opencl.Options{Version: "test", Defines: c.defines})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			devicetest.RunAll(t, d)
			devicetest.RunTorch(t, d)
		})
	}
}

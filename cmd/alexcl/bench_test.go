package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device/opencl"
)

// TestBench runs `alexcl bench` on a narrow network as JSON and as tables,
// on the CPU device and (where there is one) OpenCL device 0, where the
// batch is uploaded during the previous step unless --sync-upload.
func TestBench(t *testing.T) {
	t.Setenv("ALEXCL_TUNE", "off") // vendor defaults: no 15 s of tuning
	t.Setenv("ALEXCL_KERNEL_CACHE_DIR", t.TempDir())
	net := narrowNetworkFile(t)
	devices := []string{"cpu"}
	if infos, err := opencl.List(); err == nil && len(infos) > 0 {
		devices = append(devices, "cl0")
	} else if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
		t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but no OpenCL device: %v", err)
	}
	args := []string{"bench", "--config", net, "--batch", "8", "--steps", "3", "--warmup", "1"}
	for _, dev := range devices {
		for _, sync := range []bool{false, true} {
			a := append(append([]string(nil), args...), "--device", dev, "--json")
			if sync {
				a = append(a, "--sync-upload")
			}
			out, err := runCLI(t, a...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", a, err, out)
			}
			if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
				t.Fatalf("%v printed %d lines, want one JSON line:\n%s", a, n+1, out)
			}
			var r benchResult
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("%v: %v\n%s", a, err, out)
			}
			wantUpload := "in the step"
			if dev == "cl0" && !sync {
				wantUpload = "during the previous step"
			}
			if r.Device != dev || r.Batch != 8 || r.Steps != 3 || r.Network != "narrow" || r.Upload != wantUpload {
				t.Errorf("%v: device %q batch %d steps %d network %q upload %q, want %s 8 3 narrow %q",
					a, r.Device, r.Batch, r.Steps, r.Network, r.Upload, dev, wantUpload)
			}
			if r.TrainImagesPerSecond <= 0 || r.InferImagesPerSecond <= 0 || r.TrainGFLOPS <= 0 ||
				r.PeakDeviceBytes <= 0 || len(r.Layers) == 0 {
				t.Errorf("%v: implausible figures: %s", a, out)
			}
			var convMS float64
			for _, l := range r.Layers {
				if strings.HasPrefix(l.Desc, "conv") {
					convMS += l.ForwardMS + l.BackwardMS
				}
			}
			if convMS <= 0 {
				t.Errorf("%v: no time profiled in the conv layers: %s", a, out)
			}
			// Per kernel on OpenCL, most time first; none on the CPU device.
			if dev == "cpu" && len(r.Kernels) != 0 {
				t.Errorf("%v: kernel times on the CPU device: %+v", a, r.Kernels)
			}
			if dev == "cl0" {
				gemm := false
				for i, k := range r.Kernels {
					gemm = gemm || strings.HasPrefix(k.Name, "gemm")
					if k.Launches < 1 || k.MS < 0 || (i > 0 && k.MS > r.Kernels[i-1].MS) {
						t.Errorf("%v: kernel %d %+v: bad or out of order", a, i, k)
					}
				}
				if !gemm {
					t.Errorf("%v: no GEMM kernel among %+v", a, r.Kernels)
				}
			}
		}
	}

	out, err := runCLI(t, append(args, "--device", "cpu")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, s := range []string{"narrow on cpu", "batch upload: in the step", "training ", "inference ", "per layer, one training step", "features.0"} {
		if !strings.Contains(out, s) {
			t.Errorf("bench tables lack %q:\n%s", s, out)
		}
	}
	if _, err := runCLI(t, "bench", "--config", net, "--device", "cpu", "--steps", "0"); err == nil || !strings.Contains(err.Error(), "--steps 0") {
		t.Errorf("--steps 0: %v", err)
	}
	// On OpenCL the report names the kernels' tunables and paths in use.
	if slices.Contains(devices, "cl0") {
		t.Setenv("ALEXCL_CL_DEFINES", "CONV_WINO5=forward")
		out, err := runCLI(t, append(args, "--device", "cl0")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "kernels: CONV_WINO5=forward\n") {
			t.Errorf("bench report lacks the kernels line:\n%s", out)
		}
	}
}

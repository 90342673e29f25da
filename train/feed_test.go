package train

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/device/opencl"
)

// asyncCPU gives the CPU device a WriteAsync made of Write, which keeps
// the AsyncWriter contract (the CPU device runs every call at once), so the
// feeder's two-slot prefetching runs on a deterministic device. It counts
// the copies and the buffers they went to.
type asyncCPU struct {
	device.Device
	mu     sync.Mutex
	copies int
	dsts   map[device.Buffer]bool
}

type doneTransfer struct{}

func (doneTransfer) Wait() error { return nil }

func (d *asyncCPU) WriteAsync(dst device.Buffer, off int, src []byte) (device.Transfer, error) {
	d.mu.Lock()
	d.copies++
	if d.dsts == nil {
		d.dsts = map[device.Buffer]bool{}
	}
	d.dsts[dst] = true
	d.mu.Unlock()
	if err := d.Write(dst, off, src); err != nil {
		return nil, err
	}
	return doneTransfer{}, nil
}

// runOn trains cfg on d into a new directory and returns the directory.
func runOn(t *testing.T, cfg Config, d device.Device) string {
	t.Helper()
	cfg.Out = filepath.Join(t.TempDir(), "run")
	var log bytes.Buffer
	if _, err := Run(context.Background(), cfg, RunOptions{Device: d, Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return cfg.Out
}

// sameRun checks that two runs ended with the same weights, velocity and
// metrics.
func sameRun(t *testing.T, a, b string) {
	t.Helper()
	sameTensors(t, filepath.Join(a, LastFile), filepath.Join(b, LastFile))
	aSt, err := ReadState(a)
	if err != nil {
		t.Fatal(err)
	}
	bSt, err := ReadState(b)
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, filepath.Join(a, aSt.Velocity), filepath.Join(b, bSt.Velocity))
	if aSt.Step != bSt.Step || aSt.Schedule != bSt.Schedule || aSt.BestTop1 != bSt.BestTop1 {
		t.Errorf("states differ: step %d %+v best %v against step %d %+v best %v",
			aSt.Step, aSt.Schedule, aSt.BestTop1, bSt.Step, bSt.Schedule, bSt.BestTop1)
	}
}

// TestPrefetchSameRun trains with and without prefetching on the CPU
// device, over epoch ends and a max_steps stop inside an epoch: the runs
// must agree to the bit, and the prefetching one must have used both
// buffer pairs for every batch.
func TestPrefetchSameRun(t *testing.T) {
	dir := writeSmallMNIST(t, 320, 100) // 10 steps of 32 per epoch
	cfg := testConfig(t, "mnist:"+dir, 0.5)
	cfg.Epochs = 3
	cfg.MaxSteps = 25
	cfg.CheckpointEvery = 7

	plain := runOn(t, cfg, cpu.New())
	ad := &asyncCPU{Device: cpu.New()}
	async := runOn(t, cfg, ad)
	sameRun(t, plain, async)
	// 25 batches, two copies each (images, labels); no batch past the last
	// step is fetched.
	if ad.copies != 2*25 || len(ad.dsts) != 4 {
		t.Errorf("prefetching run made %d copies into %d buffers, want 50 into 4", ad.copies, len(ad.dsts))
	}
}

// TestPrefetchOpenCL trains on OpenCL device 0 with the next batch copied
// on the transfer queue during each step, and again with plain Writes (the
// device hidden behind a wrapper): every kernel sums in a fixed order, so
// the two runs must agree to the bit.
func TestPrefetchOpenCL(t *testing.T) {
	d, err := opencl.Open(0, opencl.Options{Version: "test"})
	if err != nil {
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but OpenCL device 0 does not open: %v", err)
		}
		t.Skipf("no OpenCL device: %v", err)
	}
	dir := writeSmallMNIST(t, 192, 64) // 6 steps of 32 per epoch
	cfg := testConfig(t, "mnist:"+dir, 0.5)
	cfg.Epochs = 2
	cfg.Device = "cl0"
	t.Cleanup(func() { d.Close() })
	async := runOn(t, cfg, d)

	d2, err := opencl.Open(0, opencl.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	plain := runOn(t, cfg, struct{ device.Device }{d2})
	sameRun(t, plain, async)
}

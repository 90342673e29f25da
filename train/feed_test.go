package train

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/device/opencl"
)

// checkedAsync gives the CPU device a WriteAsync made of Write, which
// keeps the AsyncWriter contract (the CPU device runs every call at once),
// so the feeder's two-slot prefetching runs on a deterministic device. It
// also checks how the caller treats its Transfers: a source that changed
// before Wait (its batch given back to the loader, which refills it, too
// early) is an error, and unwaited reports Transfers never waited for.
// failAt > 0 makes the failAt-th WriteAsync fail.
type checkedAsync struct {
	device.Device
	t      *testing.T
	failAt int

	mu     sync.Mutex
	copies int
	dsts   map[device.Buffer]bool
	xfers  []*checkedTransfer
}

type checkedTransfer struct {
	t      *testing.T
	src    []byte
	sum    uint32
	waited bool
}

func (c *checkedTransfer) Wait() error {
	if crc32.ChecksumIEEE(c.src) != c.sum {
		c.t.Errorf("a batch changed before its copy's Wait: it went back to the loader too early")
	}
	c.waited = true
	return nil
}

func (d *checkedAsync) WriteAsync(dst device.Buffer, off int, src []byte) (device.Transfer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.copies++
	if d.copies == d.failAt {
		return nil, errors.New("injected copy failure")
	}
	if d.dsts == nil {
		d.dsts = map[device.Buffer]bool{}
	}
	d.dsts[dst] = true
	if err := d.Write(dst, off, src); err != nil {
		return nil, err
	}
	tr := &checkedTransfer{t: d.t, src: src, sum: crc32.ChecksumIEEE(src)}
	d.xfers = append(d.xfers, tr)
	return tr, nil
}

func (d *checkedAsync) unwaited() int {
	n := 0
	for _, tr := range d.xfers {
		if !tr.waited {
			n++
		}
	}
	return n
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
	ad := &checkedAsync{Device: cpu.New(), t: t}
	async := runOn(t, cfg, ad)
	sameRun(t, plain, async)
	// 25 batches, two copies each (images, labels); no batch past the last
	// step is fetched.
	if ad.copies != 2*25 || len(ad.dsts) != 4 || ad.unwaited() != 0 {
		t.Errorf("prefetching run made %d copies into %d buffers and left %d unwaited, want 50 into 4 and none",
			ad.copies, len(ad.dsts), ad.unwaited())
	}

	// Interrupted after step 12 (as SIGINT does) and resumed, prefetching
	// all along: the same run again.
	cfg.Out = filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log bytes.Buffer
	ad = &checkedAsync{Device: cpu.New(), t: t}
	_, err := Run(ctx, cfg, RunOptions{Device: ad, Log: &log, OnStep: func(step int64) {
		if step == 12 {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v, want ErrInterrupted\n%s", err, log.String())
	}
	if ad.unwaited() != 0 {
		t.Errorf("the interrupted run left %d copies unwaited", ad.unwaited())
	}
	ad = &checkedAsync{Device: cpu.New(), t: t}
	if _, err := Run(context.Background(), cfg, RunOptions{Device: ad, Log: &log, Resume: true}); err != nil {
		t.Fatalf("resume: %v\n%s", err, log.String())
	}
	sameRun(t, plain, cfg.Out)
}

// TestPrefetchCopyFails makes one copy fail, at the first batch, in a
// prefetch, and in the labels' copy after the images' started: the run
// stops with an error naming the step and the upload, and no copy is
// left unwaited.
func TestPrefetchCopyFails(t *testing.T) {
	dir := writeSmallMNIST(t, 320, 100)
	cfg := testConfig(t, "mnist:"+dir, 0.5)
	for _, failAt := range []int{1, 5, 8} {
		ad := &checkedAsync{Device: cpu.New(), t: t, failAt: failAt}
		cfg.Out = filepath.Join(t.TempDir(), "run")
		var log bytes.Buffer
		_, err := Run(context.Background(), cfg, RunOptions{Device: ad, Log: &log})
		if err == nil || !strings.Contains(err.Error(), "injected copy failure") || !strings.Contains(err.Error(), "upload") ||
			!strings.Contains(err.Error(), "step ") {
			t.Errorf("copy %d failing: %v, want an error naming the step, the upload and the cause", failAt, err)
		}
		if ad.unwaited() != 0 {
			t.Errorf("copy %d failing: %d copies left unwaited", failAt, ad.unwaited())
		}
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

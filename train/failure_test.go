package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/device/opencl/cl"
	"github.com/alexcl/alexcl/model"
)

// faultyDevice wraps a Device to fail the way GPUs and drivers do. Once
// armed, it lets okReads more reads through, then every Read, Write and
// Sync returns failure; nanGrad instead poisons the gradient of the next
// SGD update. allocBudget > 0 makes Alloc fail with
// CL_MEM_OBJECT_ALLOCATION_FAILURE past that many bytes, and globalMem > 0
// is reported as the device's memory.
type faultyDevice struct {
	device.Device
	failure     error
	allocBudget int64
	globalMem   int64

	mu       sync.Mutex
	armed    bool
	okReads  int
	nanGrad  bool
	poisoned bool
	alloced  int64
}

func (d *faultyDevice) arm() {
	d.mu.Lock()
	d.armed = true
	d.mu.Unlock()
}

// failing reports whether this call must fail, counting reads.
func (d *faultyDevice) failing(read bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.armed || d.failure == nil {
		return false
	}
	if read && d.okReads > 0 {
		d.okReads--
		return false
	}
	return d.okReads == 0
}

func (d *faultyDevice) Info() device.Info {
	i := d.Device.Info()
	if d.globalMem > 0 {
		i.GlobalMem, i.MaxAlloc = d.globalMem, d.globalMem/4
	}
	return i
}

func (d *faultyDevice) Alloc(size int) (device.Buffer, error) {
	d.mu.Lock()
	over := d.allocBudget > 0 && d.alloced+int64(size) > d.allocBudget
	if !over {
		d.alloced += int64(size)
	}
	d.mu.Unlock()
	if over {
		return nil, &cl.Error{Call: "clCreateBuffer", Status: cl.MemObjectAllocationFailure}
	}
	return d.Device.Alloc(size)
}

func (d *faultyDevice) Read(src device.Buffer, off int, dst []byte) error {
	if d.failing(true) {
		return d.failure
	}
	return d.Device.Read(src, off, dst)
}

func (d *faultyDevice) Write(dst device.Buffer, off int, src []byte) error {
	if d.failing(false) {
		return d.failure
	}
	return d.Device.Write(dst, off, src)
}

func (d *faultyDevice) Sync() error {
	if d.failing(false) {
		return d.failure
	}
	return d.Device.Sync()
}

func (d *faultyDevice) SGDUpdate(w, g, v device.Buffer, n int, p device.SGDParams) error {
	d.mu.Lock()
	poison := d.armed && d.nanGrad && !d.poisoned
	d.poisoned = d.poisoned || poison
	d.mu.Unlock()
	if poison {
		if err := d.Device.Fill(g, float32(math.NaN())); err != nil {
			return err
		}
	}
	return d.Device.SGDUpdate(w, g, v, n, p)
}

// checkOutDir fails unless dir holds a complete checkpoint at step: state.json
// names files that exist and load, last.safetensors loads, and no temporary
// or unnamed checkpoint file is left.
func checkOutDir(t *testing.T, cfg Config, step int64) {
	t.Helper()
	st, err := ReadState(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != step {
		t.Errorf("state.json is at step %d, want the last good checkpoint's %d", st.Step, step)
	}
	d := cpu.New()
	defer d.Close()
	net, err := model.New(d, *cfg.Model, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	for _, f := range []string{st.Weights, LastFile} {
		if err := net.Load(filepath.Join(cfg.Out, f)); err != nil {
			t.Errorf("checkpoint file after the failure: %v", err)
		}
	}
	if err := net.LoadVelocity(filepath.Join(cfg.Out, st.Velocity)); err != nil {
		t.Errorf("velocity after the failure: %v", err)
	}
	for _, sub := range []string{"", CkptDir} {
		ents, _ := os.ReadDir(filepath.Join(cfg.Out, sub))
		for _, e := range ents {
			n := e.Name()
			if strings.Contains(n, ".tmp") {
				t.Errorf("temporary file %s left in %s", n, filepath.Join(cfg.Out, sub))
			}
			if m := ckptFile.FindStringSubmatch(n); m != nil && m[1] > filepath.Base(st.Weights)[5:14] {
				t.Errorf("checkpoint file %s is newer than the state's %s", n, st.Weights)
			}
		}
	}
}

// TestDeviceFailsMidRun: an OpenCL runtime that goes away during training
// (in a step, in the check before a checkpoint, between the weights and
// velocity files of a checkpoint) stops the run with the step, the last
// checkpoint and the resume command, and leaves that checkpoint whole;
// resuming on a working device then finishes the run.
func TestDeviceFailsMidRun(t *testing.T) {
	dir := writeSmallMNIST(t, 320, 32)
	lost := &cl.Error{Call: "clFinish", Status: cl.InvalidCommandQueue}
	const params = 16 // tensors of the narrow mini: 8 layers with weight and bias
	for _, tc := range []struct {
		name    string
		armAt   int64 // OnStep value after which the device fails
		okReads int
		want    []string
	}{
		{"in a step", 4, 0, []string{"step 5: ", "CL_INVALID_COMMAND_QUEUE", "training stopped during step 5"}},
		{"checking the checkpoint", 6, 0, []string{"checkpoint at step 6: read features.0.weight", "CL_INVALID_COMMAND_QUEUE"}},
		{"between weights and velocity", 6, 2 * params, []string{"checkpoint at step 6", "velocity", "CL_INVALID_COMMAND_QUEUE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "mnist:"+dir, 0.5)
			cfg.MaxSteps, cfg.CheckpointEvery = 9, 3
			fd := &faultyDevice{Device: cpu.New(), failure: lost, okReads: tc.okReads}
			defer fd.Device.Close()
			var log bytes.Buffer
			_, err := Run(context.Background(), cfg, RunOptions{Device: fd, Log: &log, OnStep: func(s int64) {
				if s == tc.armAt {
					fd.arm()
				}
			}})
			if err == nil || !errors.Is(err, cl.InvalidCommandQueue) {
				t.Fatalf("run on a failing device: %v, want CL_INVALID_COMMAND_QUEUE\n%s", err, log.String())
			}
			want := append(tc.want, "last checkpoint is step 3", "resume with `alexcl train --resume --out "+cfg.Out+"`")
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			checkOutDir(t, cfg, 3)
			res, err := Run(context.Background(), cfg, RunOptions{Resume: true, Device: cpu.New(), Log: &log})
			if err != nil || res.Steps != 9 {
				t.Fatalf("resume after the failure: %d steps, %v\n%s", res.Steps, err, log.String())
			}
		})
	}
}

// TestOutOfMemory: an allocation failure while the network is built, and
// CL_OUT_OF_RESOURCES during a step, both say what was asked, what the
// device has and which batch to try; the first writes nothing, the second
// keeps the last checkpoint.
func TestOutOfMemory(t *testing.T) {
	dir := writeSmallMNIST(t, 320, 32)
	cfg := testConfig(t, "mnist:"+dir, 0)
	cfg.MaxSteps, cfg.CheckpointEvery = 9, 3
	need, err := cfg.Model.DeviceBytes(cfg.Batch)
	if err != nil {
		t.Fatal(err)
	}
	fd := &faultyDevice{Device: cpu.New(), allocBudget: need / 2, globalMem: 1 << 30}
	defer fd.Device.Close()
	_, err = Run(context.Background(), cfg, RunOptions{Device: fd, Log: &bytes.Buffer{}})
	for _, w := range []string{"device cpu", "ran out of memory (CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)) while building the network",
		"at batch 32 asks for about " + device.HumanBytes(need), "the device has 1.0 GiB (at most 256.0 MiB in one buffer)", "try --batch 16", "clCreateBuffer"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("allocation failure: error lacks %q:\n%v", w, err)
		}
	}
	if !errors.Is(err, ErrOutOfMemory) || !errors.Is(err, cl.MemObjectAllocationFailure) {
		t.Errorf("allocation failure %v: want ErrOutOfMemory wrapping the device's error", err)
	}
	if _, err := os.Stat(cfg.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run that could not build its network created %s (%v)", cfg.Out, err)
	}
	if st := fd.Device.MemStats(); st.Buffers != 0 {
		t.Errorf("%d buffers left after the failed run", st.Buffers)
	}

	fd = &faultyDevice{Device: cpu.New(), failure: &cl.Error{Call: "clEnqueueNDRangeKernel", Subject: "sgd_update", Status: cl.OutOfResources}}
	defer fd.Device.Close()
	_, err = Run(context.Background(), cfg, RunOptions{Device: fd, Log: &bytes.Buffer{}, OnStep: func(s int64) {
		if s == 4 {
			fd.arm()
		}
	}})
	for _, w := range []string{"ran out of memory or resources (CL_OUT_OF_RESOURCES (-5)) during step 5", "the last checkpoint (step 3, " + filepath.Join(cfg.Out, LastFile) + ") is intact",
		"resume with `alexcl train --resume --out " + cfg.Out + "`", "--batch 16 --init " + filepath.Join(cfg.Out, LastFile), "sgd_update"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("out of resources: error lacks %q:\n%v", w, err)
		}
	}
	checkOutDir(t, cfg, 3)
}

// TestNaNGradientCaughtAtCheckpoint: a gradient that turns NaN while the
// loss is still finite poisons the weights; the check before the next
// checkpoint stops the run with the step, the parameter and the last good
// checkpoint, and saves nothing.
func TestNaNGradientCaughtAtCheckpoint(t *testing.T) {
	dir := writeSmallMNIST(t, 320, 32)
	cfg := testConfig(t, "mnist:"+dir, 0)
	cfg.MaxSteps, cfg.CheckpointEvery = 8, 2
	fd := &faultyDevice{Device: cpu.New(), nanGrad: true}
	defer fd.Device.Close()
	_, err := Run(context.Background(), cfg, RunOptions{Device: fd, Log: &bytes.Buffer{}, OnStep: func(s int64) {
		if s == 3 {
			fd.arm()
		}
	}})
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("NaN gradient: %v, want ErrDiverged", err)
	}
	for _, w := range []string{"the update of step 4 left NaN in features.0.weight", "last good checkpoint", "(step 2", "stopped without saving"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	checkOutDir(t, cfg, 2)
}

// TestCheckpointRetention: keep = 2 leaves the newest two checkpoints in
// ckpt/, keep = 0 all of them; a resume removes what a crash left behind
// (temporary files, checkpoint files newer than state.json) and never the
// checkpoint state.json names.
func TestCheckpointRetention(t *testing.T) {
	dir := writeSmallMNIST(t, 320, 32)
	for _, keep := range []int{2, 0} {
		cfg := testConfig(t, "mnist:"+dir, 0)
		cfg.MaxSteps, cfg.CheckpointEvery, cfg.Keep = 6, 2, keep
		if _, err := Run(context.Background(), cfg, RunOptions{Device: cpu.New(), Log: &bytes.Buffer{}}); err != nil {
			t.Fatal(err)
		}
		want := map[int][]string{2: {"000000004", "000000006"}, 0: {"000000002", "000000004", "000000006"}}[keep]
		if got := ckptSteps(t, cfg.Out); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("keep = %d: ckpt/ holds steps %v, want %v", keep, got, want)
		}
		if keep != 2 {
			continue
		}
		// What SIGKILL can leave: temporary files and an uncommitted checkpoint.
		junk := []string{filepath.Join(cfg.Out, ".state.json.tmp-123"), filepath.Join(cfg.Out, "last.safetensors.tmp-link"),
			filepath.Join(cfg.Out, CkptDir, ".step-000000008.weights.safetensors.tmp-9"),
			filepath.Join(cfg.Out, CkptDir, "step-000000008.weights.safetensors")}
		for _, f := range junk {
			if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg.MaxSteps, cfg.Keep = 7, 1
		if _, err := Run(context.Background(), cfg, RunOptions{Resume: true, Device: cpu.New(), Log: &bytes.Buffer{}}); err != nil {
			t.Fatal(err)
		}
		for _, f := range junk {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("%s survived the resume", f)
			}
		}
		if got := ckptSteps(t, cfg.Out); strings.Join(got, " ") != "000000007" {
			t.Errorf("keep = 1 after resume: ckpt/ holds steps %v, want [000000007]", got)
		}
		checkOutDir(t, cfg, 7)
		for _, f := range []string{BestFile, LastFile} {
			if _, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil {
				t.Error(err)
			}
		}
	}
}

// ckptSteps lists the steps with a weights file in dir/ckpt, in order.
func ckptSteps(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, CkptDir))
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range ents {
		if m := ckptFile.FindStringSubmatch(e.Name()); m != nil && m[2] == "weights" {
			steps = append(steps, m[1])
		}
	}
	return steps
}

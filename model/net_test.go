package model

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/model/safetensors"
)

// Fixture tolerances: |got − ref| ≤ atol + rtol·|ref|, elementwise.
// Weight updates are compared as deltas (final − initial), so the check is
// as strict on the three SGD steps as on the weights themselves.
const (
	logitAtol, logitRtol = 1e-5, 5e-5
	gradAtol, gradRtol   = 2e-6, 5e-4
	deltaAtol, deltaRtol = 1e-6, 2e-3
	lossTol              = 1e-5
)

// fixture is one network of model/testdata made by ci/torch/model_fixtures.py.
type fixture struct {
	name string
	cfg  Config
	ref  map[string]*safetensors.Tensor
}

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	c, err := LoadConfig(filepath.Join("testdata", name+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Read(filepath.Join("testdata", name+"_ref.safetensors"))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 ci/torch/model_fixtures.py gen)", err)
	}
	if f.Meta["magic"] != "alexcl-model-fixture" || f.Meta["version"] != "1" {
		t.Fatalf("%s: not a version 1 model fixture (meta %v)", name, f.Meta)
	}
	ref := map[string]*safetensors.Tensor{}
	for i := range f.Tensors {
		ref[f.Tensors[i].Name] = &f.Tensors[i]
	}
	return fixture{name: name, cfg: c, ref: ref}
}

// compare fails the test at the first element outside atol + rtol·|ref|.
func compare(t *testing.T, what string, got, ref []float32, atol, rtol float64) {
	t.Helper()
	if len(got) != len(ref) {
		t.Fatalf("%s: %d values, reference has %d", what, len(got), len(ref))
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(ref[i]))
		tol := atol + rtol*math.Abs(float64(ref[i]))
		if !(d <= tol) {
			t.Errorf("%s: index %d: got %g, reference %g (|diff| %.3g > %.3g = %g + %g·|ref|)", what, i, got[i], ref[i], d, tol, atol, rtol)
			return
		}
		worst = max(worst, d/tol)
	}
	if testing.Verbose() {
		t.Logf("%s: %d values within tolerance (worst %.2g of it)", what, len(got), 100*worst)
	}
}

// runFixture loads the fixture's initial weights, runs the reference's
// three SGD steps on d and compares logits, loss, first-step gradients and
// final weights with PyTorch.
func runFixture(t *testing.T, d device.Device, fx fixture) {
	in := fx.ref["input"]
	n := in.Shape[0]
	net, err := New(d, fx.cfg, n+2) // a batch larger than used: n < batch must work
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if err := net.Load(filepath.Join("testdata", fx.name+"_init.safetensors")); err != nil {
		t.Fatal(err)
	}
	x, err := device.Upload(d, in.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(x)
	labels, err := device.UploadInt32(d, fx.ref["labels"].I32)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(labels)

	init := map[string][]float32{}
	for _, p := range net.Params() {
		if init[p.Name], err = device.ReadFloat32(d, p.W, p.N); err != nil {
			t.Fatal(err)
		}
	}
	sgd := device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}
	losses := fx.ref["losses"].F32
	for step := range losses {
		logits, err := net.Forward(x, n, true, uint64(step))
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			got, err := device.ReadFloat32(d, logits, n*net.Classes())
			if err != nil {
				t.Fatal(err)
			}
			compare(t, fx.name+" logits", got, fx.ref["logits"].F32, logitAtol, logitRtol)
		}
		if err := net.Loss(labels, n); err != nil {
			t.Fatal(err)
		}
		if err := net.Backward(n); err != nil {
			t.Fatal(err)
		}
		sum, top1, top5, err := net.ReadLoss(n)
		if err != nil {
			t.Fatal(err)
		}
		if mean := sum / float64(n); math.Abs(mean-float64(losses[step])) > lossTol {
			t.Errorf("%s step %d: loss %.7f, PyTorch %.7f", fx.name, step, mean, losses[step])
		}
		if top1 > top5 || top5 > n {
			t.Errorf("%s step %d: top1 %d, top5 %d of %d", fx.name, step, top1, top5, n)
		}
		if step == 0 {
			for _, p := range net.Params() {
				g, err := device.ReadFloat32(d, p.G, p.N)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, fx.name+" gradient "+p.Name, g, fx.ref["grad."+p.Name].F32, gradAtol, gradRtol)
			}
		}
		if err := net.Step(sgd); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range net.Params() {
		w, err := device.ReadFloat32(d, p.W, p.N)
		if err != nil {
			t.Fatal(err)
		}
		ref := fx.ref["final."+p.Name].F32
		got, want := make([]float32, p.N), make([]float32, p.N)
		for i := range w {
			got[i], want[i] = w[i]-init[p.Name][i], ref[i]-init[p.Name][i]
		}
		compare(t, fmt.Sprintf("%s %s after %d SGD steps (final − initial)", fx.name, p.Name, len(losses)), got, want, deltaAtol, deltaRtol)
	}
}

func TestFixturesCPU(t *testing.T) {
	d := cpu.New()
	defer d.Close()
	for _, name := range []string{"mini_narrow", "paper_narrow"} {
		t.Run(name, func(t *testing.T) { runFixture(t, d, loadFixture(t, name)) })
	}
}

// newCPUNet builds name (a testdata config or a preset) on a fresh CPU device.
func newCPUNet(t *testing.T, c Config, batch int) (*cpu.Device, *Net) {
	t.Helper()
	d := cpu.New()
	net, err := New(d, c, batch)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := net.Close(); err != nil {
			t.Error(err)
		}
		if st := d.MemStats(); st.Buffers != 0 {
			t.Errorf("%d buffers live after Net.Close", st.Buffers)
		}
		d.Close()
	})
	return d, net
}

func testConfig(t *testing.T, name string) Config {
	t.Helper()
	c, err := LoadConfig(filepath.Join("testdata", name+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readParams(t *testing.T, net *Net, buf func(*Param) device.Buffer) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for _, p := range net.Params() {
		v, err := device.ReadFloat32(net.Device(), buf(p), p.N)
		if err != nil {
			t.Fatal(err)
		}
		out[p.Name] = v
	}
	return out
}

func weights(p *Param) device.Buffer  { return p.W }
func velocity(p *Param) device.Buffer { return p.V }

func TestInit(t *testing.T) {
	c := testConfig(t, "paper_narrow")
	_, a := newCPUNet(t, c, 1)
	_, b := newCPUNet(t, c, 1)
	if err := a.Init(7); err != nil {
		t.Fatal(err)
	}
	if err := b.Init(7); err != nil {
		t.Fatal(err)
	}
	wa, wb := readParams(t, a, weights), readParams(t, b, weights)
	layers := map[string]LayerInfo{}
	for _, l := range a.Layers() {
		layers[l.Name] = l
	}
	for _, p := range a.Params() {
		if fmt.Sprint(wa[p.Name]) != fmt.Sprint(wb[p.Name]) {
			t.Errorf("%s differs between two Init(7)", p.Name)
		}
		layer := layers[strings.TrimSuffix(strings.TrimSuffix(p.Name, ".weight"), ".bias")]
		if strings.HasSuffix(p.Name, ".bias") {
			for i, v := range wa[p.Name] {
				if v != float32(layer.Layer.BiasInit) {
					t.Fatalf("%s[%d] = %g, want bias_init %g", p.Name, i, v, layer.Layer.BiasInit)
				}
			}
			continue
		}
		var s, s2 float64
		for _, v := range wa[p.Name] {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		m := float64(p.N)
		mean, std := s/m, math.Sqrt(s2/m-(s/m)*(s/m))
		// Loose bounds: the smallest weight has 544 elements.
		if math.Abs(mean) > 4*0.01/math.Sqrt(m) || math.Abs(std-0.01) > 0.0015 {
			t.Errorf("%s: mean %.5f std %.5f over %d weights, want N(0, 0.01²)", p.Name, mean, std, p.N)
		}
	}
	if err := b.Init(8); err != nil {
		t.Fatal(err)
	}
	if w8 := readParams(t, b, weights); fmt.Sprint(w8["features.0.weight"]) == fmt.Sprint(wa["features.0.weight"]) {
		t.Errorf("Init(8) gives the same weights as Init(7)")
	}
	if a.Seed() != 7 {
		t.Errorf("Init(7) left dropout seed %d", a.Seed())
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(t, "mini_narrow")
	d, a := newCPUNet(t, c, 2)
	if err := a.Init(3); err != nil {
		t.Fatal(err)
	}
	// Take one step so the velocities are not zero.
	x, _ := device.Upload(d, make([]float32, 2*a.InputLen()))
	labels, _ := device.UploadInt32(d, []int32{3, 7})
	defer d.Free(x)
	defer d.Free(labels)
	if _, err := a.Forward(x, 2, true, 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Loss(labels, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.Backward(2); err != nil {
		t.Fatal(err)
	}
	if err := a.Step(device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}); err != nil {
		t.Fatal(err)
	}
	wpath, vpath := filepath.Join(dir, "w.safetensors"), filepath.Join(dir, "v.safetensors")
	if err := a.Save(wpath, map[string]string{"epoch": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveVelocity(vpath, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Read(wpath)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta["epoch"] != "1" || f.Meta[MetaKind] != "weights" || !strings.Contains(f.Meta[MetaConfig], "mini_narrow") {
		t.Errorf("checkpoint metadata %v", f.Meta)
	}

	_, b := newCPUNet(t, c, 1)
	if err := b.Load(wpath); err != nil {
		t.Fatal(err)
	}
	if err := b.LoadVelocity(vpath); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(readParams(t, a, weights)) != fmt.Sprint(readParams(t, b, weights)) {
		t.Errorf("weights differ after Save/Load")
	}
	if fmt.Sprint(readParams(t, a, velocity)) != fmt.Sprint(readParams(t, b, velocity)) {
		t.Errorf("velocities differ after SaveVelocity/LoadVelocity")
	}
	if b.Seed() != 3 {
		t.Errorf("Load restored dropout seed %d, want 3", b.Seed())
	}
	if err := b.LoadVelocity(wpath); err == nil || !strings.Contains(err.Error(), "holds weights") {
		t.Errorf("LoadVelocity of a weights file: %v", err)
	}

	// A file of another network: every problem in one error.
	_, other := newCPUNet(t, testConfig(t, "paper_narrow"), 1)
	err = other.Load(wpath)
	for _, want := range []string{
		"features.0.weight has shape [8 1 5 5], want [8 3 11 11]",
		"features.4.weight has shape [16 8 5 5], want [16 4 5 5]",
		"classifier.6.weight has shape [10 32], want [20 32]",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loading mini_narrow into paper_narrow: error %v lacks %q", err, want)
		}
	}
	// Missing and unexpected names.
	tensors := []safetensors.Tensor{}
	for _, tt := range f.Tensors {
		if tt.Name == "classifier.6.bias" {
			continue
		}
		if tt.Name == "features.0.weight" {
			tt.Name = "features.1.weight"
		}
		tensors = append(tensors, tt)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	if err := safetensors.Write(bad, tensors, nil); err != nil {
		t.Fatal(err)
	}
	err = b.Load(bad)
	for _, want := range []string{"missing features.0.weight [8 1 5 5]", "missing classifier.6.bias [10]", "unexpected features.1.weight [8 1 5 5]", "3 problems"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	// NaN and infinite values are named and refused, and change nothing.
	before, err := device.ReadFloat32(b.d, b.params[0].W, b.params[0].N)
	if err != nil {
		t.Fatal(err)
	}
	tensors = nil
	for _, tt := range f.Tensors {
		switch tt.Name {
		case "classifier.6.weight":
			tt.F32 = slices.Clone(tt.F32)
			tt.F32[3], tt.F32[7] = float32(math.NaN()), float32(math.Inf(-1))
		case "features.0.bias":
			tt.F32 = slices.Clone(tt.F32)
			tt.F32[0] = float32(math.Inf(1))
		}
		tensors = append(tensors, tt)
	}
	if err := safetensors.Write(bad, tensors, nil); err != nil {
		t.Fatal(err)
	}
	err = b.Load(bad)
	for _, want := range []string{"NaN or infinite", "classifier.6.weight (2 of 320)", "features.0.bias (1 of 8)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loading NaN weights: error %v lacks %q", err, want)
		}
	}
	after, err := device.ReadFloat32(b.d, b.params[0].W, b.params[0].N)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Errorf("a refused load changed %s", b.params[0].Name)
	}
}

// torchPython returns the Python with torch, or skips the test.
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		t.Skip("/usr/bin/python3 has no torch (apt-get install python3-torch)")
	}
	return py
}

func runScript(t *testing.T, py string, args ...string) {
	t.Helper()
	cmd := exec.Command(py, append([]string{filepath.Join("..", "ci", "torch", "model_fixtures.py")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("model_fixtures.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// TestCheckpointLoadsInTorch saves checkpoints with Net.Save and has
// PyTorch load them with load_state_dict(strict=True) into the reference
// module (mini) and into the module built from the same TOML (paper_narrow).
// The full paper preset is left to -run with ALEXCL_FULL=1 (a 233 MiB file).
func TestCheckpointLoadsInTorch(t *testing.T) {
	py := torchPython(t)
	t.Parallel() // mostly waiting for python to import torch
	dir := t.TempDir()
	type check struct{ name, path, flag, arg string }
	var checks []check
	save := func(name string, c Config, flag, arg string) {
		_, net := newCPUNet(t, c, 1)
		if err := net.Init(1); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".safetensors")
		if err := net.Save(path, nil); err != nil {
			t.Fatal(err)
		}
		if err := net.Close(); err != nil { // free the memory before the next
			t.Fatal(err)
		}
		checks = append(checks, check{name, path, flag, arg})
	}
	presets := []string{"mini"}
	if os.Getenv("ALEXCL_FULL") == "1" {
		presets = append(presets, "paper")
	}
	for _, name := range presets {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		save(name, c, "--preset", name)
	}
	save("paper_narrow", testConfig(t, "paper_narrow"), "--config", filepath.Join("testdata", "paper_narrow.toml"))
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runScript(t, py, "check-load", c.path, c.flag, c.arg)
		})
	}
}

// TestPresetsMatchTorchReference builds model/presets/*.toml in PyTorch and
// compares parameter names and shapes with ci/torch/alexnet_torch.py.
func TestPresetsMatchTorchReference(t *testing.T) {
	py := torchPython(t)
	t.Parallel()
	runScript(t, py, "check-presets")
}

// TestDropoutGradient checks the dropout wiring (the backward pass reuses
// the forward's mask) against central finite differences of the loss.
func TestDropoutGradient(t *testing.T) {
	c := testConfig(t, "mini_narrow").WithDropout(0.5)
	d, net := newCPUNet(t, c, 4)
	// PyTorch's default init gives gradients large enough for float32
	// finite differences; N(0, 0.01²) would not.
	if err := net.Load(filepath.Join("testdata", "mini_narrow_init.safetensors")); err != nil {
		t.Fatal(err)
	}
	net.SetSeed(11)
	host := make([]float32, 4*net.InputLen())
	for i := range host {
		host[i] = float32(math.Sin(float64(i) * 0.37))
	}
	x, _ := device.Upload(d, host)
	labels, _ := device.UploadInt32(d, []int32{1, 4, 9, 0})
	defer d.Free(x)
	defer d.Free(labels)
	const step = 5
	loss := func() float64 {
		if _, err := net.Forward(x, 4, true, step); err != nil {
			t.Fatal(err)
		}
		if err := net.Loss(labels, 4); err != nil {
			t.Fatal(err)
		}
		s, _, _, err := net.ReadLoss(4)
		if err != nil {
			t.Fatal(err)
		}
		return s / 4
	}
	l0 := loss()
	if l1 := loss(); l1 != l0 {
		t.Fatalf("same step, different loss: %g vs %g", l0, l1)
	}
	if err := net.Backward(4); err != nil {
		t.Fatal(err)
	}
	var p *Param
	for _, q := range net.Params() {
		if q.Name == "classifier.1.weight" { // right after classifier.0 dropout
			p = q
		}
	}
	g, _ := device.ReadFloat32(d, p.G, p.N)
	w, _ := device.ReadFloat32(d, p.W, p.N)
	// The largest gradients, where float32 finite differences are meaningful.
	checked := 0
	for i := range g {
		if math.Abs(float64(g[i])) < 1e-3 || checked >= 6 {
			continue
		}
		checked++
		const eps = 1e-2
		set := func(v float32) {
			if err := d.Write(p.W, 4*i, device.Float32Bytes([]float32{v})); err != nil {
				t.Fatal(err)
			}
		}
		set(w[i] + eps)
		lp := loss()
		set(w[i] - eps)
		lm := loss()
		set(w[i])
		fd := (lp - lm) / (2 * eps)
		if math.Abs(fd-float64(g[i])) > 0.03*math.Abs(float64(g[i]))+2e-5 {
			t.Errorf("%s[%d]: backward %g, finite difference %g", p.Name, i, g[i], fd)
		}
	}
	if checked == 0 {
		t.Fatalf("no gradient of classifier.1.weight above 1e-3")
	}
	// Another step draws another mask.
	if _, err := net.Forward(x, 4, true, step+1); err != nil {
		t.Fatal(err)
	}
	if err := net.Loss(labels, 4); err != nil {
		t.Fatal(err)
	}
	if s, _, _, _ := net.ReadLoss(4); s/4 == l0 {
		t.Errorf("step %d and %d give the same loss %g: dropout masks did not change", step, step+1, l0)
	}
}

// smallDevice reports less memory than the CPU has, to test New's check.
type smallDevice struct{ device.Device }

func (s smallDevice) Info() device.Info {
	i := s.Device.Info()
	i.GlobalMem = 64 << 20
	return i
}

func TestNewChecksMemoryAndUse(t *testing.T) {
	d := cpu.New()
	defer d.Close()
	c, _ := Preset("mini") // 52 MiB of parameters, gradients and momentum
	_, err := New(smallDevice{d}, c, 1000)
	if err == nil || !strings.Contains(err.Error(), "use a batch of at most") {
		t.Errorf("mini at batch 1000 on 64 MiB: %v", err)
	}
	paper, _ := Preset("paper")
	if _, err = New(smallDevice{d}, paper, 1); err == nil || !strings.Contains(err.Error(), "parameters alone do not fit") {
		t.Errorf("paper on 64 MiB: %v", err)
	}
	if st := d.MemStats(); st.Buffers != 0 {
		t.Errorf("%d buffers left after failed New", st.Buffers)
	}

	_, net := newCPUNet(t, testConfig(t, "mini_narrow"), 2)
	x, _ := device.AllocFloat32(d, 1)
	if _, err := net.Forward(x, 3, false, 0); err == nil || !strings.Contains(err.Error(), "want 1 to 2") {
		t.Errorf("forward of 3 samples at batch 2: %v", err)
	}
	if err := net.Backward(1); err == nil {
		t.Errorf("backward before forward: no error")
	}
	if _, _, _, err := net.ReadLoss(1); err == nil {
		t.Errorf("read loss before loss: no error")
	}
}

// TestReadLossNaN: weights gone to NaN score no hit, at top-1 or top-5,
// even with fewer than 5 classes (where every finite rank is a top-5 hit).
func TestReadLossNaN(t *testing.T) {
	c := testConfig(t, "mini_narrow").WithClasses(3)
	d, net := newCPUNet(t, c, 4)
	if err := net.Init(1); err != nil {
		t.Fatal(err)
	}
	ps := net.Params()
	last := ps[len(ps)-1] // classifier.6.bias
	if err := d.Fill(last.W, float32(math.NaN())); err != nil {
		t.Fatal(err)
	}
	x, err := device.Upload(d, make([]float32, 4*net.InputLen()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(x)
	labels, err := device.UploadInt32(d, []int32{0, 1, 2, 0})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free(labels)
	if _, err := net.Forward(x, 4, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := net.Loss(labels, 4); err != nil {
		t.Fatal(err)
	}
	sum, top1, top5, err := net.ReadLoss(4)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(sum) || top1 != 0 || top5 != 0 {
		t.Errorf("NaN logits: loss sum %v, top-1 %d, top-5 %d; want NaN, 0, 0", sum, top1, top5)
	}
}

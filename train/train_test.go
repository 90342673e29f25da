package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/model"
)

// TestTrainReachesAccuracy trains the narrow mini for 600 steps of 32 on
// the embedded MNIST (a third of an epoch) and checks the test top-1 on
// all 10,000 test digits. Measured on the CPU device (OpenBLAS GEMM):
// 96.5%, 96.4% and 94.4% for seeds 1 to 3 (at 400 steps: 88.3%, 93.2%,
// 92.8%), 10 to 20 s on two cores.
func TestTrainReachesAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 10 to 20 s")
	}
	cfg := testConfig(t, "mnist", 0)
	cfg.MaxSteps = 600
	cfg.LogEvery = 50
	var log bytes.Buffer
	res, err := Run(context.Background(), cfg, RunOptions{Device: cpu.New(), Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("600 steps: test loss %.4f, top-1 %.2f%%, top-5 %.2f%%, %.0f img/s", res.Test.Loss, 100*res.Test.Top1, 100*res.Test.Top5, res.ImagesPS)
	if res.Test.Samples != 10000 {
		t.Errorf("evaluated %d samples, want 10000", res.Test.Samples)
	}
	if res.Test.Top1 < 0.90 {
		t.Errorf("test top-1 %.2f%% after 600 steps, want >= 90%%\n%s", 100*res.Test.Top1, log.String())
	}
	if !res.Finished || res.Steps != 600 {
		t.Errorf("result %+v: want finished after 600 steps", res)
	}

	// The output directory holds everything the issue lists.
	for _, f := range []string{LastFile, BestFile, StateFile, MetricsFile, CurvesFile, ConfigFile} {
		if _, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(cfg.Out, CurvesFile))
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(b)); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("curves.png does not decode as a PNG: %v", err)
	}
	rows := metricsOf(t, cfg.Out)
	if len(rows) != 13 { // 12 windows of 50 steps and the final evaluation
		t.Errorf("metrics.csv has %d rows, want 13", len(rows))
	}
	if last := rows[len(rows)-1]; last.Step != 600 || last.TestTop1 != res.Test.Top1 {
		t.Errorf("last metrics row %+v: want step 600, test top-1 %v", last, res.Test.Top1)
	}

	// The resolved config rebuilds the same network.
	rc, err := LoadConfig(filepath.Join(cfg.Out, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := rc.Network()
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoint round trip: best.safetensors, loaded into a new net,
	// scores what the run measured.
	d := cpu.New()
	defer d.Close()
	net, err := model.New(d, mc, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if err := net.Load(filepath.Join(cfg.Out, BestFile)); err != nil {
		t.Fatal(err)
	}
	test, err := data.Open(data.Spec{Kind: data.MNIST}, "test", data.Options{Channels: 1, Height: 28, Width: 28})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Evaluate(context.Background(), net, test, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Top1 != res.Test.Top1 || ev.Top5 != res.Test.Top5 {
		t.Errorf("reloaded best.safetensors scores top-1 %v top-5 %v; the run measured %v %v", ev.Top1, ev.Top5, res.Test.Top1, res.Test.Top5)
	}
}

// TestResumeBitExact runs 3 short epochs uninterrupted, and again with an
// interruption (context cancelled) inside epoch 2 and a stop at the end of
// epoch 1 (max_steps), each followed by a resume. With dropout on and the
// learning rate divided every epoch, the final weights and velocities must
// be identical bit for bit on the CPU device.
func TestResumeBitExact(t *testing.T) {
	dir := writeSmallMNIST(t, 480, 200) // 15 steps of 32 per epoch
	base := testConfig(t, "mnist:"+dir, 0.5)
	base.Epochs = 3
	base.CheckpointEvery = 4

	run := func(cfg Config, opts RunOptions) (Result, string, error) {
		var log bytes.Buffer
		opts.Device, opts.Log = cpu.New(), &log
		res, err := Run(context.Background(), cfg, opts)
		return res, log.String(), err
	}
	ref := base
	ref.Out = filepath.Join(t.TempDir(), "ref")
	refRes, log, err := run(ref, RunOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if refRes.Steps != 45 {
		t.Fatalf("uninterrupted run did %d steps, want 45", refRes.Steps)
	}

	// 1. Stop at the end of epoch 1 with max_steps, resume without it.
	a := base
	a.Out = filepath.Join(t.TempDir(), "a")
	a.MaxSteps = 15
	if _, log, err := run(a, RunOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	a.MaxSteps = 0

	// 2. Interrupt at step 22 (inside epoch 2), as SIGINT does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log2 bytes.Buffer
	_, err = Run(ctx, a, RunOptions{Resume: true, Device: cpu.New(), Log: &log2,
		OnStep: func(step int64) {
			if step == 22 {
				cancel()
			}
		}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled run returned %v, want ErrInterrupted\n%s", err, log2.String())
	}
	if !strings.Contains(log2.String(), "resume with: alexcl train --resume --out "+a.Out) {
		t.Errorf("interrupted run does not print the resume command:\n%s", log2.String())
	}
	st, err := ReadState(a.Out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 22 || st.Epoch != 1 || st.Batch != 7 {
		t.Errorf("state after interrupt: step %d epoch %d batch %d, want 22, 1, 7", st.Step, st.Epoch, st.Batch)
	}
	// The interrupted checkpoint loads into a fresh net.
	d := cpu.New()
	net, err := model.New(d, *a.Model, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Load(filepath.Join(a.Out, LastFile)); err != nil {
		t.Errorf("last.safetensors after interrupt: %v", err)
	}
	net.Close()
	d.Close()

	// 3. Resume, and interrupt again in the last step's evaluation (the
	// cancel lands before Evaluate reads a batch): the state says the
	// evaluation is due and the run is not finished.
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	_, err = Run(ctx3, a, RunOptions{Resume: true, Device: cpu.New(), Log: io.Discard,
		OnStep: func(step int64) {
			if step == 45 {
				cancel3()
			}
		}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("run cancelled at its last step returned %v, want ErrInterrupted", err)
	}
	if st, err := ReadState(a.Out); err != nil || st.Step != 45 || !st.EvalDue || st.Finished {
		t.Errorf("state after an interrupt in the last evaluation: %+v, %v; want step 45, evaluation due, not finished", st, err)
	}
	// As an older build wrote it, without eval_due and finished: the end
	// of an epoch whose evaluation is not recorded is due all the same.
	sp := filepath.Join(a.Out, StateFile)
	old, err := os.ReadFile(sp)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(old, []byte(`"eval_due": true`), []byte(`"eval_due": false`), 1)
	edited = bytes.Replace(edited, []byte(`"finished": false`), []byte(`"finished": true`), 1)
	if bytes.Equal(edited, old) {
		t.Fatalf("state.json has no eval_due and finished to edit:\n%s", old)
	}
	if err := os.WriteFile(sp, edited, 0o644); err != nil {
		t.Fatal(err)
	}

	// 4. Resume to the end: the evaluation runs.
	res, log, err := run(a, RunOptions{Resume: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if res.Steps != 45 || !res.Finished {
		t.Fatalf("resumed run ended at step %d (finished %v), want 45", res.Steps, res.Finished)
	}
	sameTensors(t, filepath.Join(ref.Out, LastFile), filepath.Join(a.Out, LastFile))
	refSt, _ := ReadState(ref.Out)
	aSt, _ := ReadState(a.Out)
	sameTensors(t, filepath.Join(ref.Out, refSt.Velocity), filepath.Join(a.Out, aSt.Velocity))
	if refSt.Schedule != aSt.Schedule || refSt.BestTop1 != aSt.BestTop1 {
		t.Errorf("schedule or best differ: %+v / %v vs %+v / %v", refSt.Schedule, refSt.BestTop1, aSt.Schedule, aSt.BestTop1)
	}
	if aSt.Schedule.LR > 0.01*0.01*1.0001 || aSt.Schedule.Drops != 3 {
		t.Errorf("step schedule after 3 epochs: %+v, want lr 1e-5 after 3 drops", aSt.Schedule)
	}

	// metrics.csv of the resumed run has no row twice: the rows after the
	// checkpoint it resumed from were cut.
	rows := metricsOf(t, a.Out)
	for i := 1; i < len(rows); i++ {
		if rows[i].Step < rows[i-1].Step {
			t.Errorf("metrics.csv row %d (step %d) after step %d", i+1, rows[i].Step, rows[i-1].Step)
		}
	}
	// And they are the uninterrupted run's rows, but for the times: the
	// window and epoch losses summed across the interruptions.
	sameRows(t, ref.Out, rows)
	// Old checkpoint files are removed: the default keeps the newest 3
	// (steps 44, 45 and 40), weights and velocity each.
	ents, _ := os.ReadDir(filepath.Join(a.Out, CkptDir))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(ents) != 6 || !strings.Contains(strings.Join(names, " "), "step-000000040.weights") {
		t.Errorf("%s holds %v, want the newest 3 checkpoints (40, 44, 45)", CkptDir, names)
	}

	// Resuming a finished run does nothing and says so; with other flags
	// too, and then it writes nothing either (config.toml keeps the
	// settings the run trained with).
	cfgBefore, _ := os.ReadFile(filepath.Join(a.Out, ConfigFile))
	metBefore, _ := os.ReadFile(filepath.Join(a.Out, MetricsFile))
	other := a
	other.LR = 0.5
	if _, log, err := run(other, RunOptions{Resume: true}); err != nil || !strings.Contains(log, "nothing to do") || !strings.Contains(log, "nothing was changed") {
		t.Errorf("resume of a finished run: %v\n%s", err, log)
	}
	cfgAfter, _ := os.ReadFile(filepath.Join(a.Out, ConfigFile))
	metAfter, _ := os.ReadFile(filepath.Join(a.Out, MetricsFile))
	if !bytes.Equal(cfgBefore, cfgAfter) || !bytes.Equal(metBefore, metAfter) {
		t.Errorf("a resume with nothing to do rewrote config.toml or metrics.csv")
	}
	// A fresh run refuses to overwrite it, and says how to train it on:
	// with more epochs than its 3.
	if _, _, err := run(a, RunOptions{}); err == nil || !strings.Contains(err.Error(), "--resume --out "+a.Out+" --epochs 4`") {
		t.Errorf("fresh run into a finished run's directory: %v, want an error pointing at --resume --epochs 4", err)
	}
	// A run whose max_steps ends inside an epoch, interrupted in its last
	// evaluation: the resume runs that evaluation alone.
	c := base
	c.MaxSteps = 20
	c.Out = filepath.Join(t.TempDir(), "c-ref")
	if _, log, err := run(c, RunOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	refRows := c.Out
	c.Out = filepath.Join(t.TempDir(), "c")
	ctx4, cancel4 := context.WithCancel(context.Background())
	defer cancel4()
	if _, err := Run(ctx4, c, RunOptions{Device: cpu.New(), Log: io.Discard,
		OnStep: func(step int64) {
			if step == 20 {
				cancel4()
			}
		}}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("run cancelled at its last step returned %v, want ErrInterrupted", err)
	}
	if res, log, err := run(c, RunOptions{Resume: true}); err != nil || !res.Finished || strings.Contains(log, "nothing to do") {
		t.Errorf("resume for the due evaluation: %v, finished %v\n%s", err, res.Finished, log)
	}
	sameRows(t, refRows, metricsOf(t, c.Out))

	// A fresh run into it: its max_steps ended it, so a larger one trains on.
	if _, _, err := run(c, RunOptions{}); err == nil || !strings.Contains(err.Error(), "--max-steps 40 (or 0: to the end of its 3 epochs)") {
		t.Errorf("fresh run into a directory max_steps finished: %v, want the --max-steps advice", err)
	}
	// Resuming a run that max_steps ended, with more epochs only: the
	// message names the max_steps that still ends it.
	if _, log, err := run(c, RunOptions{Resume: true}); err != nil || !strings.Contains(log, "its max_steps = 20 ends it: pass --max-steps 0") {
		t.Errorf("resume of a run max_steps ended: %v\n%s", err, log)
	}
	// A fresh run into a directory with a run's files but no state (a run
	// killed before its first checkpoint, or a user's own config.toml)
	// refuses, and leaves them.
	own := filepath.Join(t.TempDir(), "own")
	if err := os.MkdirAll(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(own, ConfigFile), []byte("mine = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := base
	o.Out = own
	if _, _, err := run(o, RunOptions{}); err == nil || !strings.Contains(err.Error(), "already holds "+ConfigFile) {
		t.Errorf("fresh run into a directory with a config.toml: %v, want a refusal naming it", err)
	}
	if b, _ := os.ReadFile(filepath.Join(own, ConfigFile)); string(b) != "mine = 1\n" {
		t.Errorf("the directory's config.toml became %q", b)
	}

	// Resuming with another batch size would not be exact: refused.
	b := a
	b.Batch = 16
	if _, _, err := run(b, RunOptions{Resume: true}); err == nil || !strings.Contains(err.Error(), "batch 16 (was 32)") {
		t.Errorf("resume with another batch: %v", err)
	}
}

// TestDivergenceStops checks that a NaN/Inf loss stops the run with the
// step and the last good checkpoint, and writes nothing after it.
func TestDivergenceStops(t *testing.T) {
	dir := writeSmallMNIST(t, 320, 64)
	cfg := testConfig(t, "mnist:"+dir, 0)
	cfg.MaxSteps = 4
	cfg.CheckpointEvery = 2
	var log bytes.Buffer
	if _, err := Run(context.Background(), cfg, RunOptions{Device: cpu.New(), Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	good, err := ReadState(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	// Resume with an absurd rate: the loss overflows within a few steps.
	cfg.MaxSteps, cfg.Epochs, cfg.LR, cfg.CheckpointEvery = 0, 5, 1e6, 100
	log.Reset()
	_, err = Run(context.Background(), cfg, RunOptions{Resume: true, Device: cpu.New(), Log: &log})
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("lr 1e6 gave %v, want ErrDiverged\n%s", err, log.String())
	}
	msg := err.Error()
	for _, want := range []string{"the loss of step", "--lr SMALLER", good.Weights, "step 4"} {
		if !strings.Contains(msg, want) {
			t.Errorf("divergence error %q does not mention %q", msg, want)
		}
	}
	// Nothing was saved after the bad step.
	if st, err := ReadState(cfg.Out); err != nil || st.Step != good.Step {
		t.Errorf("state after divergence: step %d, %v; want the good checkpoint's step %d", st.Step, err, good.Step)
	}
	t.Log(msg)

	// A fresh run that diverges before its first checkpoint leaves its
	// config.toml, metrics.csv and curves.png but no state: the same
	// command with a sane rate may start again in that directory.
	fresh := cfg
	fresh.Out = filepath.Join(t.TempDir(), "fresh")
	if _, err := Run(context.Background(), fresh, RunOptions{Device: cpu.New(), Log: io.Discard}); !errors.Is(err, ErrDiverged) {
		t.Fatalf("fresh run at lr 1e6: %v, want ErrDiverged", err)
	}
	if _, err := os.Stat(filepath.Join(fresh.Out, StateFile)); err == nil {
		t.Fatal("a run that diverged before its first checkpoint wrote a state")
	}
	fresh.LR, fresh.MaxSteps = 0.01, 2
	if _, err := Run(context.Background(), fresh, RunOptions{Device: cpu.New(), Log: io.Discard}); err != nil {
		t.Errorf("a new run where the diverged one left its files: %v", err)
	}
}

// TestConfigTOML checks the config file format: defaults, overrides,
// unknown keys, and the round trip of a resolved config.
func TestConfigTOML(t *testing.T) {
	c, err := ParseConfig([]byte("preset = \"paper\"\nepochs = 90\nbatch = 256\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Preset != "paper" || c.Epochs != 90 || c.Batch != 256 || c.LR != 0.01 || c.Momentum != 0.9 {
		t.Errorf("parsed %+v", c)
	}
	if _, err := ParseConfig([]byte("epoch = 3\n"), "x.toml"); err == nil || !strings.Contains(err.Error(), `unknown key "epoch"`) {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := ParseConfig([]byte("epochs = \n"), "x.toml"); err == nil || !strings.Contains(err.Error(), "x.toml:1") {
		t.Errorf("syntax error: %v, want file and line", err)
	}
	cfg := testConfig(t, "mnist", 0.25)
	text, err := cfg.TOML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfig([]byte(text), "resolved")
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	m1, _ := cfg.Network()
	m2, err := back.Network()
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := m1.TOML()
	s2, _ := m2.TOML()
	if s1 != s2 || back.Batch != cfg.Batch || back.Out != cfg.Out {
		t.Errorf("round trip changed the config:\n%s\n---\n%s", s1, s2)
	}
	if !IsTrainingConfig([]byte(text)) {
		t.Error("a resolved config is not recognised as a training config")
	}
	net, _ := model.PresetTOML("mini")
	if IsTrainingConfig(net) {
		t.Error("the mini network TOML is taken for a training config")
	}
	bad := DefaultConfig()
	bad.Batch = 0
	if err := bad.Validate(); err == nil {
		t.Error("batch 0 validates")
	}
	bad = DefaultConfig()
	bad.Schedule = "cosine"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "plateau") {
		t.Errorf("unknown schedule: %v", err)
	}
}

// TestSchedule checks the step and plateau rules.
func TestSchedule(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StepEpochs = 2
	s, err := newSchedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lrs []float64
	for e := 0; e < 5; e++ {
		s.EpochEnd(e, 0.5)
		lrs = append(lrs, s.LR)
	}
	want := []float64{0.01, 0.001, 0.001, 0.0001, 0.0001}
	for i := range want {
		if diff := lrs[i] - want[i]; diff > 1e-12 || diff < -1e-12 {
			t.Fatalf("step schedule rates %v, want %v", lrs, want)
		}
	}
	cfg.Schedule, cfg.Patience = SchedulePlateau, 2
	s, _ = newSchedule(cfg)
	errs := []float64{0.5, 0.4, 0.41, 0.4, 0.3, 0.35, 0.36}
	var got []float64
	for e, v := range errs {
		s.EpochEnd(e, v)
		got = append(got, s.LR)
	}
	// Drops after the second evaluation in a row without a new best (epochs 3 and 6).
	want = []float64{0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.0001}
	for i := range want {
		if diff := got[i] - want[i]; diff > 1e-12 || diff < -1e-12 {
			t.Fatalf("plateau rates %v, want %v", got, want)
		}
	}
}

// TestBatchLargerThanDataset checks the message for an impossible batch.
func TestBatchLargerThanDataset(t *testing.T) {
	dir := writeSmallMNIST(t, 40, 20)
	cfg := testConfig(t, "mnist:"+dir, 0)
	cfg.Batch = 64
	cfg.Epochs = 1
	_, err := Run(context.Background(), cfg, RunOptions{Device: cpu.New(), Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "--batch 40 or less") {
		t.Errorf("batch 64 on 40 samples: %v", err)
	}
}

// metricsOf reads the metrics.csv of the run directory dir.
func metricsOf(t *testing.T, dir string) []Metric {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := readMetrics(f)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// sameRows checks rows against the metrics.csv of run directory dir, all
// but the time-dependent columns (images per second, wall time).
func sameRows(t *testing.T, dir string, rows []Metric) {
	t.Helper()
	want := metricsOf(t, dir)
	if len(rows) != len(want) {
		t.Errorf("%d metrics rows, want %d as in %s", len(rows), len(want), dir)
	}
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	for i := range min(len(rows), len(want)) {
		g, w := rows[i], want[i]
		if g.Step != w.Step || !same(g.Epoch, w.Epoch) || !same(g.TrainLoss, w.TrainLoss) || !same(g.TrainTop1, w.TrainTop1) ||
			!same(g.TestLoss, w.TestLoss) || !same(g.TestTop1, w.TestTop1) || !same(g.TestTop5, w.TestTop5) || !same(g.LR, w.LR) {
			t.Errorf("metrics row %d: %+v, want %+v (times aside)", i+1, g, w)
		}
	}
}

// TestModelConfigBesideConfig: a relative model_config is read from the
// training config's directory, not the working directory.
func TestModelConfigBesideConfig(t *testing.T) {
	dir := t.TempDir()
	mc, err := model.Preset("mini")
	if err != nil {
		t.Fatal(err)
	}
	text, err := mc.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "net.toml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "train.toml")
	if err := os.WriteFile(cfgPath, []byte("model_config = \"net.toml\"\nepochs = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(cfgPath) // the working directory is the package's
	if err != nil {
		t.Fatal(err)
	}
	if c.ModelConfig != filepath.Join(dir, "net.toml") {
		t.Errorf("model_config resolved to %q, want it beside %s", c.ModelConfig, cfgPath)
	}
	if got, err := c.Network(); err != nil || got.Name != mc.Name {
		t.Errorf("network %q, %v; want %q", got.Name, err, mc.Name)
	}
}

// TestDataReshapedNote: a 28x28x1 network trained on CIFAR-10 says that
// the 32x32x3 images are scaled and taken to grey.
func TestDataReshapedNote(t *testing.T) {
	dir := t.TempDir()
	records := func(first, n int) []byte { // label, then 3072 bytes of pixels
		var b []byte
		for i := first; i < first+n; i++ {
			b = append(b, byte(i%10))
			b = append(b, bytes.Repeat([]byte{byte(7 * i)}, 3072)...)
		}
		return b
	}
	for k := 1; k <= 5; k++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", k)), records(3*k, 3), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "test_batch.bin"), records(0, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "cifar10:"+dir, 0)
	cfg.Batch, cfg.MaxSteps = 4, 1
	var log bytes.Buffer
	if _, err := Run(context.Background(), cfg, RunOptions{Device: cpu.New(), Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "at its input, 28x28x1: the 32x32x3 images are scaled and taken to grey") {
		t.Errorf("log lacks the note on the images' shape:\n%s", log.String())
	}
}

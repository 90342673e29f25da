package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/lookup"
	"github.com/alexcl/alexcl/device/opencl"
	"github.com/alexcl/alexcl/model"
	"github.com/urfave/cli/v2"
)

func init() {
	commands = append(commands, &cli.Command{
		Name:  "bench",
		Usage: "measure training and inference speed of a network on a device",
		Description: "Builds the network at --batch on --device with random weights, inputs and labels\n" +
			"(seeded), and times full training steps (upload of the batch, forward, loss,\n" +
			"backward, SGD update, read-back of the loss and accuracy counts only) and\n" +
			"inference (upload, forward): the median of --steps runs after --warmup. Then it\n" +
			"profiles --profile-steps more steps per layer (OpenCL kernel events on OpenCL\n" +
			"devices, wall time around each op on the CPU device) and prints each layer's\n" +
			"forward and backward time and GFLOP/s (a multiply-add is 2 FLOPs; conv and\n" +
			"linear layers only, as `alexcl summary` counts them), on OpenCL devices the\n" +
			"device time of each kernel in the same steps, and the peak device memory. On\n" +
			"devices that copy while they compute (OpenCL), each step's batch is uploaded\n" +
			"during the step before, as in `alexcl train`; --sync-upload measures without.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "paper", Usage: "built-in network: mini or paper"},
			&cli.StringFlag{Name: "config", Usage: "network TOML `FILE`, or a training config (a run's config.toml) to take its network (overrides --preset)"},
			&cli.StringFlag{Name: "device", Value: "auto", Usage: "device `ID`: auto (the first GPU, else cpu), cpu, cl0, gpu0, ... (see list-devices)"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per step"},
			&cli.IntFlag{Name: "steps", Value: 5, Usage: "timed steps (the median is reported)"},
			&cli.IntFlag{Name: "warmup", Value: 2, Usage: "untimed steps first (kernel builds, workspace growth, caches)"},
			&cli.IntFlag{Name: "profile-steps", Value: 1, Usage: "steps profiled per layer after the timed ones (0: skip the per-layer table)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the random weights, inputs and labels"},
			&cli.BoolFlag{Name: "sync-upload", Usage: "upload each batch inside its step even where the device could copy it during the previous one (to measure what the overlap gains)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object on one line instead of tables"},
		}, configOverrideFlags...),
		Action: noArgs(benchAction),
	})
}

// benchLayer is one layer's row of the per-layer profile.
type benchLayer struct {
	Name           string  `json:"name"`
	Desc           string  `json:"desc"`
	ForwardMS      float64 `json:"forward_ms"`
	BackwardMS     float64 `json:"backward_ms"`
	ForwardGFLOPS  float64 `json:"forward_gflops,omitempty"`
	BackwardGFLOPS float64 `json:"backward_gflops,omitempty"`
	forwardFLOPs   float64
	backwardFLOPs  float64
}

// benchKernel is one kernel's share of a profiled training step.
type benchKernel struct {
	Name     string  `json:"name"`
	MS       float64 `json:"ms"`       // device time per step
	Launches int     `json:"launches"` // per step
}

// benchResult is what `alexcl bench --json` prints.
type benchResult struct {
	Network    string `json:"network"`
	Device     string `json:"device"`
	DeviceName string `json:"device_name"`
	Platform   string `json:"platform"`
	Driver     string `json:"driver"` // for the cpu device: Go's version and the GEMM
	// Tunables are the OpenCL program's -D values and host-side paths
	// (tuned or set), NAME=value sorted: which kernels the figures are of.
	Tunables string `json:"tunables,omitempty"`
	// ConvPaths are the convolutions' paths chosen per layer shape
	// (OpenCL with tuning on): "forward 384 3x3/1 p1 g2 on
	// 128x256x13x13: winograd4x4".
	ConvPaths []string `json:"conv_paths,omitempty"`
	Batch     int      `json:"batch"`
	Steps     int      `json:"steps"`
	Warmup    int      `json:"warmup"`

	TrainImagesPerSecond float64 `json:"train_images_per_second"`
	InferImagesPerSecond float64 `json:"infer_images_per_second"`
	TrainStepMS          float64 `json:"train_step_ms"` // median
	InferStepMS          float64 `json:"infer_step_ms"` // median
	TrainGFLOPS          float64 `json:"train_gflops"`  // FLOPs of a step / median step time
	InferGFLOPS          float64 `json:"infer_gflops"`
	TrainGFLOPPerImage   float64 `json:"train_gflop_per_image"`

	// Upload says when a training step's batch is copied to the device:
	// "in the step", or "during the previous step" (a second queue).
	Upload string `json:"upload"`

	PeakDeviceBytes int64 `json:"peak_device_bytes"` // MemStats.Peak + conv workspace
	WorkspaceBytes  int64 `json:"workspace_bytes"`

	// Profile is "opencl events" or "wall time per op"; OtherMS is the
	// profiled time of the step outside the layers (zeroing gradients,
	// loss, SGD update, uploads where timed).
	Profile string       `json:"profile,omitempty"`
	Layers  []benchLayer `json:"layers,omitempty"`
	OtherMS float64      `json:"other_ms,omitempty"`
	// Kernels is the profiled step's device time per kernel, most first
	// (OpenCL devices only).
	Kernels []benchKernel `json:"kernels,omitempty"`
}

func benchAction(ctx *cli.Context) error {
	cfg, err := configFromFlags(ctx)
	if err != nil {
		return err
	}
	batch, steps, warmup := ctx.Int("batch"), ctx.Int("steps"), ctx.Int("warmup")
	switch {
	case batch < 1:
		return fmt.Errorf("bench: --batch %d must be positive", batch)
	case steps < 1:
		return fmt.Errorf("bench: --steps %d must be positive", steps)
	case warmup < 0 || ctx.Int("profile-steps") < 0:
		return fmt.Errorf("bench: --warmup and --profile-steps must not be negative")
	}
	d, err := lookup.Open(ctx.String("device"), openCLOptions())
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer d.Close()
	res, err := runBench(d, cfg, batch, steps, warmup, ctx.Int("profile-steps"), ctx.Uint64("seed"), ctx.Bool("sync-upload"))
	if err != nil {
		return fmt.Errorf("bench %s on %s: %w", cfg.Name, d.Info().ID, err)
	}
	if ctx.Bool("json") {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(ctx.App.Writer, string(b))
		return err
	}
	return res.print(ctx.App.Writer)
}

// runBench builds cfg on d and measures it.
// With syncUpload every batch is written inside its step.
func runBench(d device.Device, cfg model.Config, batch, steps, warmup, profileSteps int, seed uint64, syncUpload bool) (*benchResult, error) {
	info := d.Info()
	tr := &benchTracer{Device: d}
	net, err := model.New(tr, cfg, batch)
	if err != nil {
		return nil, err
	}
	defer net.Close()
	if err := net.Init(seed); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0xbe9c4))
	x := make([]float32, batch*net.InputLen())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	labels := make([]int32, batch)
	for i := range labels {
		labels[i] = int32(rng.IntN(net.Classes()))
	}
	// Like alexcl train, a device that can copy while it computes gets two
	// input buffers and the next step's batch copied during this one.
	aw, _ := d.(device.AsyncWriter)
	if syncUpload {
		aw = nil
	}
	var xbs, lbs [2]device.Buffer
	for s := range xbs {
		if s == 1 && aw == nil {
			break
		}
		if xbs[s], err = device.AllocFloat32(d, len(x)); err != nil {
			return nil, err
		}
		defer d.Free(xbs[s])
		if lbs[s], err = device.AllocFloat32(d, batch); err != nil {
			return nil, err
		}
		defer d.Free(lbs[s])
	}
	xBytes, lBytes := device.Float32Bytes(x), device.Int32Bytes(labels)
	sgd := device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}
	var (
		step     uint64
		slot     int               // buffers this step trains on
		ahead    bool              // their copy was started during the last step
		inFlight []device.Transfer // the copies into them, waited for once this step has read its loss
		started  []device.Transfer // the copies this step starts
	)
	waitCopies := func() error {
		var err error
		for _, t := range inFlight {
			if e := t.Wait(); e != nil && err == nil {
				err = e
			}
		}
		inFlight, started = started, inFlight[:0]
		return err
	}
	defer func() { waitCopies(); waitCopies() }()

	// trainStep is one full training step as `alexcl train` runs it.
	trainStep := func() error {
		step++
		tr.phase = "upload"
		xb, lb := xbs[slot], lbs[slot]
		if !ahead {
			if err := d.Write(xb, 0, xBytes); err != nil {
				return err
			}
			if err := d.Write(lb, 0, lBytes); err != nil {
				return err
			}
		}
		tr.phase = "forward"
		if _, err := net.Forward(xb, batch, true, step); err != nil {
			return err
		}
		tr.phase = "loss"
		if err := net.Loss(lb, batch); err != nil {
			return err
		}
		tr.phase = "backward"
		if err := net.Backward(batch); err != nil {
			return err
		}
		tr.phase = "step"
		if err := net.Step(sgd); err != nil {
			return err
		}
		if aw != nil {
			tr.phase = "upload"
			slot ^= 1
			for _, c := range []struct {
				b   device.Buffer
				src []byte
			}{{xbs[slot], xBytes}, {lbs[slot], lBytes}} {
				t, err := aw.WriteAsync(c.b, 0, c.src)
				if err != nil {
					return err
				}
				started = append(started, t)
			}
			ahead = true
		}
		tr.phase = "read"
		if _, _, _, err := net.ReadLoss(batch); err != nil {
			return err
		}
		// This step's kernels waited for its batch's copies: they are done.
		return waitCopies()
	}
	xb := xbs[0]
	inferStep := func() error {
		tr.phase = "upload"
		if err := d.Write(xb, 0, xBytes); err != nil {
			return err
		}
		tr.phase = "forward"
		if _, err := net.Forward(xb, batch, false, 0); err != nil {
			return err
		}
		tr.phase = "read"
		return d.Sync()
	}
	timeSteps := func(f func() error) (time.Duration, error) {
		for i := 0; i < warmup; i++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		times := make([]time.Duration, steps)
		for i := range times {
			start := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			times[i] = time.Since(start)
		}
		slices.Sort(times)
		return times[len(times)/2], nil
	}

	trainT, err := timeSteps(trainStep)
	if err == nil { // the copies of a step that will not run, before xbs[0] is written
		if err = waitCopies(); err == nil {
			err = waitCopies()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("training step: %w", err)
	}
	inferT, err := timeSteps(inferStep)
	if err != nil {
		return nil, fmt.Errorf("inference step: %w", err)
	}

	layers := net.Layers()
	var fwdFLOPs, trainFLOPs float64
	for i, l := range layers {
		f := float64(l.FLOPs) * float64(batch)
		fwdFLOPs += f
		trainFLOPs += f + benchBackwardFLOPs(l, i, f)
	}
	res := &benchResult{
		Network: cfg.Name, Device: info.ID, DeviceName: info.Name, Platform: info.Platform, Driver: info.Driver,
		Batch: batch, Steps: steps, Warmup: warmup,
		TrainImagesPerSecond: float64(batch) / trainT.Seconds(),
		InferImagesPerSecond: float64(batch) / inferT.Seconds(),
		TrainStepMS:          ms(trainT),
		InferStepMS:          ms(inferT),
		TrainGFLOPS:          trainFLOPs / trainT.Seconds() / 1e9,
		InferGFLOPS:          fwdFLOPs / inferT.Seconds() / 1e9,
		TrainGFLOPPerImage:   trainFLOPs / float64(batch) / 1e9,
		Upload:               "in the step",
	}
	if aw != nil {
		res.Upload = "during the previous step"
	}

	if profileSteps > 0 {
		var total map[string]float64
		kernels := map[string]*benchKernel{}
		for i := 0; i < profileSteps; i++ {
			ops, kind, err := tr.profile(trainStep)
			if err != nil {
				return nil, fmt.Errorf("profiled step: %w", err)
			}
			res.Profile = kind
			for _, k := range tr.kernels {
				bk := kernels[k.Kernel]
				if bk == nil {
					bk = &benchKernel{Name: k.Kernel}
					kernels[k.Kernel] = bk
				}
				bk.MS += ms(k.Duration) / float64(profileSteps)
				bk.Launches++
			}
			t := benchAttribute(layers, ops)
			if total == nil {
				total = t
			} else {
				for k, v := range t {
					total[k] += v
				}
			}
		}
		for i, l := range layers {
			f := float64(l.FLOPs) * float64(batch)
			bl := benchLayer{Name: l.Name, Desc: l.Desc(),
				ForwardMS:    total["f "+l.Name] / float64(profileSteps),
				BackwardMS:   total["b "+l.Name] / float64(profileSteps),
				forwardFLOPs: f, backwardFLOPs: benchBackwardFLOPs(l, i, f)}
			if bl.ForwardMS > 0 && f > 0 {
				bl.ForwardGFLOPS = f / bl.ForwardMS / 1e6
			}
			if bl.BackwardMS > 0 && bl.backwardFLOPs > 0 {
				bl.BackwardGFLOPS = bl.backwardFLOPs / bl.BackwardMS / 1e6
			}
			res.Layers = append(res.Layers, bl)
		}
		res.OtherMS = total["other"] / float64(profileSteps)
		for _, k := range kernels {
			k.Launches /= profileSteps
			res.Kernels = append(res.Kernels, *k)
		}
		slices.SortFunc(res.Kernels, func(a, b benchKernel) int { return cmp.Compare(b.MS, a.MS) })
	}
	if tu, ok := d.(interface{ Tunables() map[string]string }); ok {
		var defs []string
		for _, n := range slices.Sorted(maps.Keys(tu.Tunables())) {
			defs = append(defs, n+"="+tu.Tunables()[n])
		}
		res.Tunables = strings.Join(defs, " ")
	}
	if cp, ok := d.(interface{ ConvPaths() []string }); ok {
		res.ConvPaths = cp.ConvPaths()
	}
	res.PeakDeviceBytes = d.MemStats().Peak
	if w, ok := d.(interface{ WorkspaceBytes() int64 }); ok {
		res.WorkspaceBytes = w.WorkspaceBytes()
		res.PeakDeviceBytes += res.WorkspaceBytes
	}
	return res, nil
}

// benchBackwardFLOPs is the backward cost of layer i whose forward costs
// f: a conv or linear layer computes the gradient of its weights (f) and,
// unless it is the first layer, of its input (f again).
func benchBackwardFLOPs(l model.LayerInfo, i int, f float64) float64 {
	if i == 0 {
		return f
	}
	return 2 * f
}

func ms(t time.Duration) float64 { return float64(t) / float64(time.Millisecond) }

// print writes the human-readable report.
func (r *benchResult) print(w io.Writer) error {
	fmt.Fprintf(w, "%s on %s (%s, %s), batch %d, median of %d steps after %d warm-up\n",
		r.Network, r.Device, r.DeviceName, r.Platform, r.Batch, r.Steps, r.Warmup)
	fmt.Fprintf(w, "driver: %s\n", r.Driver)
	if r.Tunables != "" {
		fmt.Fprintf(w, "kernels: %s\n", r.Tunables)
	}
	for _, p := range r.ConvPaths {
		fmt.Fprintf(w, "path: %s\n", p)
	}
	fmt.Fprintf(w, "batch upload: %s\n\n", r.Upload)
	fmt.Fprintf(w, "training   %9.1f images/s  %9.1f ms/step  %8.1f GFLOP/s (%.2f GFLOP per image)\n",
		r.TrainImagesPerSecond, r.TrainStepMS, r.TrainGFLOPS, r.TrainGFLOPPerImage)
	fmt.Fprintf(w, "inference  %9.1f images/s  %9.1f ms/step  %8.1f GFLOP/s\n",
		r.InferImagesPerSecond, r.InferStepMS, r.InferGFLOPS)
	fmt.Fprintf(w, "peak device memory %.1f MiB", float64(r.PeakDeviceBytes)/(1<<20))
	if r.WorkspaceBytes > 0 {
		fmt.Fprintf(w, " (conv workspace %.1f MiB)", float64(r.WorkspaceBytes)/(1<<20))
	}
	fmt.Fprintln(w)
	if len(r.Layers) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nper layer, one training step (%s):\n", r.Profile)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tdesc\tforward ms\tGFLOP/s\tbackward ms\tGFLOP/s\t")
	gf := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", v)
	}
	var f, b float64
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%.2f\t%s\t\n", l.Name, l.Desc, l.ForwardMS, gf(l.ForwardGFLOPS), l.BackwardMS, gf(l.BackwardGFLOPS))
		f += l.ForwardMS
		b += l.BackwardMS
	}
	fmt.Fprintf(tw, "layers\t\t%.2f\t\t%.2f\t\t\n", f, b)
	fmt.Fprintf(tw, "other\t(zero grad, loss, SGD, ...)\t\t\t%.2f\t\t\n", r.OtherMS)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Kernels) == 0 {
		return nil
	}
	var total float64
	for _, k := range r.Kernels {
		total += k.MS
	}
	fmt.Fprintf(w, "\nper kernel, the same step (%.2f ms on the device):\n", total)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\tms\tshare\tlaunches\t")
	for _, k := range r.Kernels {
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f%%\t%d\t\n", k.Name, k.MS, 100*k.MS/max(total, 1e-9), k.Launches)
	}
	return tw.Flush()
}

// benchOp is one device call of a profiled step.
type benchOp struct {
	phase, op string
	ms        float64
}

// benchTracer is a device.Device that passes every call through and, while
// profiling, records each op with its time: on an OpenCL device the
// kernel events the op queued, elsewhere the wall time of the op and a
// Sync after it.
type benchTracer struct {
	device.Device
	phase   string
	tracing bool
	ops     []benchOp
	counts  []int               // OpenCL: ProfiledLaunches after each op
	kernels []opencl.KernelTime // OpenCL: every launch of the profiled step
}

// benchProfiler is implemented by *opencl.Device.
type benchProfiler interface {
	StartProfiling()
	ProfiledLaunches() int
	StopProfiling() ([]opencl.KernelTime, error)
}

// profile runs step with tracing on and returns its ops and how they were timed.
func (t *benchTracer) profile(step func() error) ([]benchOp, string, error) {
	t.kernels = nil
	if err := t.Device.Sync(); err != nil {
		return nil, "", err
	}
	t.ops, t.counts, t.tracing = nil, nil, true
	defer func() { t.tracing = false }()
	p, isCL := t.Device.(benchProfiler)
	if !isCL {
		err := step()
		return t.ops, "wall time per op, with a Sync after each", err
	}
	p.StartProfiling()
	err := step()
	times, perr := p.StopProfiling()
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, "", err
	}
	t.kernels = times
	prev := 0
	for i := range t.ops {
		t.ops[i].ms = 0
		for _, k := range times[prev:min(t.counts[i], len(times))] {
			t.ops[i].ms += ms(k.Duration)
		}
		prev = t.counts[i]
	}
	return t.ops, "OpenCL kernel events", nil
}

// rec runs one op, recording it while tracing.
func (t *benchTracer) rec(op string, f func() error) error {
	if !t.tracing {
		return f()
	}
	if p, ok := t.Device.(benchProfiler); ok {
		err := f()
		t.ops = append(t.ops, benchOp{phase: t.phase, op: op})
		t.counts = append(t.counts, p.ProfiledLaunches())
		return err
	}
	start := time.Now()
	err := f()
	if err == nil {
		err = t.Device.Sync()
	}
	t.ops = append(t.ops, benchOp{phase: t.phase, op: op, ms: ms(time.Since(start))})
	return err
}

// Fill is traced (Backward zeroes the gradients with it).
func (t *benchTracer) Fill(b device.Buffer, v float32) error {
	return t.rec("Fill", func() error { return t.Device.Fill(b, v) })
}

// Gemm is traced.
func (t *benchTracer) Gemm(tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error {
	return t.rec("Gemm", func() error { return t.Device.Gemm(tA, tB, M, N, K, alpha, A, B, beta, C) })
}

// AddBias is traced.
func (t *benchTracer) AddBias(y, b device.Buffer, rows, cols int) error {
	return t.rec("AddBias", func() error { return t.Device.AddBias(y, b, rows, cols) })
}

// BiasGrad is traced.
func (t *benchTracer) BiasGrad(dy, db device.Buffer, rows, cols int) error {
	return t.rec("BiasGrad", func() error { return t.Device.BiasGrad(dy, db, rows, cols) })
}

// Conv2DForward is traced.
func (t *benchTracer) Conv2DForward(x, w, b, y device.Buffer, s device.ConvShape) error {
	return t.rec("Conv2DForward", func() error { return t.Device.Conv2DForward(x, w, b, y, s) })
}

// Conv2DBackwardData is traced.
func (t *benchTracer) Conv2DBackwardData(dy, w, dx device.Buffer, s device.ConvShape) error {
	return t.rec("Conv2DBackwardData", func() error { return t.Device.Conv2DBackwardData(dy, w, dx, s) })
}

// Conv2DBackwardFilter is traced.
func (t *benchTracer) Conv2DBackwardFilter(x, dy, dw, db device.Buffer, s device.ConvShape) error {
	return t.rec("Conv2DBackwardFilter", func() error { return t.Device.Conv2DBackwardFilter(x, dy, dw, db, s) })
}

// ReLUForward is traced.
func (t *benchTracer) ReLUForward(x, y device.Buffer, n int) error {
	return t.rec("ReLUForward", func() error { return t.Device.ReLUForward(x, y, n) })
}

// ReLUBackward is traced.
func (t *benchTracer) ReLUBackward(y, dy, dx device.Buffer, n int) error {
	return t.rec("ReLUBackward", func() error { return t.Device.ReLUBackward(y, dy, dx, n) })
}

// MaxPoolForward is traced.
func (t *benchTracer) MaxPoolForward(x, y, idx device.Buffer, s device.PoolShape) error {
	return t.rec("MaxPoolForward", func() error { return t.Device.MaxPoolForward(x, y, idx, s) })
}

// MaxPoolBackward is traced.
func (t *benchTracer) MaxPoolBackward(idx, dy, dx device.Buffer, s device.PoolShape) error {
	return t.rec("MaxPoolBackward", func() error { return t.Device.MaxPoolBackward(idx, dy, dx, s) })
}

// LRNForward is traced.
func (t *benchTracer) LRNForward(x, y, scale device.Buffer, s device.LRNShape) error {
	return t.rec("LRNForward", func() error { return t.Device.LRNForward(x, y, scale, s) })
}

// LRNBackward is traced.
func (t *benchTracer) LRNBackward(x, y, scale, dy, dx device.Buffer, s device.LRNShape) error {
	return t.rec("LRNBackward", func() error { return t.Device.LRNBackward(x, y, scale, dy, dx, s) })
}

// DropoutForward is traced.
func (t *benchTracer) DropoutForward(x, y device.Buffer, n int, p float32, key device.DropoutKey) error {
	return t.rec("DropoutForward", func() error { return t.Device.DropoutForward(x, y, n, p, key) })
}

// DropoutBackward is traced.
func (t *benchTracer) DropoutBackward(dy, dx device.Buffer, n int, p float32, key device.DropoutKey) error {
	return t.rec("DropoutBackward", func() error { return t.Device.DropoutBackward(dy, dx, n, p, key) })
}

// SoftmaxCrossEntropy is traced.
func (t *benchTracer) SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits device.Buffer, n, classes int) error {
	return t.rec("SoftmaxCrossEntropy", func() error {
		return t.Device.SoftmaxCrossEntropy(logits, labels, loss, rank, dlogits, n, classes)
	})
}

// SGDUpdate is traced.
func (t *benchTracer) SGDUpdate(w, g, v device.Buffer, n int, p device.SGDParams) error {
	return t.rec("SGDUpdate", func() error { return t.Device.SGDUpdate(w, g, v, n, p) })
}

// benchLayerOps lists, per layer type, the ops model.Net's Forward and
// Backward call for one layer, in order (Backward walks the layers in
// reverse). Dropout calls nothing when it does not drop; the first layer's
// conv or linear skips its input gradient.
var benchLayerOps = map[string][2][]string{
	model.Conv:    {{"Conv2DForward"}, {"Conv2DBackwardFilter", "Conv2DBackwardData"}},
	model.ReLU:    {{"ReLUForward"}, {"ReLUBackward"}},
	model.LRN:     {{"LRNForward"}, {"LRNBackward"}},
	model.MaxPool: {{"MaxPoolForward"}, {"MaxPoolBackward"}},
	model.Dropout: {{"DropoutForward"}, {"DropoutBackward"}},
	model.Linear:  {{"Gemm", "AddBias"}, {"BiasGrad", "Gemm", "Gemm"}},
}

// benchAttribute sums the ops' times per layer, keyed "f NAME" (forward)
// and "b NAME" (backward), and "other" for everything else, by walking the
// layers in the order the net calls their ops (benchLayerOps). An op that
// fits no layer counts as other, so a change in model.Net's op order
// misattributes time but never loses it.
func benchAttribute(layers []model.LayerInfo, ops []benchOp) map[string]float64 {
	out := map[string]float64{}
	walk := func(phase string, order []int, dir int, prefix string) {
		cur, pos := 0, 0
		for _, o := range ops {
			if o.phase != phase || o.op == "Fill" {
				if o.phase == phase {
					out["other"] += o.ms
				}
				continue
			}
			placed := false
			for cur < len(order) {
				want := benchLayerOps[layers[order[cur]].Layer.Type][dir]
				if pos < len(want) && want[pos] == o.op {
					out[prefix+layers[order[cur]].Name] += o.ms
					placed = true
					if pos++; pos == len(want) {
						cur, pos = cur+1, 0
					}
					break
				}
				cur, pos = cur+1, 0 // this layer called nothing (more)
			}
			if !placed {
				out["other"] += o.ms
			}
		}
	}
	fwd := make([]int, len(layers))
	bwd := make([]int, len(layers))
	for i := range layers {
		fwd[i], bwd[i] = i, len(layers)-1-i
	}
	walk("forward", fwd, 0, "f ")
	walk("backward", bwd, 1, "b ")
	for _, o := range ops {
		if o.phase != "forward" && o.phase != "backward" {
			out["other"] += o.ms
		}
	}
	return out
}

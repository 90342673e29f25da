package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl"
	"github.com/alexcl/alexcl/device/opencl/cl"
	"github.com/alexcl/alexcl/model"
)

// RunOptions are the parts of a run that are not training settings.
type RunOptions struct {
	// Resume continues the run whose state is in Config.Out.
	Resume bool
	// Device, when set, is used instead of opening Config.Device; Run does
	// not close it.
	Device device.Device
	// OpenCL configures an OpenCL device opened for Config.Device.
	OpenCL opencl.Options
	// Log receives progress and summaries; nil: os.Stderr.
	Log io.Writer
	// ProgressEvery is the interval between progress lines; 0: redrawn
	// 5 times a second on a terminal, a line every 10 s otherwise.
	ProgressEvery time.Duration
	// Verbose prints the network's layer table and the device.
	Verbose bool
	// EvalLimit evaluates only the first EvalLimit test samples (0: all),
	// for quick checks and tests.
	EvalLimit int
	// OnStep, when set, is called after every optimizer step with the
	// number of steps done (tests use it to cancel at a chosen step).
	OnStep func(step int64)
	// ResumeCommand is the command a user types to resume, for messages;
	// "": alexcl train --resume --out DIR.
	ResumeCommand string
}

// Result summarises a finished (or stopped) run.
type Result struct {
	OutDir    string
	Steps     int64      // optimizer steps done in all, across resumes
	Epochs    float64    // epochs done, fractional
	TrainLoss float64    // mean training loss of the last epoch (or part of one)
	Test      EvalResult // the last evaluation
	BestTop1  float64    // best test top-1 of any evaluation
	BestStep  int64      // step of the best evaluation
	ImagesPS  float64    // training images per second in this process, evaluation excluded
	Elapsed   time.Duration
	Finished  bool // the run reached its last step
}

// ErrInterrupted is returned (wrapped) when ctx is cancelled: the run has
// saved a checkpoint and can be resumed.
var ErrInterrupted = errors.New("training interrupted")

// ErrDiverged is returned (wrapped) when the loss becomes NaN or infinite.
var ErrDiverged = errors.New("training diverged")

// ErrOutOfMemory is returned (wrapped, beside the device's own error) when
// the device runs out of memory or resources (CL_MEM_OBJECT_ALLOCATION_FAILURE,
// CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY); the message says what the
// network asked for, what the device has and which batch would fit.
var ErrOutOfMemory = errors.New("device out of memory")

// run is the state of one Run call.
type run struct {
	cfg   Config
	opts  RunOptions
	prog  *progress
	mc    model.Config // the network, resolved
	net   *model.Net
	d     device.Device
	train data.Dataset
	test  data.Dataset
	ckpt  *checkpointer
	met   *metricsLog
	st    State

	total    int64 // last step of the run
	perEpoch int
	start    time.Time
	trainDur time.Duration // time in training steps in this process
	trainImg int64
	lastCkpt string // weights file of the latest checkpoint, "" before the first
	stepping bool   // the training loop has started
	skipped  int    // unreadable training images reported so far
}

// Run trains the network cfg describes, writing checkpoints, metrics and
// curves into cfg.Out, and evaluating on the test split after every epoch.
// Cancelling ctx finishes the current step, writes a checkpoint and
// returns an error wrapping ErrInterrupted; a NaN or infinite loss (or
// weight, checked at every checkpoint) returns one wrapping ErrDiverged.
// With opts.Resume it continues exactly from the state saved in cfg.Out:
// on the CPU device the weights are bit for bit those of an uninterrupted
// run.
//
// Whatever stops a run, cfg.Out keeps its last complete checkpoint: every
// file is written atomically, a failed checkpoint removes what it wrote,
// and a run that fails before training starts (bad data, network, device
// or weights) writes nothing at all. An error from the device during
// training (lost GPU, out of memory) names the step, the last checkpoint
// and the command that resumes from it; ErrOutOfMemory marks the latter.
func Run(ctx context.Context, cfg Config, opts RunOptions) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("training config: %w", err)
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if opts.ResumeCommand == "" {
		opts.ResumeCommand = "alexcl train --resume --out " + shellQuote(cfg.Out)
	}
	r := &run{cfg: cfg, opts: opts, start: time.Now()}
	res, err := r.run(ctx)
	if err != nil {
		err = r.explain(err)
	}
	if r.met != nil {
		r.met.close()
	}
	if r.net != nil {
		r.net.Close()
	}
	if r.d != nil && opts.Device == nil {
		r.d.Close()
	}
	return res, err
}

func (r *run) run(ctx context.Context) (Result, error) {
	cfg := r.cfg
	mc, err := cfg.Network()
	if err != nil {
		return Result{}, fmt.Errorf("network: %w", err)
	}
	spec, err := data.ParseSpec(cfg.Data)
	if err != nil {
		return Result{}, err
	}

	// The output directory: a fresh run refuses to overwrite another's state.
	statePath := filepath.Join(cfg.Out, StateFile)
	if r.opts.Resume {
		if r.st, err = ReadState(cfg.Out); err != nil {
			return Result{}, err
		}
		if err := r.checkResumable(); err != nil {
			return Result{}, err
		}
		r.updateSchedule()
	} else {
		if _, err := os.Stat(statePath); err == nil {
			if st, err := ReadState(cfg.Out); err == nil && st.Finished {
				// What ended it: its max_steps (kept at resume) or its epochs.
				further := fmt.Sprintf("--epochs %d", st.Epoch+1)
				if old, err := LoadConfig(filepath.Join(cfg.Out, ConfigFile)); err == nil {
					further = fmt.Sprintf("--epochs %d", old.Epochs+1)
					if old.MaxSteps > 0 && old.MaxSteps <= st.Step {
						further = fmt.Sprintf("--max-steps %d (or 0: to the end of its %d epochs)", 2*st.Step, old.Epochs)
					}
				}
				return Result{}, fmt.Errorf("%s already holds a training run, finished at step %d: train it further with "+
					"`--resume --out %s %s`, pick another --out, or delete the directory",
					cfg.Out, st.Step, cfg.Out, further)
			}
			return Result{}, fmt.Errorf("%s already holds a training run (%s): continue it with --resume --out %s, pick another --out, or delete the directory",
				cfg.Out, StateFile, cfg.Out)
		}
		// Files a run writes, without a state: someone else's (a
		// config.toml beside the data) are never overwritten unasked; an
		// attempt that stopped before its first checkpoint (it diverged,
		// ran out of memory, was killed) wrote the config.toml TOML()
		// heads, and a new run may replace what it left.
		var there []string
		for _, name := range []string{ConfigFile, MetricsFile, LastFile, BestFile, CurvesFile, CkptDir} {
			if _, err := os.Lstat(filepath.Join(cfg.Out, name)); err == nil {
				there = append(there, name)
			}
		}
		if b, err := os.ReadFile(filepath.Join(cfg.Out, ConfigFile)); err == nil && bytes.HasPrefix(b, []byte(configHead)) {
			there = nil
		}
		if len(there) > 0 {
			return Result{}, fmt.Errorf("%s already holds %s, which a run would overwrite: pick another --out, or move or delete %s",
				cfg.Out, strings.Join(there, ", "), map[bool]string{true: "it", false: "them"}[len(there) == 1])
		}
		r.st = State{Version: stateVersion, Seed: cfg.Seed, Data: cfg.Data, BatchLen: cfg.Batch,
			Shuffle: cfg.Shuffle, Augment: cfg.Augment, BestTop1: -1}
		if r.st.Schedule, err = newSchedule(cfg); err != nil {
			return Result{}, err
		}
	}
	// Data, shaped as the network wants it.
	in := data.Options{Channels: mc.Input.Channels, Height: mc.Input.Height, Width: mc.Input.Width, Workers: cfg.Workers}
	in.Strict = cfg.Strict
	trainOpts := in
	trainOpts.Augment = cfg.Augment
	trainDS, err := data.Open(spec, "train", trainOpts)
	if err != nil {
		return Result{}, fmt.Errorf("training data: %w", err)
	}
	if r.test, err = data.Open(spec, "test", in); err != nil {
		return Result{}, fmt.Errorf("test data: %w", err)
	}
	if mc.Classes != trainDS.Classes() {
		if cfg.Model != nil || cfg.ModelConfig != "" {
			return Result{}, fmt.Errorf("the network has %d classes but %s has %d: set classes = %d in the network config",
				mc.Classes, spec, trainDS.Classes(), trainDS.Classes())
		}
		fmt.Fprintf(r.opts.Log, "note: preset %s set to %d classes, as %s has\n", cfg.Preset, trainDS.Classes(), spec)
		mc = mc.WithClasses(trainDS.Classes())
	}
	if cfg.Batch > trainDS.Len() {
		return Result{}, fmt.Errorf("batch %d is larger than the training split of %s (%d samples): use --batch %d or less",
			cfg.Batch, spec, trainDS.Len(), trainDS.Len())
	}
	r.train, r.mc = trainDS, mc
	if native := data.DefaultOptions(spec); spec.Kind != data.Folder &&
		(native.Channels != mc.Input.Channels || native.Height != mc.Input.Height || native.Width != mc.Input.Width) {
		how := "scaled"
		switch {
		case native.Channels == 3 && mc.Input.Channels == 1:
			how = "scaled and taken to grey"
		case native.Channels == 1 && mc.Input.Channels == 3:
			how = "scaled, grey in every channel"
		}
		fmt.Fprintf(r.opts.Log, "note: %s is fed to %s at its input, %dx%dx%d: the %dx%dx%d images are %s (a network TOML whose input is %dx%dx%d takes them as they are)\n",
			spec, mc.Name, mc.Input.Height, mc.Input.Width, mc.Input.Channels, native.Height, native.Width, native.Channels, how,
			native.Height, native.Width, native.Channels)
	}
	r.noteSkipped("training", trainDS)
	r.noteSkipped("test", r.test)

	// The run's length, and a resumed run with nothing left to do, before
	// anything is opened or written: it leaves the directory as it was.
	r.perEpoch = data.BatchesPerEpoch(trainDS.Len(), cfg.Batch, true) // the loader's, below
	r.total = int64(cfg.Epochs) * int64(r.perEpoch)
	if cfg.MaxSteps > 0 && (r.total == 0 || cfg.MaxSteps < r.total) {
		r.total = cfg.MaxSteps
	}
	r.prog = newProgress(r.opts.Log, r.opts.ProgressEvery, r.total, r.perEpoch, r.st.Step)
	if r.st.Step >= r.total && !r.evalDue() {
		how := "raise --epochs or --max-steps to train on"
		if cfg.MaxSteps > 0 && cfg.MaxSteps < int64(cfg.Epochs)*int64(r.perEpoch) {
			how = fmt.Sprintf("its max_steps = %d ends it: pass --max-steps 0 to train to the end of --epochs (now %d), or a larger --max-steps", cfg.MaxSteps, cfg.Epochs)
		}
		where := fmt.Sprintf("at step %d of %d", r.st.Step, r.total)
		if r.st.Step > r.total {
			where = fmt.Sprintf("at step %d, past the %d steps of epochs = %d", r.st.Step, r.total, cfg.Epochs)
			if cfg.MaxSteps > 0 && cfg.MaxSteps == r.total {
				where = fmt.Sprintf("at step %d, past max_steps = %d", r.st.Step, r.total)
			}
		}
		r.prog.line("nothing to do: the run in %s is %s; %s (nothing was changed)", cfg.Out, where, how)
		return r.result(EvalResult{}, math.NaN()), nil
	}

	// Device and network, before anything is written: a run that cannot
	// start leaves the output directory as it was.
	r.d = r.opts.Device
	if r.d == nil {
		if r.d, err = OpenDevice(cfg.Device, r.opts.OpenCL); err != nil {
			return Result{}, err
		}
	}
	if r.net, err = model.New(r.d, mc, cfg.Batch); err != nil {
		return Result{}, err
	}
	switch {
	case r.opts.Resume:
		if err := r.net.Load(filepath.Join(cfg.Out, r.st.Weights)); err != nil {
			return Result{}, fmt.Errorf("resume: %w", err)
		}
		if err := r.net.LoadVelocity(filepath.Join(cfg.Out, r.st.Velocity)); err != nil {
			return Result{}, fmt.Errorf("resume: %w", err)
		}
		r.net.SetSeed(cfg.Seed)
		r.lastCkpt = filepath.Join(cfg.Out, r.st.Weights)
	case cfg.Init != "":
		if err := r.net.Load(cfg.Init); err != nil {
			return Result{}, fmt.Errorf("--init: %w", err)
		}
		r.net.SetSeed(cfg.Seed)
	default:
		if err := r.net.Init(cfg.Seed); err != nil {
			return Result{}, err
		}
	}

	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return Result{}, fmt.Errorf("output directory: %w", err)
	}
	// The resolved config, so the directory alone describes (and resumes) the run.
	resolved := cfg
	resolved.Model, resolved.Preset, resolved.ModelConfig = &mc, "", ""
	text, err := resolved.TOML()
	if err != nil {
		return Result{}, err
	}
	if err := writeFileAtomic(filepath.Join(cfg.Out, ConfigFile), []byte(text)); err != nil {
		return Result{}, fmt.Errorf("write resolved config: %w", err)
	}
	names, _ := json.Marshal(trainDS.ClassNames())
	r.ckpt = &checkpointer{dir: cfg.Out, net: r.net, keep: cfg.Keep, committed: -1,
		meta: map[string]string{MetaClasses: string(names), MetaData: cfg.Data}}
	if r.opts.Resume {
		r.ckpt.committed = r.st.Step
	}
	// What a crash (SIGKILL, power loss) can leave behind: temporary files
	// of atomic writes, and checkpoint files newer than state.json.
	removeTemps(cfg.Out)
	r.ckpt.prune()

	metricsSize := int64(-1)
	if r.opts.Resume {
		metricsSize = r.st.MetricsBytes
	}
	if r.met, err = openMetrics(filepath.Join(cfg.Out, MetricsFile), metricsSize); err != nil {
		return Result{}, err
	}

	loader, err := data.NewLoader(trainDS, cfg.Batch, cfg.Shuffle, true, cfg.Seed, r.st.Epoch, r.st.Batch)
	if err != nil {
		return Result{}, fmt.Errorf("training data: %w", err)
	}
	defer loader.Close()
	if loader.BatchesPerEpoch() != r.perEpoch {
		return Result{}, fmt.Errorf("training data: %d batches an epoch, where %d were counted", loader.BatchesPerEpoch(), r.perEpoch)
	}
	r.printHeader(mc, trainDS, spec)
	r.prog.begin() // the clocks of img/s and the ETA start here, after the device's setup
	return r.loop(ctx, loader)
}

// checkResumable refuses settings that would make a resumed run differ
// from the one it continues.
func (r *run) checkResumable() error {
	st, cfg := r.st, r.cfg
	var diffs []string
	if st.Data != cfg.Data {
		diffs = append(diffs, fmt.Sprintf("data %q (was %q)", cfg.Data, st.Data))
	}
	if st.BatchLen != cfg.Batch {
		diffs = append(diffs, fmt.Sprintf("batch %d (was %d)", cfg.Batch, st.BatchLen))
	}
	if st.Seed != cfg.Seed {
		diffs = append(diffs, fmt.Sprintf("seed %d (was %d)", cfg.Seed, st.Seed))
	}
	if st.Shuffle != cfg.Shuffle || st.Augment != cfg.Augment {
		diffs = append(diffs, fmt.Sprintf("shuffle/augment %v/%v (was %v/%v)", cfg.Shuffle, cfg.Augment, st.Shuffle, st.Augment))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("cannot resume %s with different settings: %s; drop those flags to resume, or start a new run in another --out",
			cfg.Out, strings.Join(diffs, ", "))
	}
	return nil
}

// updateSchedule applies schedule settings changed since the checkpoint
// (--lr, --schedule, --step-epochs, --patience) to the restored schedule,
// keeping the number of ÷10 steps already taken.
func (r *run) updateSchedule() {
	s, cfg := &r.st.Schedule, r.cfg
	if s.BaseLR != cfg.LR {
		fmt.Fprintf(r.opts.Log, "note: learning rate changed from %g to %g at resume\n", s.BaseLR, cfg.LR)
	}
	s.Kind, s.StepEpochs, s.Patience = cfg.Schedule, cfg.StepEpochs, cfg.Patience
	if s.BaseLR != cfg.LR {
		s.BaseLR, s.MinLR = cfg.LR, cfg.LR*1e-3
		s.LR = cfg.LR * math.Pow(0.1, float64(s.Drops))
	}
}

func (r *run) printHeader(mc model.Config, trainDS data.Dataset, spec data.Spec) {
	cfg, log := r.cfg, r.opts.Log
	layers, _ := mc.Layers()
	params, _ := model.Totals(layers)
	info := r.d.Info()
	if r.opts.Verbose {
		mc.Summary(log)
		fmt.Fprintf(log, "device %s: %s (%s, %s)\n", info.ID, info.Name, info.Vendor, info.Platform)
	}
	what := "training"
	if r.opts.Resume {
		what = fmt.Sprintf("resuming at step %d (epoch %d, batch %d);", r.st.Step, r.st.Epoch+1, r.st.Batch)
	}
	fmt.Fprintf(log, "%s %s (%.2fM parameters) on %s (%s); %s: %d train / %d test images; batch %d, %d steps/epoch, %d steps\n",
		what, mc.Name, float64(params)/1e6, info.ID, info.Name, spec, trainDS.Len(), r.test.Len(), cfg.Batch, r.perEpoch, r.total)
	fmt.Fprintf(log, "writing %s: %s, %s, %s, %s, %s\n", cfg.Out, LastFile, BestFile, MetricsFile, CurvesFile, ConfigFile)
}

// loop runs the training steps from r.st to r.total.
func (r *run) loop(ctx context.Context, loader *data.Loader) (Result, error) {
	cfg, d, net := r.cfg, r.d, r.net
	r.stepping = true
	feed, err := newFeeder(d, loader, cfg.Batch, net.InputLen())
	if err != nil {
		return Result{}, err
	}
	defer feed.close()

	// The window since the last metrics row and the epoch so far are
	// summed in r.st (Win*, Epoch*), so that checkpoints keep them.
	var (
		last          EvalResult
		lastEpochLoss = math.NaN()
	)
	var (
		epochStart              time.Duration // r.trainDur at the epoch's first step
		loaderBound, asyncSteps int           // steps with a prefetch, and those the loader held up
	)
	epochEnd := func(full bool) error {
		if r.st.EpochSteps > 0 {
			lastEpochLoss = r.st.EpochLossSum / float64(r.st.EpochSteps)
		}
		r.noteDataWait(feed.wait, r.trainDur-epochStart, loaderBound, asyncSteps)
		feed.wait, epochStart, loaderBound, asyncSteps = 0, r.trainDur, 0, 0
		if err := r.evaluate(ctx, full, lastEpochLoss, &last); err != nil {
			return err
		}
		r.prog.resetLoss()
		return nil
	}

	// A resume of a run interrupted in an evaluation inside an epoch (its
	// last, at max_steps): that evaluation first, even if a larger
	// --max-steps now trains on. (One at an epoch's end is the loop's
	// first iteration.)
	if r.st.EvalDue && r.st.Batch != r.perEpoch {
		if err := epochEnd(false); err != nil {
			return r.result(last, lastEpochLoss), err
		}
	}
	for r.st.Step < r.total || r.st.Batch == r.perEpoch {
		if r.st.Batch == r.perEpoch { // resumed right at an epoch's end
			if _, _, _, err := feed.next(); err != io.EOF {
				return Result{}, fmt.Errorf("training data: expected the end of epoch %d, got %v", r.st.Epoch+1, err)
			}
			if err := epochEnd(true); err != nil {
				return r.result(last, lastEpochLoss), err
			}
			continue
		}
		if ctx.Err() != nil {
			return r.result(last, lastEpochLoss), r.interrupt()
		}
		stepStart := time.Now()
		b, x, labels, err := feed.next()
		if ue := (*uploadError)(nil); errors.As(err, &ue) {
			return Result{}, fmt.Errorf("step %d: %w", r.st.Step+1, ue.err)
		}
		if err != nil {
			return r.result(last, lastEpochLoss), fmt.Errorf("training data at epoch %d batch %d: %w", r.st.Epoch+1, r.st.Batch, err)
		}
		n := b.N
		if _, err := net.Forward(x, n, true, uint64(r.st.Step)); err != nil {
			return Result{}, fmt.Errorf("step %d: %w", r.st.Step+1, err)
		}
		if err := net.Loss(labels, n); err != nil {
			return Result{}, fmt.Errorf("step %d: %w", r.st.Step+1, err)
		}
		if err := net.Backward(n); err != nil {
			return Result{}, fmt.Errorf("step %d: %w", r.st.Step+1, err)
		}
		sgd := device.SGDParams{LR: float32(r.st.Schedule.LR), Momentum: float32(cfg.Momentum), WeightDecay: float32(cfg.WeightDecay)}
		if err := net.Step(sgd); err != nil {
			return Result{}, fmt.Errorf("step %d: %w", r.st.Step+1, err)
		}
		if r.st.Step+1 < r.total {
			feed.prefetch() // the next batch's copy runs beside this step
		}
		readStart := time.Now()
		lossSum, top1, _, err := net.ReadLoss(n)
		if prefetched := feed.ahead != nil; prefetched {
			// The device's work outlasted the prefetch unless reading the
			// loss, which waits for it, came back sooner than the
			// prefetch took: then the loader held the device up.
			asyncSteps++
			if time.Since(readStart) < feed.lastPrefetch {
				loaderBound++
			}
		}
		if err != nil {
			return Result{}, fmt.Errorf("step %d: %w", r.st.Step+1, err)
		}
		if err := feed.retire(); err != nil { // its batch's copy failed
			return Result{}, fmt.Errorf("step %d: %w", r.st.Step+1, err)
		}
		loss := lossSum / float64(n)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return r.result(last, lastEpochLoss), r.diverged(fmt.Sprintf("the loss of step %d is %v", r.st.Step+1, loss))
		}
		dt := time.Since(stepStart)
		r.trainDur += dt
		r.trainImg += int64(n)
		r.st.Step++
		r.st.Batch++
		r.st.WinSeconds += dt.Seconds()
		r.st.WinSteps++
		r.st.WinLossSum += loss
		r.st.WinTop1 += int64(top1)
		r.st.WinImages += int64(n)
		r.st.EpochLossSum += loss
		r.st.EpochSteps++
		r.prog.step(r.st.Step, r.st.Epoch, n, loss, r.st.Schedule.LR)
		if r.opts.OnStep != nil {
			r.opts.OnStep(r.st.Step)
		}

		if cfg.LogEvery > 0 && r.st.Step%cfg.LogEvery == 0 {
			row := r.row()
			row.TrainLoss = r.st.WinLossSum / float64(r.st.WinSteps)
			row.TrainTop1 = float64(r.st.WinTop1) / float64(r.st.WinImages)
			row.ImagesPS = float64(r.st.WinImages) / r.st.WinSeconds
			if err := r.met.add(row); err != nil {
				return r.result(last, lastEpochLoss), err
			}
			r.st.WinLossSum, r.st.WinTop1, r.st.WinImages, r.st.WinSteps, r.st.WinSeconds = 0, 0, 0, 0, 0
		}
		saved := false
		if r.st.Batch == r.perEpoch {
			if _, _, _, err := feed.next(); err != io.EOF {
				return r.result(last, lastEpochLoss), fmt.Errorf("training data: expected the end of epoch %d, got %v", r.st.Epoch+1, err)
			}
			if err := epochEnd(true); err != nil {
				return r.result(last, lastEpochLoss), err
			}
			saved = true
		} else if r.st.Step == r.total { // max_steps reached inside an epoch
			if err := epochEnd(false); err != nil {
				return r.result(last, lastEpochLoss), err
			}
			saved = true
		}
		if !saved && cfg.CheckpointEvery > 0 && r.st.Step%cfg.CheckpointEvery == 0 {
			if _, err := r.checkpoint(); err != nil {
				return r.result(last, lastEpochLoss), err
			}
		}
	}
	res := r.result(last, lastEpochLoss)
	rate := fmt.Sprintf(", %.1f img/s", res.ImagesPS)
	if r.trainImg == 0 { // a resume that only ran a due evaluation
		rate = ""
	}
	fmt.Fprintf(r.opts.Log, "done: %d step%s, test top-1 %.2f%% (best %.2f%% at step %d)%s; weights in %s and %s\n",
		r.st.Step, plural(int(r.st.Step)), 100*last.Top1, 100*r.st.BestTop1, r.st.BestStep, rate,
		filepath.Join(r.cfg.Out, LastFile), filepath.Join(r.cfg.Out, BestFile))
	return res, nil
}

// evaluate tests the net at the end of an epoch (full) or of a run that
// stops inside one, logs and records the result, updates the schedule and
// writes a checkpoint, best.safetensors and the curves.
func (r *run) evaluate(ctx context.Context, full bool, trainLoss float64, last *EvalResult) error {
	t0 := time.Now()
	ev, err := Evaluate(ctx, r.net, r.test, EvalOptions{Limit: r.opts.EvalLimit,
		Progress: func(done, total int) { r.prog.eval(r.st.Step, done, total) }})
	if err != nil {
		if ctx.Err() != nil {
			r.st.EvalDue = true // the resume runs it
			return r.interrupt()
		}
		return fmt.Errorf("evaluation at step %d: %w", r.st.Step, err)
	}
	r.st.EvalDue = false
	r.st.EpochLossSum, r.st.EpochSteps = 0, 0
	*last = ev
	evalDur := time.Since(t0)
	r.prog.evalDone(evalDur)
	lr := r.st.Schedule.LR
	row := r.row()
	row.TrainLoss, row.TestLoss, row.TestTop1, row.TestTop5 = trainLoss, ev.Loss, ev.Top1, ev.Top5
	row.ImagesPS = math.NaN()
	if err := r.met.add(row); err != nil {
		return err
	}
	label := fmt.Sprintf("epoch %d", r.st.Epoch+1)
	if !full {
		label = fmt.Sprintf("step %d (epoch %d, %d/%d)", r.st.Step, r.st.Epoch+1, r.st.Batch, r.perEpoch)
	}
	r.prog.line("%s: train loss %.4f  test loss %.4f  top-1 %.2f%%  top-5 %.2f%%  lr %.3g  time %s (eval %s)",
		label, trainLoss, ev.Loss, 100*ev.Top1, 100*ev.Top5, lr,
		fmtDuration(time.Duration(r.wallS()*float64(time.Second))), fmtDuration(evalDur))
	if n := r.train.Skipped(); n > r.skipped {
		r.prog.line("note: %d unreadable training image%s so far (skipped, or replaced by a blank image when found mid-epoch); --strict stops at the first one instead", n, plural(n))
		r.skipped = n
	}
	r.st.Evals++
	improved := ev.Top1 > r.st.BestTop1
	if improved {
		r.st.BestTop1, r.st.BestStep = ev.Top1, r.st.Step
	}
	if full {
		if r.st.Schedule.EpochEnd(r.st.Epoch, 1-ev.Top1) {
			r.prog.line("learning rate %.3g -> %.3g", lr, r.st.Schedule.LR)
		}
		r.st.Epoch++
		r.st.Batch = 0
	}
	w, err := r.checkpoint()
	if err != nil {
		return err
	}
	if improved {
		if err := linkOrCopy(w, filepath.Join(r.cfg.Out, BestFile)); err != nil {
			return fmt.Errorf("best checkpoint: %w", err)
		}
	}
	return r.plot()
}

// row starts a metrics row at the current position.
func (r *run) row() Metric {
	nan := math.NaN()
	return Metric{Step: r.st.Step, Epoch: float64(r.st.Epoch) + float64(r.st.Batch)/float64(r.perEpoch),
		TrainLoss: nan, TrainTop1: nan, TestLoss: nan, TestTop1: nan, TestTop5: nan,
		LR: r.st.Schedule.LR, ImagesPS: nan, WallS: r.wallS()}
}

// wallS is the training time across resumes.
func (r *run) wallS() float64 { return r.st.WallS + time.Since(r.start).Seconds() }

// dataWaitShare is the share of the training steps' time spent waiting
// for the data loader above which an epoch's end says so.
const dataWaitShare = 0.3

// noteDataWait says, at an epoch's end, when the data loader held the
// device up, whose JPEG decoding (about 4 ms a 500x375 photo on one core,
// 6 with its resize) bounds the rate: when the steps spent more than
// dataWaitShare of their time (steps) waiting for images to start (wait),
// or, on a device that takes the next batch during a step (asyncSteps of
// them), when more than dataWaitShare of those steps had their device done
// before the loader had the next batch (bound).
func (r *run) noteDataWait(wait, steps time.Duration, bound, asyncSteps int) {
	var what string
	switch {
	case steps > 0 && float64(wait) > dataWaitShare*float64(steps):
		what = fmt.Sprintf("the steps waited %s of %s (%.0f%%) for the data loader", fmtDuration(wait), fmtDuration(steps), 100*float64(wait)/float64(steps))
	case asyncSteps > 0 && float64(bound) > dataWaitShare*float64(asyncSteps):
		what = fmt.Sprintf("in %d of %d steps (%.0f%%) %s was done before the data loader had the next batch", bound, asyncSteps, 100*float64(bound)/float64(asyncSteps), r.d.Info().ID)
	default:
		return
	}
	r.prog.line("note: %s; it decodes on %d workers (workers in the config, 0: a core each): "+
		"more cores, or images resized once to about 256 pixels on the shorter side, would keep %s busy",
		what, r.workers(), r.d.Info().ID)
}

// workers is the loader's number of decoding goroutines.
func (r *run) workers() int {
	if r.cfg.Workers > 0 {
		return r.cfg.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// evalDue reports whether an evaluation at the current step was cut
// short: EvalDue, or (states of older builds, which lack it) an epoch
// whose last batch is done but whose end was not recorded.
func (r *run) evalDue() bool { return r.st.EvalDue || r.st.Batch == r.perEpoch }

// checkpoint saves the current state; it returns the weights path.
func (r *run) checkpoint() (string, error) {
	// A checkpoint must never hold a diverged model: the loss of the last
	// step was finite, but its update may not have been.
	if err := r.checkFinite(); err != nil {
		return "", err
	}
	st := r.st
	st.WallS = r.wallS()
	st.Finished = st.Step >= r.total && !r.evalDue()
	var err error
	if st.MetricsBytes, err = r.met.size(); err != nil {
		return "", err
	}
	w, err := r.ckpt.save(&st)
	if err != nil {
		return "", err
	}
	r.lastCkpt = w
	return w, nil
}

// checkFinite reads the weights back and returns an ErrDiverged error
// naming the first parameter holding a NaN or Inf.
func (r *run) checkFinite() error {
	var host []float32
	for _, p := range r.net.Params() {
		if cap(host) < p.N {
			host = make([]float32, p.N)
		}
		h := host[:p.N]
		if err := r.d.Read(p.W, 0, device.Float32Bytes(h)); err != nil {
			return fmt.Errorf("checkpoint at step %d: read %s: %w", r.st.Step, p.Name, err)
		}
		for i, v := range h {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return r.diverged(fmt.Sprintf("the update of step %d left %v in %s[%d]", r.st.Step, v, p.Name, i))
			}
		}
	}
	return nil
}

func (r *run) plot() error {
	png, err := renderCurves(r.met.rows)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.cfg.Out, CurvesFile), png)
}

// interrupt saves a checkpoint after a cancelled context and explains how
// to resume.
func (r *run) interrupt() error {
	w, err := r.checkpoint()
	if err != nil {
		return fmt.Errorf("%w at step %d, and the checkpoint failed: %v", ErrInterrupted, r.st.Step, err)
	}
	r.plot()
	r.prog.line("interrupted at step %d (epoch %d, batch %d/%d); checkpoint saved: %s and %s (weights %s)", r.st.Step, r.st.Epoch+1, r.st.Batch, r.perEpoch,
		filepath.Join(r.cfg.Out, LastFile), filepath.Join(r.cfg.Out, StateFile), w)
	r.prog.line("resume with: %s", r.opts.ResumeCommand)
	// The resume command was the line above: the error (which the CLI
	// prints next) does not repeat it.
	return fmt.Errorf("%w at step %d; checkpoint saved", ErrInterrupted, r.st.Step)
}

// diverged reports a NaN or infinite loss or weight (what); nothing is
// saved, so the last checkpoint stays the last good one.
func (r *run) diverged(what string) error {
	r.plot()
	good := "no checkpoint was written yet"
	if r.lastCkpt != "" {
		if st, err := ReadState(r.cfg.Out); err == nil {
			good = fmt.Sprintf("the last good checkpoint is %s (step %d, also in %s; resume from it with `%s --lr SMALLER`)",
				filepath.Join(r.cfg.Out, LastFile), st.Step, r.lastCkpt, r.opts.ResumeCommand)
		} else {
			good = "the last good checkpoint is " + r.lastCkpt
		}
	}
	return fmt.Errorf("%w: %s; stopped without saving; %s. Lower the learning rate (now %g) or check the data",
		ErrDiverged, what, good, r.st.Schedule.LR)
}

func (r *run) result(last EvalResult, trainLoss float64) Result {
	res := Result{OutDir: r.cfg.Out, Steps: r.st.Step, Test: last, BestTop1: r.st.BestTop1, BestStep: r.st.BestStep,
		TrainLoss: trainLoss, Elapsed: time.Since(r.start), Finished: r.st.Step >= r.total}
	if r.perEpoch > 0 {
		res.Epochs = float64(r.st.Epoch) + float64(r.st.Batch)/float64(r.perEpoch)
	}
	if s := r.trainDur.Seconds(); s > 0 {
		res.ImagesPS = float64(r.trainImg) / s
	}
	return res
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=:,+@%", c))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// noteSkipped tells the user about images the dataset skipped at Open.
func (r *run) noteSkipped(split string, ds data.Dataset) {
	if n := ds.Skipped(); n > 0 {
		fmt.Fprintf(r.opts.Log, "note: skipped %d unreadable image%s of the %s split (zero-byte, truncated, or not JPEG/PNG); --strict (strict = true) stops at the first one instead\n",
			n, plural(n), split)
		if split == "training" {
			r.skipped = n
		}
	}
}

// explain adds to an error that stopped the run what the user needs next:
// for a device out of memory, the sizes and a batch that would fit; for
// any other failure once training started (a lost GPU, a driver error, a
// full disk), the step, the last checkpoint and the command that resumes.
// Interruptions and divergence already say so.
func (r *run) explain(err error) error {
	if errors.Is(err, ErrInterrupted) || errors.Is(err, ErrDiverged) {
		return err
	}
	if isOutOfMemory(err) {
		return r.outOfMemory(err)
	}
	if !r.stepping {
		return err
	}
	return fmt.Errorf("%w\ntraining stopped during step %d (epoch %d, batch %d/%d); %s",
		err, r.st.Step+1, r.st.Epoch+1, r.st.Batch+1, r.perEpoch, r.resumeHint())
}

// resumeHint says where the last checkpoint is and how to continue from it.
func (r *run) resumeHint() string {
	if r.lastCkpt == "" {
		return fmt.Sprintf("no checkpoint was written yet, so %s holds nothing to resume: start the run again", r.cfg.Out)
	}
	step := r.st.Step
	if st, err := ReadState(r.cfg.Out); err == nil {
		step = st.Step
	}
	return fmt.Sprintf("the output directory is intact: its last checkpoint is step %d (%s, named by %s); "+
		"once the cause is fixed, resume with `%s` (add --device ID to go on on another device: alexcl list-devices)",
		step, filepath.Join(r.cfg.Out, LastFile), filepath.Join(r.cfg.Out, StateFile), r.opts.ResumeCommand)
}

// isOutOfMemory reports whether err is a device running out of memory or
// resources.
func isOutOfMemory(err error) bool {
	return errors.Is(err, ErrOutOfMemory) || errors.Is(err, cl.MemObjectAllocationFailure) ||
		errors.Is(err, cl.OutOfResources) || errors.Is(err, cl.OutOfHostMemory)
}

// outOfMemory explains an out-of-memory error: what the network asked for
// at this batch (model's estimate), what the device has, and a batch that
// would fit.
func (r *run) outOfMemory(err error) error {
	what := "out of memory or resources"
	var st cl.Status
	if errors.As(err, &st) {
		what = st.String()
	}
	cfg := r.cfg
	when := "while building the network"
	if r.stepping {
		when = fmt.Sprintf("during step %d", r.st.Step+1)
	}
	devName := cfg.Device
	var info device.Info
	if r.d != nil {
		info = r.d.Info()
		devName = fmt.Sprintf("%s (%s)", info.ID, info.Name)
	}
	msg := fmt.Sprintf("device %s ran out of memory (%s) %s", devName, what, when)
	if errors.Is(err, cl.OutOfResources) {
		msg = fmt.Sprintf("device %s ran out of memory or resources (%s) %s", devName, what, when)
	}
	fixed, err0 := r.mc.DeviceBytes(0)
	one, err1 := r.mc.DeviceBytes(1)
	need, err2 := r.mc.DeviceBytes(cfg.Batch)
	if err0 != nil || err1 != nil || err2 != nil || r.mc.Name == "" && len(r.mc.Features) == 0 {
		return fmt.Errorf("%w: %s: use a smaller --batch or another --device: %w", ErrOutOfMemory, msg, err)
	}
	perImage := one - fixed
	msg += fmt.Sprintf(": network %s at batch %d asks for about %s (%s of parameters, gradients and momentum + %s per image, before the driver's own overhead)",
		r.mc.Name, cfg.Batch, device.HumanBytes(need), device.HumanBytes(fixed), device.HumanBytes(perImage))
	if info.GlobalMem > 0 {
		msg += fmt.Sprintf(", the device has %s", device.HumanBytes(info.GlobalMem))
		if info.MaxAlloc > 0 {
			msg += fmt.Sprintf(" (at most %s in one buffer)", device.HumanBytes(info.MaxAlloc))
		}
	}
	// The estimate fit (model.New checks it), so the driver needs more than
	// it says: aim at 80% of the device and at most half this batch.
	fit := cfg.Batch / 2
	if info.GlobalMem > 0 && perImage > 0 {
		fit = int(min(int64(fit), (info.GlobalMem*8/10-fixed)/perImage))
	}
	switch {
	case fit < 1:
		msg += "; the network does not fit even at batch 1: use a narrower network (fewer channels, smaller hidden) or another --device (alexcl list-devices)"
	case r.opts.Resume || r.stepping && r.lastCkpt != "":
		step := r.st.Step
		if st, err := ReadState(cfg.Out); err == nil {
			step = st.Step
		}
		msg += fmt.Sprintf("; the last checkpoint (step %d, %s) is intact. A resumed run keeps its batch: free memory on the device (other programs using it) and resume with `%s`, "+
			"or start a new run in another --out with --batch %d --init %s to go on from these weights",
			step, filepath.Join(cfg.Out, LastFile), r.opts.ResumeCommand, fit, filepath.Join(cfg.Out, LastFile))
	default:
		msg += fmt.Sprintf("; try --batch %d", fit)
	}
	return fmt.Errorf("%w: %s\ndevice error: %w", ErrOutOfMemory, msg, err)
}

// plural returns "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

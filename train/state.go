package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/alexcl/alexcl/model"
)

// Files a run writes into its output directory.
const (
	LastFile    = "last.safetensors" // weights after the latest checkpoint
	BestFile    = "best.safetensors" // weights of the epoch with the best test top-1
	StateFile   = "state.json"       // resume state; names the checkpoint files below
	CkptDir     = "ckpt"             // step-numbered weights and velocities the state names
	MetricsFile = "metrics.csv"
	CurvesFile  = "curves.png"
	ConfigFile  = "config.toml"
)

// Checkpoint metadata keys train adds to model.Save's.
const (
	MetaClasses = "alexcl.classes" // JSON array of class names, indexed by label
	MetaData    = "alexcl.data"    // dataset spec the weights were trained on
	MetaStep    = "alexcl.step"    // optimizer steps done
)

// stateVersion is bumped when State changes incompatibly.
const stateVersion = 1

// State is everything a run needs to continue exactly where it stopped,
// stored as state.json beside the safetensors files it names. The JSON is
// written last and atomically, and names step-numbered files, so a crash
// at any instant leaves a complete, consistent checkpoint.
type State struct {
	Version  int    `json:"version"`
	Step     int64  `json:"step"`  // optimizer steps done; the next step is number Step
	Epoch    int    `json:"epoch"` // epoch of the next batch, from 0
	Batch    int    `json:"batch"` // index in Epoch of the next batch
	Seed     uint64 `json:"seed"`  // weights init, data order, augmentation, dropout
	Data     string `json:"data"`  // dataset spec
	BatchLen int    `json:"batch_size"`
	Shuffle  bool   `json:"shuffle"`
	Augment  bool   `json:"augment"`

	Schedule Schedule `json:"schedule"`
	BestTop1 float64  `json:"best_top1"` // best test top-1 so far (fraction); -1 before any evaluation
	BestStep int64    `json:"best_step"`
	Evals    int      `json:"evals"` // evaluations done

	WallS        float64 `json:"wall_s"`        // training seconds before this checkpoint, across resumes
	MetricsBytes int64   `json:"metrics_bytes"` // length of metrics.csv at the checkpoint

	Weights  string `json:"weights"`  // weights file, relative to the output directory
	Velocity string `json:"velocity"` // velocities file, relative to the output directory
	Finished bool   `json:"finished"` // the run reached its last step, and its last evaluation is done

	// The running sums behind the next metrics row (the window since the
	// last one) and behind the epoch's train loss, so that a resumed run
	// writes the rows an uninterrupted one would. Absent from the state of
	// older builds: their resumes average only the steps since the resume.
	WinLossSum   float64 `json:"window_loss_sum,omitempty"`
	WinTop1      int64   `json:"window_top1,omitempty"`
	WinImages    int64   `json:"window_images,omitempty"`
	WinSteps     int64   `json:"window_steps,omitempty"`
	WinSeconds   float64 `json:"window_seconds,omitempty"` // time in those steps, evaluation excluded
	EpochLossSum float64 `json:"epoch_loss_sum,omitempty"`
	EpochSteps   int64   `json:"epoch_steps,omitempty"`
	// EvalDue: the evaluation at Step was cut short (the run was
	// interrupted in it); a resume runs it first.
	EvalDue bool `json:"eval_due,omitempty"`
}

// ReadState reads dir/state.json.
func ReadState(dir string) (State, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return State{}, fmt.Errorf("no training state in %s (%s missing): start a new run without --resume, or point --out at a run directory", dir, StateFile)
		}
		return State{}, fmt.Errorf("read training state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("training state %s is corrupt: %w", path, err)
	}
	if s.Version != stateVersion {
		return State{}, fmt.Errorf("training state %s has version %d; this alexcl reads version %d", path, s.Version, stateVersion)
	}
	for _, f := range []string{s.Weights, s.Velocity} {
		if f == "" || filepath.IsAbs(f) || strings.Contains(f, "..") {
			return State{}, fmt.Errorf("training state %s names checkpoint file %q: want a path inside the run directory", path, f)
		}
	}
	return s, nil
}

// checkpointer writes checkpoints of one run into its output directory.
type checkpointer struct {
	dir  string
	net  *model.Net
	meta map[string]string // class names and data spec, for every weights file
	// keep is how many step-numbered checkpoints stay in CkptDir (0: all).
	keep int
	// committed is the step of the checkpoint state.json names, -1 if none.
	committed int64
}

// ckptFile matches the step-numbered files of CkptDir.
var ckptFile = regexp.MustCompile(`^step-([0-9]+)\.(weights|velocity)\.safetensors$`)

// ckptPaths are the weights and velocity files of the checkpoint at step,
// relative to the output directory.
func ckptPaths(step int64) (weights, velocity string) {
	return filepath.Join(CkptDir, fmt.Sprintf("step-%09d.weights.safetensors", step)),
		filepath.Join(CkptDir, fmt.Sprintf("step-%09d.velocity.safetensors", step))
}

// save writes weights and velocities under step-numbered names, then the
// state naming them (the commit point), then points last.safetensors at
// the weights, then prunes old checkpoints; it returns the weights path.
// If it fails before the commit, the files it wrote are removed and the
// previous checkpoint is untouched.
func (c *checkpointer) save(st *State) (_ string, err error) {
	if err := os.MkdirAll(filepath.Join(c.dir, CkptDir), 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	meta := map[string]string{MetaStep: fmt.Sprint(st.Step)}
	for k, v := range c.meta {
		meta[k] = v
	}
	wRel, vRel := ckptPaths(st.Step)
	wPath, vPath := filepath.Join(c.dir, wRel), filepath.Join(c.dir, vRel)
	committed := false
	defer func() {
		// A checkpoint at the committed step rewrites the committed files
		// (atomically, with the same contents): never remove those.
		if err != nil && !committed && st.Step != c.committed {
			os.Remove(wPath)
			os.Remove(vPath)
		}
	}()
	if err := c.net.Save(wPath, meta); err != nil {
		return "", fmt.Errorf("checkpoint at step %d: %w", st.Step, err)
	}
	if err := c.net.SaveVelocity(vPath, meta); err != nil {
		return "", fmt.Errorf("checkpoint at step %d: %w", st.Step, err)
	}
	st.Weights, st.Velocity, st.Version = wRel, vRel, stateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", fmt.Errorf("checkpoint at step %d: encode state: %w", st.Step, err)
	}
	if err := writeFileAtomic(filepath.Join(c.dir, StateFile), append(b, '\n')); err != nil {
		return "", fmt.Errorf("checkpoint at step %d: %w", st.Step, err)
	}
	committed = true
	c.committed = st.Step
	if err := linkOrCopy(wPath, filepath.Join(c.dir, LastFile)); err != nil {
		return "", fmt.Errorf("checkpoint at step %d: %w", st.Step, err)
	}
	c.prune()
	return wPath, nil
}

// prune removes from CkptDir the checkpoints beyond the newest keep, and
// any newer than the committed one (written by a run that crashed before
// its state.json named them). The committed checkpoint, which state.json
// names, is never removed; last.safetensors and best.safetensors are
// files of their own (hard links or copies), so pruning leaves them whole.
func (c *checkpointer) prune() {
	ents, err := os.ReadDir(filepath.Join(c.dir, CkptDir))
	if err != nil {
		return
	}
	var steps []int64
	files := map[int64][]string{}
	for _, e := range ents {
		m := ckptFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		step, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			continue
		}
		if _, ok := files[step]; !ok {
			steps = append(steps, step)
		}
		files[step] = append(files[step], filepath.Join(c.dir, CkptDir, e.Name()))
	}
	slices.Sort(steps)
	kept := 0
	for i := len(steps) - 1; i >= 0; i-- {
		step := steps[i]
		switch {
		case step == c.committed:
			kept++
			continue
		case step < c.committed && (c.keep == 0 || kept < c.keep):
			kept++
			continue
		}
		for _, f := range files[step] {
			os.Remove(f)
		}
	}
}

// removeTemps deletes the temporary files an interrupted atomic write of
// this package or of model can leave in dir (".state.json.tmp-*",
// "last.safetensors.tmp-link", ...) and in its CkptDir (".step-*.tmp-*").
// Other files are left alone, whatever their names.
func removeTemps(dir string) {
	var prefixes []string
	for _, f := range []string{StateFile, ConfigFile, LastFile, BestFile, MetricsFile, CurvesFile} {
		prefixes = append(prefixes, "."+f+".tmp-", f+".tmp-link")
	}
	for _, d := range []string{dir, filepath.Join(dir, CkptDir)} {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			temp := d != dir && strings.HasPrefix(n, ".step-") && strings.Contains(n, ".tmp-")
			for _, p := range prefixes {
				temp = temp || d == dir && strings.HasPrefix(n, p)
			}
			if temp && e.Type().IsRegular() {
				os.Remove(filepath.Join(d, n))
			}
		}
	}
}

// linkOrCopy atomically makes dst a copy of src: a hard link where the
// file system allows one, else a full copy, renamed into place.
func linkOrCopy(src, dst string) error {
	tmp := dst + ".tmp-link"
	os.Remove(tmp)
	if err := os.Link(src, tmp); err == nil {
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("rename %s to %s: %w", tmp, dst, err)
		}
		syncDir(filepath.Dir(dst))
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	b, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return writeFileAtomic(dst, b)
}

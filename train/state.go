package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	Finished bool   `json:"finished"` // the run reached its last step
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
	prev []string          // files of the previous checkpoint, removed after the next one commits
}

// save writes weights and velocities under step-numbered names, then the
// state naming them (the commit point), then points last.safetensors at
// the weights; it returns the weights path.
func (c *checkpointer) save(st *State) (string, error) {
	if err := os.MkdirAll(filepath.Join(c.dir, CkptDir), 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	meta := map[string]string{MetaStep: fmt.Sprint(st.Step)}
	for k, v := range c.meta {
		meta[k] = v
	}
	wRel := filepath.Join(CkptDir, fmt.Sprintf("step-%09d.weights.safetensors", st.Step))
	vRel := filepath.Join(CkptDir, fmt.Sprintf("step-%09d.velocity.safetensors", st.Step))
	wPath, vPath := filepath.Join(c.dir, wRel), filepath.Join(c.dir, vRel)
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
	if err := linkOrCopy(wPath, filepath.Join(c.dir, LastFile)); err != nil {
		return "", fmt.Errorf("checkpoint at step %d: %w", st.Step, err)
	}
	for _, f := range c.prev {
		if f != wPath && f != vPath {
			os.Remove(f)
		}
	}
	c.prev = []string{wPath, vPath}
	return wPath, nil
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

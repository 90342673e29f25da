package model

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/model/safetensors"
)

// Metadata keys Save and SaveVelocity write into the safetensors header.
const (
	MetaFormat = "format"        // "pt", as PyTorch's safetensors writer sets it
	MetaKind   = "alexcl.kind"   // "weights" or "velocity"
	MetaConfig = "alexcl.config" // the network's Config as TOML
	MetaSeed   = "alexcl.seed"   // the dropout seed
)

// Save writes the parameters to path as safetensors with PyTorch's names,
// shapes and layouts (conv [K, C/groups, R, S], linear [out, in], F32), so
// `model.load_state_dict(load_file(path))` accepts it for the reference
// module. meta is stored in the header beside alexcl's own keys (MetaKind,
// MetaConfig, MetaSeed), which take precedence. The write is atomic.
func (n *Net) Save(path string, meta map[string]string) error {
	return n.save(path, meta, "weights", func(p *Param) device.Buffer { return p.W })
}

// SaveVelocity writes the SGD velocities under the parameters' names, for
// an exact resume with LoadVelocity. Velocities are in the device's form,
// −lr times PyTorch's momentum_buffer.
func (n *Net) SaveVelocity(path string, meta map[string]string) error {
	return n.save(path, meta, "velocity", func(p *Param) device.Buffer { return p.V })
}

// Load sets the parameters from a safetensors file written by Save or by
// PyTorch (state_dict of the matching reference module), and zeroes the
// gradients and velocities. Every missing, unexpected or mis-shaped tensor
// is listed in one error, and then nothing is changed. A file written by
// Save also restores the dropout seed (MetaSeed).
func (n *Net) Load(path string) error {
	return n.load(path, "weights", true, func(p *Param) device.Buffer { return p.W })
}

// LoadVelocity sets the SGD velocities from a file written by SaveVelocity.
func (n *Net) LoadVelocity(path string) error {
	return n.load(path, "velocity", false, func(p *Param) device.Buffer { return p.V })
}

func (n *Net) save(path string, meta map[string]string, kind string, buf func(*Param) device.Buffer) error {
	if n.closed {
		return fmt.Errorf("network %s: save %s: the net is closed", n.cfg.Name, path)
	}
	cfg, err := n.cfg.TOML()
	if err != nil {
		return fmt.Errorf("network %s: save %s: %w", n.cfg.Name, path, err)
	}
	m := map[string]string{MetaFormat: "pt"}
	maps.Copy(m, meta)
	m[MetaKind] = kind
	m[MetaConfig] = cfg
	m[MetaSeed] = fmt.Sprint(n.seed)
	tensors := make([]safetensors.Tensor, 0, len(n.params))
	for _, p := range n.params {
		h, err := device.ReadFloat32(n.d, buf(p), p.N)
		if err != nil {
			return fmt.Errorf("network %s: save %s: read %s: %w", n.cfg.Name, path, p.Name, err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: slices.Clone(p.Shape), F32: h})
	}
	if err := safetensors.Write(path, tensors, m); err != nil {
		return fmt.Errorf("network %s: save %s: %w", n.cfg.Name, path, err)
	}
	return nil
}

func (n *Net) load(path, kind string, resetState bool, buf func(*Param) device.Buffer) error {
	if n.closed {
		return fmt.Errorf("network %s: load %s: the net is closed", n.cfg.Name, path)
	}
	f, err := safetensors.Read(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("network %s: load %s: %w", n.cfg.Name, path, err)
		}
		return fmt.Errorf("network %s: load %s: not a readable safetensors file: %w; "+
			"pass a .safetensors file written by alexcl or by safetensors.torch.save_file (a torch.save .pt/.pth pickle is not one)",
			n.cfg.Name, path, err)
	}
	if k, ok := f.Meta[MetaKind]; ok && k != kind {
		return fmt.Errorf("network %s: load %s: the file holds %s, not %s", n.cfg.Name, path, k, kind)
	}
	byName := make(map[string]*safetensors.Tensor, len(f.Tensors))
	for i := range f.Tensors {
		byName[f.Tensors[i].Name] = &f.Tensors[i]
	}
	var problems []string
	for _, p := range n.params {
		t, ok := byName[p.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %s %v", p.Name, p.Shape))
			continue
		}
		delete(byName, p.Name)
		switch {
		case t.DType != safetensors.F32:
			problems = append(problems, fmt.Sprintf("%s is %s, want F32", p.Name, t.DType))
		case !slices.Equal(t.Shape, p.Shape):
			problems = append(problems, fmt.Sprintf("%s has shape %v, want %v", p.Name, t.Shape, p.Shape))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		problems = append(problems, fmt.Sprintf("unexpected %s %v", name, byName[name].Shape))
	}
	if len(problems) > 0 {
		return fmt.Errorf("network %s: load %s: the file does not match the network (%d problems): %s; "+
			"was it saved from another network? Pass the --config or --preset it was trained with",
			n.cfg.Name, path, len(problems), strings.Join(problems, "; "))
	}
	// Values that are not finite would train or evaluate to NaN, and a
	// NaN logit is no prediction: refuse them here, by name.
	for _, p := range n.params {
		t, _ := f.Get(p.Name)
		bad := 0
		for _, v := range t.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				bad++
			}
		}
		if bad > 0 {
			problems = append(problems, fmt.Sprintf("%s (%d of %d)", p.Name, bad, len(t.F32)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("network %s: load %s: the %s hold NaN or infinite values: %s; "+
			"the run that wrote them probably diverged: take an earlier checkpoint",
			n.cfg.Name, path, kind, strings.Join(problems, ", "))
	}
	for _, p := range n.params {
		t, _ := f.Get(p.Name)
		if err := n.d.Write(buf(p), 0, device.Float32Bytes(t.F32)); err != nil {
			return fmt.Errorf("network %s: load %s: write %s: %w", n.cfg.Name, path, p.Name, err)
		}
		if resetState {
			if err := n.d.Fill(p.G, 0); err != nil {
				return fmt.Errorf("network %s: load %s: %w", n.cfg.Name, path, err)
			}
			if err := n.d.Fill(p.V, 0); err != nil {
				return fmt.Errorf("network %s: load %s: %w", n.cfg.Name, path, err)
			}
		}
	}
	if err := n.d.Sync(); err != nil {
		return fmt.Errorf("network %s: load %s: %w", n.cfg.Name, path, err)
	}
	if s, ok := f.Meta[MetaSeed]; ok && kind == "weights" {
		if seed, err := strconv.ParseUint(s, 10, 64); err == nil {
			n.seed = seed
		}
	}
	return nil
}

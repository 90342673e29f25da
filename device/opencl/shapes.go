package opencl

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
)

// The convolutions' paths, chosen per layer shape. The tuner (tune_paths.go)
// chooses a path per filter size and op, timed on AlexNet's shapes at
// Open; but which path wins depends on the layer: under POCL, F(2×2, 3×3)
// forward is a near tie on paper's 13×13 conv3 (1.63 against 1.57 ms) and
// 35% faster on mini's 6×6 layers (inference at 1,067–1,075 img/s against
// 788–793). So with tuning on, the first time an op meets a convolution
// shape (batch size included, as cuDNN's benchmark mode does), the device
// times each path that can take it, on the op's own inputs and into
// scratch outputs, and keeps the fastest:
//   - forward: the direct path (implicit GEMM on GPUs, im2col and GEMM on
//     CPUs) and the Winograd variants of the filter size (winoVariants;
//     shapes winoShape takes);
//   - data gradient: the GEMM into unrolled patches and col2im ("col"),
//     the implicit-GEMM convolution of dy (GPU families, implicitShape)
//     and the Winograd variants;
//   - filter gradient: im2col and GEMM ("direct") and the Winograd
//     variants.
//
// Each other path's output is first checked against the usual path's
// (checkSum): within twice the bound for a float32 sum in any order of
// each output's Σ|terms| (the usual path run on the inputs' absolute
// values) plus the largest Σ|terms| of the Winograd tile it lies in and
// the mean Σ|terms|; for the filter gradient also on the
// batch's first image alone, where that bound is tight. A path that fails
// is dropped. Then every path runs in rounds that rotate which goes first
// (wall time from a drained queue to a drained queue, so launch costs
// count), and the fastest median wins if it beats the usual path's by
// winMargin; a near tie keeps the usual path. The paths run through the
// ops' internal forms, which take the path as given; another goroutine's
// op on the same shape waits for the choice.
// The choice is written at once to paths-<key>-<tunables>.json beside the
// tuning record (the same key; a hash of the tunables it was timed
// under), so that later runs take the same paths, bit for bit, without
// timing again.
//
// The choice is off with tuning off (ALEXCL_TUNE=off, or tunables the user
// set: the vendor defaults or theirs), when the user sets a path
// (pathNames: that choice is then theirs for every shape), and with
// ALEXCL_CL_LEGACY=shapes; the paths are then the defines' (definedPath):
// the tuner's choice per filter size, or the user's.

// convPath is the path an op takes on a convolution shape.
type convPath int8

const (
	pathUsual    convPath = 0 // direct (forward, filter gradient) or col (data gradient)
	pathImplicit convPath = 1 // the data gradient as an implicit-GEMM convolution (ops.go)
	pathWino     convPath = 2 // and above: winoVariants[p-pathWino]
)

// wino returns p's Winograd variant, if p is one.
func (p convPath) wino() (winoVariant, bool) {
	if p >= pathWino {
		return winoVariants[p-pathWino], true
	}
	return winoVariant{}, false
}

// name is p's name for op in logs and records: direct, col, implicit, or
// the variant's name (winograd, winograd4x4, winograd3x3), unique among
// the paths of one filter size.
func (p convPath) name(op string) string {
	switch {
	case p == pathImplicit:
		return "implicit"
	case p >= pathWino:
		return winoVariants[p-pathWino].name
	case op == winoOpData:
		return "col"
	}
	return "direct"
}

// pathKey is an op (winoOpForward, winoOpData, winoOpFilter) on a shape.
type pathKey struct {
	op string
	s  device.ConvShape
}

// shapePaths is a device's choice of path per pathKey.
type shapePaths struct {
	on      bool   // set by Open (setupShapePaths); read-only after
	file    string // the record; "" when the kernel cache is off
	key     string // the tuning record's key
	context string // the tunables the choices are timed under (pathContext)

	mu      sync.Mutex
	chosen  map[pathKey]convPath
	entries []pathEntry          // the choices timed or read, for the record and ConvPaths
	used    map[pathKey]struct{} // the keys this process's ops met (ConvPaths lists their entries only)

	// choosing is held while a shape's paths are timed, so that each is
	// timed once; timed are the entries this process timed (save).
	choosing sync.Mutex
	timed    []pathEntry
}

// pathsFormat is the version of the paths record.
const pathsFormat = "alexcl-paths-v1"

// pathRecord is the record of choices, JSON beside the tuning record.
type pathRecord struct {
	Format  string      `json:"format"`
	Key     string      `json:"key"`
	Context string      `json:"tunables"`
	Paths   []pathEntry `json:"paths"`
}

// pathEntry is one choice and what was measured.
type pathEntry struct {
	Op      string             `json:"op"`
	Shape   device.ConvShape   `json:"shape"`
	Path    string             `json:"path"`
	MS      map[string]float64 `json:"ms,omitempty"`      // median wall time per path
	Dropped map[string]string  `json:"dropped,omitempty"` // paths that failed their check or run
}

// convPath returns the path op takes on shape s: the per-shape choice,
// made now if s is new (a, b and c are the op's inputs in its argument
// order: x, w, b forward; dy, w for the data gradient; x, dy for the
// filter gradient; nil after), or the defines' (definedPath) when the
// choice is off. Without allocating, once s is known.
func (d *Device) convPath(s device.ConvShape, op string, a, b, c device.Buffer) convPath {
	sp := &d.shapes
	if !sp.on {
		return d.definedPath(s, op)
	}
	key := pathKey{op, s}
	sp.mu.Lock()
	p, ok := sp.chosen[key]
	if ok {
		if _, met := sp.used[key]; !met {
			sp.used[key] = struct{}{}
		}
	}
	sp.mu.Unlock()
	if ok {
		return p
	}
	return d.choosePath(key, a, b, c)
}

// definedPath is the path the defines give op on s: a Winograd variant
// whose define names op, else (data gradient) CONV_BWDATA's, else the
// usual path.
func (d *Device) definedPath(s device.ConvShape, op string) convPath {
	if d.winoShape(s) {
		for i, v := range winoVariants {
			if v.R == s.R && winoHas(d.opts.Defines[v.define], op) {
				return pathWino + convPath(i)
			}
		}
	}
	if op == winoOpData && d.implicitBackwardData(s) {
		return pathImplicit
	}
	return pathUsual
}

// pathCandidates lists the paths that can take op on s, the usual first.
func (d *Device) pathCandidates(s device.ConvShape, op string) []convPath {
	out := []convPath{pathUsual}
	if op == winoOpData && d.implicitShape(s) {
		out = append(out, pathImplicit)
	}
	if d.winoShape(s) {
		for i, v := range winoVariants {
			if v.R == s.R {
				out = append(out, pathWino+convPath(i))
			}
		}
	}
	return out
}

// choosePath chooses key's path (see the top of this file), keeps it and
// returns it. It never fails: where the timing cannot be done (a scratch
// buffer that does not fit, an op error, an output that is not finite) it
// logs why and keeps definedPath's for this run only, unrecorded.
func (d *Device) choosePath(key pathKey, a, b, c device.Buffer) convPath {
	sp := &d.shapes
	sp.choosing.Lock()
	defer sp.choosing.Unlock()
	sp.mu.Lock()
	p, ok := sp.chosen[key]
	sp.mu.Unlock()
	if ok { // chosen by another goroutine meanwhile (and marked used)
		return p
	}
	keep := func(p convPath, entry *pathEntry) convPath {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		sp.chosen[key] = p
		sp.used[key] = struct{}{}
		if entry != nil {
			sp.entries = append(sp.entries, *entry)
		}
		return p
	}
	cands := d.pathCandidates(key.s, key.op)
	if len(cands) == 1 {
		return keep(cands[0], nil)
	}
	start := time.Now()
	entry, p, err := d.timePaths(key, cands, a, b, c)
	what := fmt.Sprintf("the %s path of %s", key.op, shapeName(key.s))
	if err != nil {
		d.opts.logf("warning: choosing %s on %s: %v; %s taken for this run", what, d.info.Name, err, d.definedPath(key.s, key.op).name(key.op))
		return keep(d.definedPath(key.s, key.op), nil)
	}
	saved := "saved"
	if err := sp.save(entry); err != nil {
		saved = "not saved: " + err.Error()
	}
	// The format starts with "tuned": the CLI shows such lines.
	d.opts.logf("tuned %s on %s in %.2f s: %s (%s); %s", what, d.info.Name, time.Since(start).Seconds(), entry.Path, describeTimes(entry), saved)
	return keep(p, entry)
}

// timePaths times cands of key and returns the entry of the choice and the
// path chosen. a, b and c are the op's inputs (convPath); the paths run
// on them into scratch outputs, through the ops' internal
// forms, which take the path as given: another goroutine's op on the same
// shape waits for the choice (sp.choosing) and is never run on a path on
// trial.
func (d *Device) timePaths(key pathKey, cands []convPath, a, b, c device.Buffer) (*pathEntry, convPath, error) {
	s, op := key.s, key.op
	nx, nw, ny, err := convSizes(op, s)
	if err != nil {
		return nil, 0, err
	}
	// The op's inputs with their sizes, its scratch outputs' sizes, and
	// the terms of each output's sum (for a shape of n images).
	in, inN, outN := []device.Buffer{a, b, c}, []int{nx, nw, s.K}, []int{ny}
	terms := func(device.ConvShape) int { return s.C/s.Groups*s.R*s.S + 1 }
	switch op {
	case winoOpData:
		in, inN, outN = []device.Buffer{a, b}, []int{ny, nw}, []int{nx}
		terms = func(device.ConvShape) int { return s.K / s.Groups * s.R * s.S }
	case winoOpFilter:
		in, inN, outN = []device.Buffer{a, b}, []int{nx, ny}, []int{nw, s.K}
		terms = func(s device.ConvShape) int { return s.N * s.OH() * s.OW() }
	}
	var out []device.Buffer
	defer func() {
		for _, buf := range out {
			d.Free(buf)
		}
	}()
	for _, n := range outN {
		buf, err := d.Alloc(4 * n)
		if err != nil {
			return nil, 0, fmt.Errorf("a scratch output: %w", err)
		}
		out = append(out, buf)
	}
	run := func(p convPath, s device.ConvShape) error {
		switch op {
		case winoOpForward:
			return d.conv2DForward(p, in[0], in[1], in[2], out[0], s)
		case winoOpData:
			return d.conv2DBackwardData(p, in[0], in[1], out[0], s)
		}
		return d.conv2DBackwardFilter(p, in[0], in[1], out[0], out[1], s)
	}
	// once runs p once on s from NaN outputs (zero for the filter
	// gradient, which adds to them), so that an output a path leaves
	// unwritten shows, and reads the first output.
	once := func(p convPath, s device.ConvShape) ([]float32, error) {
		fill := float32(math.NaN())
		if op == winoOpFilter {
			fill = 0
		}
		for _, buf := range out {
			if err := d.Fill(buf, fill); err != nil {
				return nil, err
			}
		}
		if err := run(p, s); err != nil {
			return nil, err
		}
		n := s.N * s.K * s.OH() * s.OW()
		switch op {
		case winoOpData:
			n = s.N * s.C * s.H * s.W
		case winoOpFilter:
			n = nw
		}
		return d.readFloats(out[0], n)
	}
	// The timing's launches stay out of a profile the caller is taking.
	d.prof.pause()
	defer d.prof.resume()

	entry := &pathEntry{Op: op, Shape: s, MS: map[string]float64{}, Dropped: map[string]string{}}
	// Each other path checked against the usual path's output on the
	// shape, and for the filter gradient also on its first image alone:
	// its sums run over the batch, and on a long batch the bound for a
	// float32 sum (checkSum) grows to the size of the values, so that one
	// wrong output could pass unseen.
	checks := []device.ConvShape{s}
	if op == winoOpFilter && s.N > 1 {
		one := s
		one.N = 1
		checks = append(checks, one)
	}
	dropped := map[convPath]bool{}
	for ci, cs := range checks {
		want, err := once(pathUsual, cs)
		if err != nil {
			return nil, 0, err
		}
		if i := slices.IndexFunc(want, func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }); i >= 0 {
			return nil, 0, fmt.Errorf("the %s path's output is not finite (%g at %d): no reference to check the others against", pathUsual.name(op), want[i], i)
		}
		// The inputs' copies hold what cs reads: its images.
		csN := slices.Clone(inN)
		if op == winoOpFilter {
			csN[0], csN[1] = inN[0]/s.N*cs.N, inN[1]/s.N*cs.N
		}
		mag, err := d.termMagnitudes(in, csN, func() ([]float32, error) { return once(pathUsual, cs) })
		if err != nil {
			return nil, 0, err
		}
		for _, p := range cands[1:] {
			if dropped[p] {
				continue
			}
			got, err := once(p, cs)
			if err == nil && pathCheckHook != nil {
				pathCheckHook(op, p.name(op), ci, got)
			}
			if err == nil {
				err = checkSum(shapeName(cs), got, want, mag, tileMagnitudes(mag, op, cs, p), ref.SumTol(terms(cs)))
			}
			if err != nil {
				dropped[p], entry.Dropped[p.name(op)] = true, err.Error()
			}
		}
	}
	live := slices.DeleteFunc(slices.Clone(cands), func(p convPath) bool { return dropped[p] })
	// Timed rounds, each from a drained queue to a drained queue.
	medians := make([]time.Duration, len(live))
	times := make([][]time.Duration, len(live))
	for round := range pathRounds {
		for j := range live {
			i := (j + round) % len(live)
			if err := d.drain(); err != nil {
				return nil, 0, err
			}
			t0 := time.Now()
			err := run(live[i], s)
			if err == nil {
				err = d.drain()
			}
			if err != nil {
				return nil, 0, err
			}
			times[i] = append(times[i], time.Since(t0))
		}
	}
	for i := range live {
		medians[i] = median(times[i])
		entry.MS[live[i].name(op)] = math.Round(medians[i].Seconds()*1e6) / 1e3
	}
	best := live[fastest(medians)]
	entry.Path = best.name(op)
	if len(entry.Dropped) == 0 {
		entry.Dropped = nil
	}
	return entry, best, nil
}

// fastest returns the index of the fastest of medians, whose first is the
// usual path's: another wins only if faster than it by winMargin, so that
// a near tie keeps the usual path.
func fastest(medians []time.Duration) int {
	best := 0
	for i, m := range medians {
		if m < medians[best] {
			best = i
		}
	}
	if float64(medians[best]) >= (1-winMargin)*float64(medians[0]) {
		return 0
	}
	return best
}

// termMagnitudes returns Σ|terms| of each output of an op: what f (the
// usual path, run on in) returns with every input in replaced by a copy
// of its absolute values (inN elements each); in is restored after.
func (d *Device) termMagnitudes(in []device.Buffer, inN []int, f func() ([]float32, error)) ([]float32, error) {
	orig := slices.Clone(in)
	defer copy(in, orig)
	for i, buf := range orig {
		v, err := d.readFloats(buf, inN[i])
		if err != nil {
			return nil, err
		}
		for j := range v {
			v[j] = float32(math.Abs(float64(v[j])))
		}
		abs, err := d.Alloc(4 * len(v))
		if err != nil {
			return nil, fmt.Errorf("a scratch input: %w", err)
		}
		defer d.Free(abs)
		if err := d.Write(abs, 0, device.Float32Bytes(v)); err != nil {
			return nil, err
		}
		in[i] = abs
	}
	return f()
}

// checkSum compares got with want, the same sums computed another way:
// each pair may differ by twice the bound for a float32 sum in any order
// (tol, ref.SumTol of the terms per sum) of its Σ|terms| (mag), plus the
// largest Σ|terms| of its tile (tile, tileMagnitudes) and the mean
// Σ|terms|. The tile term is for the rounding a Winograd output takes from
// the other values of its tile: an output whose own terms are all zero (a
// tap that meets only padding or dead ReLU units) is 0 by the usual path
// and rounding noise by Winograd. The mean is a floor for tiles of zeros
// and values too small for float32 (flushed to zero on one path, not on
// the other: MNIST's first steps showed differences of 1e-18 to 1e-12
// where both the output and its tile summed to 0). A path that computes
// something else (a miscompiled kernel) misses by the size of the values,
// on short sums at least (timePaths); NaN nowhere.
func checkSum(what string, got, want, mag, tile []float32, tol float64) error {
	mean := 0.0
	for _, m := range mag {
		mean += float64(m)
	}
	mean /= float64(max(len(mag), 1))
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		bound := 2 * tol * (float64(mag[i]) + float64(tile[i]) + mean)
		if math.IsNaN(g) || math.IsInf(g, 0) || !(math.Abs(g-w) <= bound) {
			return fmt.Errorf("wrong result: %s: index %d: got %.7g, the usual path %.7g, apart by %.3g where %.3g is allowed", what, i, g, w, math.Abs(g-w), bound)
		}
	}
	return nil
}

// tileMagnitudes returns, for each output of op on s, the largest of mag
// over the outputs path p computes together: for a Winograd variant of
// output tile M×M, the M×M tile of the output plane it lies in (forward
// and data gradient; tiles from the top left corner, as wino.cl cuts
// them) or all R×S taps of its filter (filter gradient); for other paths
// the output itself.
func tileMagnitudes(mag []float32, op string, s device.ConvShape, p convPath) []float32 {
	v, ok := p.wino()
	if !ok {
		return mag
	}
	out := make([]float32, len(mag))
	if op == winoOpFilter {
		rs := s.R * s.S
		for b := 0; b < len(mag); b += rs {
			m := slices.Max(mag[b : b+rs])
			for i := b; i < b+rs; i++ {
				out[i] = m
			}
		}
		return out
	}
	H, W := s.OH(), s.OW() // the output planes: y, or dx (H = OH, W = OW for these shapes)
	for p0 := 0; p0+H*W <= len(mag); p0 += H * W {
		for ty := 0; ty < H; ty += v.M {
			for tx := 0; tx < W; tx += v.M {
				m := float32(0)
				for y := ty; y < min(ty+v.M, H); y++ {
					m = max(m, slices.Max(mag[p0+y*W+tx:p0+y*W+min(tx+v.M, W)]))
				}
				for y := ty; y < min(ty+v.M, H); y++ {
					for x := tx; x < min(tx+v.M, W); x++ {
						out[p0+y*W+x] = m
					}
				}
			}
		}
	}
	return out
}

// pathCheckHook, when set (tests only), sees each path's output before
// its check (check 0 on the op's shape, 1 on its first image alone), and
// may change it.
var pathCheckHook func(op, path string, check int, out []float32)

// pathRounds is the number of timed runs of each path; the median counts.
var pathRounds = 5

// readFloats reads n floats of b, leaving a bad label for the caller's
// next Sync or Read (Device.read).
func (d *Device) readFloats(b device.Buffer, n int) ([]float32, error) {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	v := make([]float32, n)
	return v, d.read(b, 0, device.Float32Bytes(v))
}

// drain waits for the queue, leaving a bad label for the caller's next
// Sync or Read (drainLocked).
func (d *Device) drain() error {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	return d.drainLocked()
}

// shapeName is s in logs: "384 3x3/1 p1 g2 on 128x256x13x13", as the
// tuner names its shapes.
func shapeName(s device.ConvShape) string {
	return fmt.Sprintf("%d %dx%d/%d p%d g%d on %dx%dx%dx%d", s.K, s.R, s.S, s.Stride, s.Pad, s.Groups, s.N, s.C, s.H, s.W)
}

// describeTimes lists e's times, fastest first, and its dropped paths.
func describeTimes(e *pathEntry) string {
	names := slices.SortedFunc(maps.Keys(e.MS), func(a, b string) int { return cmp.Or(cmp.Compare(e.MS[a], e.MS[b]), strings.Compare(a, b)) })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.3g ms", n, e.MS[n]))
	}
	for _, n := range slices.Sorted(maps.Keys(e.Dropped)) {
		parts = append(parts, fmt.Sprintf("%s dropped: %s", n, e.Dropped[n]))
	}
	return strings.Join(parts, ", ")
}

// ConvPaths lists the paths of the convolution shapes this device's ops
// have met (timed this run or read from the record; the record's other
// shapes are left out), sorted: "forward 384 3x3/1 p1 g2 on
// 128x256x13x13: winograd4x4"; nil when the choice per shape is off.
func (d *Device) ConvPaths() []string {
	sp := &d.shapes
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out []string
	for _, e := range sp.entries {
		if _, met := sp.used[pathKey{e.Op, e.Shape}]; met {
			out = append(out, fmt.Sprintf("%s %s: %s", e.Op, shapeName(e.Shape), e.Path))
		}
	}
	slices.Sort(out)
	return out
}

// setupShapePaths turns the choice per shape on or off (see the top of
// this file) once the program is built, and reads the record of earlier
// choices; under ALEXCL_TUNE=force it deletes it instead.
func (d *Device) setupShapePaths(mode tuneMode, key string) {
	sp := &d.shapes
	if mode == tuneOff || d.legacy.perSize {
		return
	}
	for _, n := range pathNames {
		if _, set := d.userDefines[n]; set {
			return
		}
	}
	sp.on, sp.key, sp.context, sp.chosen, sp.used = true, key, d.pathContext(), map[pathKey]convPath{}, map[pathKey]struct{}{}
	dir := cacheDir(d.opts)
	if dir == "" {
		return
	}
	// One record per key and tunables, so that runs under other tunables
	// (another ALEXCL_CL_LEGACY switch, a re-tuning that chose other tiles)
	// keep their own.
	h := sha256.Sum256([]byte(sp.context))
	sp.file = filepath.Join(dir, fmt.Sprintf("paths-%s-%x.json", key, h[:8]))
	if mode == tuneForce {
		old, _ := filepath.Glob(filepath.Join(dir, "paths-"+key+"-*.json"))
		for _, f := range old {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.opts.logf("warning: removing %s: %v", f, err)
			}
		}
		return
	}
	rec, err := sp.load()
	switch {
	case errors.Is(err, os.ErrNotExist):
		return
	case err != nil:
		d.opts.logf("paths record %s not used, timing shapes again: %v", sp.file, err)
		return
	}
	n := 0
	for _, e := range rec.Paths {
		if p, ok := d.recordedPath(e); ok {
			sp.chosen[pathKey{e.Op, e.Shape}] = p
			sp.entries = append(sp.entries, e)
			n++
		}
	}
	d.opts.logf("paths record hit %s: %d of %d shapes", sp.file, n, len(rec.Paths))
}

// recordedPath returns the path a record's entry names, if the device can
// take it on that shape now (CONV_WINO_MINCH or the build may have
// changed since).
func (d *Device) recordedPath(e pathEntry) (convPath, bool) {
	if e.Op != winoOpForward && e.Op != winoOpData && e.Op != winoOpFilter || e.Shape.Validate() != nil {
		return 0, false
	}
	for _, p := range d.pathCandidates(e.Shape, e.Op) {
		if p.name(e.Op) == e.Path {
			return p, true
		}
	}
	return 0, false
}

// pathContext is what the choices depend on besides the shape: the
// tunables less the paths, and the legacy switches.
func (d *Device) pathContext() string {
	defs := maps.Clone(d.opts.Defines)
	for _, n := range pathNames {
		delete(defs, n)
	}
	return fmt.Sprintf("%s legacy=%+v", describeDefines(defs), d.legacy)
}

// load reads the record at sp.file; one of another key or context is an
// error.
func (sp *shapePaths) load() (*pathRecord, error) {
	data, err := os.ReadFile(sp.file)
	if err != nil {
		return nil, err
	}
	var rec pathRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("not a paths record: %w", err)
	}
	switch {
	case rec.Format != pathsFormat:
		return nil, fmt.Errorf("format %q, want %q", rec.Format, pathsFormat)
	case rec.Key != sp.key:
		return nil, fmt.Errorf("key %.12s…, want %.12s…", rec.Key, sp.key)
	case rec.Context != sp.context:
		return nil, fmt.Errorf("timed under other tunables (%s), not these (%s)", rec.Context, sp.context)
	}
	return &rec, nil
}

// save adds e to the record at sp.file, atomically: the record as it is
// now (other processes may have added to it since Open), the entries this
// process timed before that it lacks, and e, which replaces the record's
// entry of its key. The caller holds sp.choosing.
func (sp *shapePaths) save(e *pathEntry) error {
	sp.timed = append(sp.timed, *e)
	if sp.file == "" {
		return errors.New("the kernel cache is off")
	}
	rec := &pathRecord{Format: pathsFormat, Key: sp.key, Context: sp.context}
	if old, err := sp.load(); err == nil {
		rec.Paths = old.Paths
	}
	// This process's earlier entries only where the record lacks them (it
	// may have been replaced): the record's newer timing of a key stays.
	onDisk := map[pathKey]bool{}
	for _, p := range rec.Paths {
		onDisk[pathKey{p.Op, p.Shape}] = true
	}
	for _, p := range sp.timed[:len(sp.timed)-1] {
		if !onDisk[pathKey{p.Op, p.Shape}] {
			rec.Paths = append(rec.Paths, p)
		}
	}
	rec.Paths = append(rec.Paths, *e)
	seen := map[pathKey]int{}
	var paths []pathEntry
	for _, p := range rec.Paths {
		k := pathKey{p.Op, p.Shape}
		if i, ok := seen[k]; ok {
			paths[i] = p
			continue
		}
		seen[k] = len(paths)
		paths = append(paths, p)
	}
	rec.Paths = paths
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(sp.file, append(data, '\n'))
}

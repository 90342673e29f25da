package opencl

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
	"github.com/alexcl/alexcl/device/ref"
)

// The tuner's last step: the host-side paths of the convolution ops, each
// timed against the op's usual path on the device, with the GEMM and
// convolution tunables already chosen:
//   - CONV_BWDATA (GPU families): the data gradient as one implicit-GEMM
//     convolution of dy (ops.go, implicitBackwardData) on the spec's
//     convolution shapes;
//   - CONV_WINO5 and CONV_WINO: per op (forward, data, filter), Winograd
//     F(2×2, 5×5) and F(2×2, 3×3) (wino.go) on the spec's shapes of
//     those filter sizes;
//   - CONV_WINO35 and CONV_WINO43: per op, F(3×3, 5×5) and F(4×4, 3×3)
//     against the op's winner of the step before (direct or F(2×2, R×R)).
// Every path runs the one program (the defines only steer the host), so
// the step builds once and times the two paths of an op in alternation.
// The data gradient's choice comes first, so that Winograd's is made
// against the better of the other two.
// Before timing, the other path is checked against device/ref on small
// shapes, and on each timed shape against the usual path's output; a
// path whose check fails is not chosen.

// pathChoice is one op's choice between its usual path and another.
type pathChoice struct {
	family             string             // "winograd3", "winograd43", "winograd5", "winograd35" or "bwdata": in logs, records and tuneCheckHook
	define             string             // the host-only define that picks the path
	usual, alt         string             // its values for the two paths
	usualName, altName string             // the paths in logs and records
	op                 string             // winoOpForward, winoOpData or winoOpFilter: the op timed
	small              []device.ConvShape // checked against device/ref on alt
	shapes             []device.ConvShape // timed
}

// pickPaths returns the Winograd defines (winoAllDefines) and (GPU families)
// CONV_BWDATA values for a program built with defs, and what was
// measured.
func (t *tuner) pickPaths(defs map[string]string, gpu bool) (map[string]string, []tuneResult, error) {
	build := func(files ...string) (*cl.Program, map[string]*cl.Kernel, error) {
		return buildCandidate(t.s.ctx, t.s.dev, t.d.opts.sources(files, nil), Options{Defines: defs, BuildOptions: t.s.opts.BuildOptions})
	}
	// Without wino.cl (optionalSources) when it does not build: Winograd
	// stays off, and the data gradient is still timed.
	began := time.Now()
	prog, kernels, err := build("conv.cl", "gemm.cl", "wino.cl")
	var noWino error
	if errors.Is(err, cl.BuildProgramFailure) {
		if prog, kernels, noWino = build("conv.cl", "gemm.cl"); noWino != nil {
			return nil, nil, err
		}
		noWino, err = err, nil
		t.d.opts.logf("tuning the convolutions' paths on %s: wino.cl does not build, Winograd stays off: %v", t.d.info.Name, noWino)
	}
	c := &contender{prog: prog, kernels: kernels, defs: maps.Clone(defs)}
	defer func() {
		c.release()
		t.s.prog, t.s.kernels = nil, nil
	}()
	t.activate(c)
	// Winograd on any channel count here, so that the small checks run it;
	// CONV_WINO_MINCH applies when the device runs (not recorded).
	t.s.opts.Defines["CONV_WINO_MINCH"] = "1"

	var results []tuneResult
	// The step may run to the end of the budget, and for pathsMin after
	// its build at least, so that a slow build of the program (the
	// unrolled Winograd kernels) cannot leave every path untried.
	t.building(began)
	end := t.by(1)
	if e := time.Now().Add(pathsMin); e.After(end) {
		end = e
	}
	spent := func(what string) bool {
		if time.Now().Before(end) {
			return false
		}
		t.d.opts.logf("tuning the convolutions' paths on %s: the %v budget is spent, %s not tried", t.d.info.Name, t.spec.budget, what)
		return true
	}
	skipped := func(family, candidate string) tuneResult {
		return tuneResult{Family: family, Candidate: candidate, Dropped: fmt.Sprintf("not tried: the %v tuning budget was spent", t.spec.budget)}
	}
	out := map[string]string{}
	// The data gradient first (GPU families): the implicit-GEMM
	// convolution of dy against the GEMM into unrolled patches, on the
	// timed convolution shapes it would serve. Its winner is the usual
	// path that Winograd's data gradient is then timed against.
	if gpu {
		t.s.opts.Defines["CONV_BWDATA"] = "implicit"
		shapes := slices.DeleteFunc(slices.Clone(t.spec.convShapes), func(s device.ConvShape) bool { return !t.s.implicitBackwardData(s) })
		switch {
		case len(shapes) == 0:
		case spent("the implicit data gradient"):
			results = append(results, skipped("bwdata", winoOpData+" implicit"))
		default:
			won, res := t.choosePath(pathChoice{family: "bwdata", define: "CONV_BWDATA", usual: "col", alt: "implicit",
				usualName: "col", altName: "implicit", op: winoOpData,
				small: []device.ConvShape{
					{N: 2, C: 8, H: 9, W: 7, K: 6, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2},
					{N: 3, C: 4, H: 6, W: 5, K: 5, R: 3, S: 3, Stride: 1, Pad: 0, Groups: 1},
				},
				shapes: shapes})
			results = append(results, res...)
			out["CONV_BWDATA"] = "col"
			if won {
				out["CONV_BWDATA"] = "implicit"
			}
		}
		t.s.opts.Defines["CONV_BWDATA"] = out["CONV_BWDATA"]
	}
	// Winograd, per filter size and op; 5x5 first, the larger gain, in
	// case the budget runs out: F(2x2, RxR) against the usual path, then
	// the larger tile (winoLarge: F(3x3, 5x5), F(4x4, 3x3)) against the
	// op's winner so far, which it takes if faster. An op not tried keeps
	// its usual path.
	for _, R := range []int{5, 3} {
		shapes := slices.DeleteFunc(slices.Clone(t.spec.winoShapes), func(s device.ConvShape) bool { return s.R != R })
		if len(shapes) == 0 {
			continue
		}
		define, family := winoDefines[R], fmt.Sprintf("winograd%d", R)
		large := winoLarge[R]
		largeFamily := fmt.Sprintf("winograd%d%d", large.M, R)
		out[define], out[large.define] = "off", "off"
		if noWino != nil {
			first, _, _ := strings.Cut(noWino.Error(), "\n") // the log is in Options.Logf
			results = append(results, tuneResult{Family: family, Candidate: "winograd", Dropped: "wino.cl does not build: " + first},
				tuneResult{Family: largeFamily, Candidate: large.name, Dropped: "wino.cl does not build: " + first})
			continue
		}
		// Small odd shapes, one grouped, of this filter size.
		P := (R - 1) / 2
		small := []device.ConvShape{
			{N: 2, C: 5, H: 7, W: 9, K: 6, R: R, S: R, Stride: 1, Pad: P, Groups: 1},
			{N: 3, C: 4, H: 6, W: 5, K: 6, R: R, S: R, Stride: 1, Pad: P, Groups: 2},
		}
		var won, wonLarge []string
		for _, op := range []string{winoOpForward, winoOpData, winoOpFilter} {
			if spent(family + " " + op) {
				results = append(results, skipped(family, op+" winograd"), skipped(largeFamily, op+" "+large.name))
				continue
			}
			ok, res := t.choosePath(pathChoice{family: family, define: define, usual: "off", alt: op,
				usualName: "direct", altName: "winograd", op: op, small: small, shapes: shapes})
			firstAt, firstN := len(results), len(res) // this pair's results
			results = append(results, res...)
			t.s.opts.Defines[define] = "off"
			incumbent := "direct"
			if ok {
				t.s.opts.Defines[define], incumbent = op, "winograd"
			}
			if spent(largeFamily + " " + op) {
				results = append(results, skipped(largeFamily, op+" "+large.name))
			} else {
				okLarge, res := t.choosePath(pathChoice{family: largeFamily, define: large.define, usual: "off", alt: op,
					usualName: incumbent, altName: large.name, op: op, small: small, shapes: shapes})
				results = append(results, res...)
				t.s.opts.Defines[large.define] = "off"
				if okLarge { // neither of the first pair runs this op
					wonLarge, ok = append(wonLarge, op), false
					for i := firstAt; i < firstAt+firstN; i++ {
						results[i].Chosen = false
					}
				}
			}
			if ok {
				won = append(won, op)
			}
		}
		out[define], out[large.define] = joinOps(won), joinOps(wonLarge)
		t.s.opts.Defines[define], t.s.opts.Defines[large.define] = out[define], out[large.define]
	}
	return out, results, nil
}

// joinOps is the CONV_WINO value of ops: "off" for none.
func joinOps(ops []string) string {
	if len(ops) == 0 {
		return "off"
	}
	return strings.Join(ops, "+")
}

// pathsMin is the least time the paths step gets after its build.
var pathsMin = 5 * time.Second

// winMargin is how much faster (a fraction) the other path of a
// pathChoice must be, in the sum of its shapes' medians, to be chosen.
const winMargin = 0.02

// choosePath checks p's other path, times both on p's shapes and reports
// whether the other path was faster by winMargin (in the sum of the
// shapes' medians), with a result for each path. It leaves p.define set
// to p.alt.
func (t *tuner) choosePath(p pathChoice) (bool, []tuneResult) {
	logf := func(format string, args ...any) {
		t.d.opts.logf("tuning %s on %s: "+format, append([]any{p.family, t.d.info.Name}, args...)...)
	}
	t.s.opts.Defines[p.define] = p.alt
	r := tuneResult{Family: p.family, Candidate: p.op + " " + p.altName}
	what := r.Candidate
	if err := t.checkOpSmall(p, p.small); err != nil {
		r.Dropped = err.Error()
		logf("%s dropped: %v", what, err)
		return false, []tuneResult{r}
	}
	usual := tuneResult{Family: p.family, Candidate: p.op + " " + p.usualName}
	var sumU, sumA time.Duration
	for _, s := range p.shapes {
		cs, err := t.convCase(p.op, s)
		if err == nil {
			var tu, ta time.Duration
			if tu, ta, err = t.timeTwoWays(p, cs); err == nil {
				sumU, sumA = sumU+tu, sumA+ta
				for _, x := range []struct {
					r *tuneResult
					d time.Duration
				}{{&usual, tu}, {&r, ta}} {
					x.r.Shapes = append(x.r.Shapes, cs.name)
					x.r.GFLOPS = append(x.r.GFLOPS, math.Round(cs.flops/x.d.Seconds()/1e8)/10) // the direct count: comparable
				}
			}
		}
		cs.free()
		if err != nil {
			r.Dropped = err.Error()
			logf("%s dropped: %v", what, err)
			return false, []tuneResult{usual, r}
		}
	}
	// The other path must be faster by winMargin: a near tie keeps the
	// usual path (one the rest of alexcl measures).
	won := len(p.shapes) > 0 && float64(sumA) < (1-winMargin)*float64(sumU)
	r.Chosen, usual.Chosen = won, !won
	logf("%s: %v %s, %v %s (%s; medians of %d)", p.op, sumU.Round(time.Microsecond), p.usualName,
		sumA.Round(time.Microsecond), p.altName, strings.Join(r.Shapes, " / "), max(t.spec.runs, 1))
	return won, []tuneResult{usual, r}
}

// convCase is one timed shape of choosePath: its buffers and op, and the
// op's work as the direct convolution's multiply-adds, times 2.
type convCase struct {
	name  string
	flops float64
	run   func() error
	reset func() error
	out   device.Buffer
	n     int
	bufs  []device.Buffer
	t     *tuner
}

func (c *convCase) free() { c.t.freeAll(c.bufs) }

// convCase sets up op on s with random data.
func (t *tuner) convCase(op string, s device.ConvShape) (*convCase, error) {
	nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C/s.Groups*s.R*s.S, s.N*s.K*s.OH()*s.OW()
	c := &convCase{t: t,
		name:  fmt.Sprintf("%s %d %dx%d/%d p%d g%d on %dx%dx%dx%d", op, s.K, s.R, s.S, s.Stride, s.Pad, s.Groups, s.N, s.C, s.H, s.W),
		flops: 2 * float64(ny) * float64(s.C/s.Groups*s.R*s.S)}
	// x, w, b, y, and dw (read by the filter gradient only).
	bufs, err := t.uploadAll(t.random(nx), t.random(nw), t.random(s.K), t.random(ny), t.random(nw))
	if err != nil {
		return c, err
	}
	c.bufs = bufs
	x, w, b, y, dw := bufs[0], bufs[1], bufs[2], bufs[3], bufs[4]
	nan := func(b device.Buffer) func() error {
		return func() error { return t.s.Fill(b, float32(math.NaN())) }
	}
	switch op {
	case winoOpForward:
		c.run, c.out, c.n, c.reset = func() error { return t.s.Conv2DForward(x, w, b, y, s) }, y, ny, nan(y)
	case winoOpData:
		c.run, c.out, c.n, c.reset = func() error { return t.s.Conv2DBackwardData(y, w, x, s) }, x, nx, nan(x)
	case winoOpFilter:
		c.run, c.out, c.n = func() error { return t.s.Conv2DBackwardFilter(x, y, dw, b, s) }, dw, nw
		c.reset = func() error { return t.s.Fill(dw, 0) }
	default:
		return c, errors.New("unknown op " + op)
	}
	return c, nil
}

// timeTwoWays runs c once each way, checks that the two ways launched
// different kernels (or the define steered nothing) and that the other
// path's output is near the usual path's, then returns the median device
// times of the two over the spec's runs, taken in rounds that alternate
// which path goes first.
func (t *tuner) timeTwoWays(p pathChoice, c *convCase) (usual, alt time.Duration, err error) {
	values := []string{p.usual, p.alt}
	defer func() { t.s.opts.Defines[p.define] = p.alt }()
	var outs [2][]float32
	var kernels [2][]string
	for i, v := range values {
		t.s.opts.Defines[p.define] = v
		if err := c.reset(); err != nil {
			return 0, 0, err
		}
		if _, kernels[i], err = t.profileOne(benchCase{name: c.name, run: c.run}); err != nil {
			return 0, 0, err
		}
		// The hook's candidate names the path: the define's value.
		if outs[i], err = t.readBack(p.family, candidate{Kind: v}, c.out, c.n); err != nil {
			return 0, 0, err
		}
	}
	if slices.Equal(kernels[0], kernels[1]) {
		return 0, 0, fmt.Errorf("%s: %s=%s runs the same kernels as %s=%s (%s)", c.name, p.define, p.alt, p.define, p.usual, strings.Join(kernels[0], " "))
	}
	if err := checkNear(c.name, outs[1], outs[0]); err != nil {
		return 0, 0, err
	}
	var ts [2][]time.Duration
	for round := range max(t.spec.runs, 1) {
		for j := range 2 {
			i := (j + round) % 2
			t.s.opts.Defines[p.define] = values[i]
			d, err := t.timeOne(benchCase{name: c.name, run: c.run})
			if err != nil {
				return 0, 0, err
			}
			ts[i] = append(ts[i], d)
		}
	}
	return median(ts[0]), median(ts[1]), nil
}

// checkNear compares got with want, the same op computed another way, on
// a large shape: |got−want| <= 1e-4·(|want| + the mean |want|), NaN
// nowhere; the mean term covers the cancellation in long sums, whose
// error scales with the magnitude of their terms, not of the result.
func checkNear(what string, got, want []float32) error {
	mean := 0.0
	for _, w := range want {
		mean += math.Abs(float64(w))
	}
	mean /= float64(max(len(want), 1))
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsInf(g, 0) || math.IsNaN(w) || math.Abs(g-w) > 1e-4*(math.Abs(w)+mean) {
			return fmt.Errorf("wrong result: %s: index %d: got %.7g, the usual path %.7g", what, i, g, w)
		}
	}
	return nil
}

// checkOpSmall runs p.op on the scratch device as its defines stand (p.alt
// set) on small shapes against device/ref.
func (t *tuner) checkOpSmall(p pathChoice, shapes []device.ConvShape) error {
	for _, s := range shapes {
		nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C/s.Groups*s.R*s.S, s.N*s.K*s.OH()*s.OW()
		x, w, b, y := t.random(nx), t.random(nw), t.random(s.K), t.random(ny)
		var want []float32
		var in [][]float32 // uploaded in this order
		var outIdx, n int
		switch p.op {
		case winoOpForward:
			want, in, outIdx, n = make([]float32, ny), [][]float32{x, w, b, make([]float32, ny)}, 3, ny
			ref.Conv2DForward(x, w, b, want, s)
		case winoOpData:
			want, in, outIdx, n = make([]float32, nx), [][]float32{y, w, make([]float32, nx)}, 2, nx
			ref.Conv2DBackwardData(y, w, want, s)
		case winoOpFilter:
			want, in, outIdx, n = slices.Clone(w), [][]float32{x, y, w, make([]float32, s.K)}, 2, nw
			ref.Conv2DBackwardFilter(x, y, want, make([]float32, s.K), s)
		default:
			return errors.New("unknown op " + p.op)
		}
		bufs, err := t.uploadAll(in...)
		if err != nil {
			return err
		}
		switch p.op {
		case winoOpForward:
			err = t.s.Conv2DForward(bufs[0], bufs[1], bufs[2], bufs[3], s)
		case winoOpData:
			err = t.s.Conv2DBackwardData(bufs[0], bufs[1], bufs[2], s)
		case winoOpFilter:
			err = t.s.Conv2DBackwardFilter(bufs[0], bufs[1], bufs[2], bufs[3], s)
		}
		var got []float32
		if err == nil {
			got, err = t.readBack(p.family, candidate{Kind: p.alt}, bufs[outIdx], n)
		}
		t.freeAll(bufs)
		if err != nil {
			return err
		}
		if err := checkClose(fmt.Sprintf("%s %+v", p.op, s), got, want); err != nil {
			return err
		}
	}
	return nil
}

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
	"github.com/alexcl/alexcl/device/ref"
)

// The tuner's last step: for each convolution op, Winograd F(2×2, 3×3)
// (wino.go) or the op's usual path, whichever the device runs faster on
// the spec's 3×3 shapes, with the GEMM and convolution tunables already
// chosen. Both paths run one program (CONV_WINO only steers the host), so
// the step builds once and times the two in alternation, op by op. Before
// timing, the Winograd ops are checked against device/ref on small
// shapes, and on each timed shape against the usual path's output; an op
// whose check fails keeps its usual path.

// pickWino returns the CONV_WINO value for a program built with defs (the
// ops where Winograd was faster, joined by "+", or "off") and what was
// measured.
func (t *tuner) pickWino(defs map[string]string) (string, []tuneResult, error) {
	sources := kernelSources("conv.cl", "gemm.cl", "wino.cl")
	prog, kernels, err := buildCandidate(t.s.ctx, sources, Options{Defines: defs, BuildOptions: t.s.opts.BuildOptions})
	if err != nil {
		return "", nil, err
	}
	c := &contender{prog: prog, kernels: kernels, defs: maps.Clone(defs)}
	defer func() {
		c.release()
		t.s.prog, t.s.kernels = nil, nil
	}()
	t.activate(c)
	on := func(v string) { t.s.opts.Defines["CONV_WINO"] = v }

	var results []tuneResult
	var chosen []string
	logf := func(format string, args ...any) {
		t.d.opts.logf("tuning winograd on %s: "+format, append([]any{t.d.info.Name}, args...)...)
	}
	for _, op := range []string{winoOpForward, winoOpData, winoOpFilter} {
		on(op)
		r := tuneResult{Family: "wino", Candidate: op + " winograd"}
		if err := t.checkWinoSmall(op); err != nil {
			r.Dropped = err.Error()
			logf("%s dropped: %v", op, err)
			results = append(results, r)
			continue
		}
		direct := tuneResult{Family: "wino", Candidate: op + " direct"}
		var times [2][]time.Duration // direct, winograd; per shape, summed
		for _, s := range t.spec.winoShapes {
			cs, err := t.winoCase(op, s)
			if err == nil {
				var td, tw time.Duration
				td, tw, err = t.timeWino(op, cs)
				times[0], times[1] = append(times[0], td), append(times[1], tw)
				direct.Shapes = append(direct.Shapes, cs.name)
				r.Shapes = append(r.Shapes, cs.name)
				direct.GFLOPS = append(direct.GFLOPS, math.Round(cs.flops/td.Seconds()/1e8)/10)
				r.GFLOPS = append(r.GFLOPS, math.Round(cs.flops/tw.Seconds()/1e8)/10) // the direct count: comparable
			}
			cs.free()
			if err != nil {
				r.Dropped = err.Error()
				break
			}
		}
		if r.Dropped != "" {
			logf("%s dropped: %s", op, r.Dropped)
			results = append(results, direct, r)
			continue
		}
		var sd, sw time.Duration
		for i := range times[0] {
			sd, sw = sd+times[0][i], sw+times[1][i]
		}
		if sw < sd {
			r.Chosen = true
			chosen = append(chosen, op)
		} else {
			direct.Chosen = true
		}
		logf("%s: %v direct, %v winograd (%s; medians of %d)", op, sd.Round(time.Microsecond), sw.Round(time.Microsecond), strings.Join(r.Shapes, " / "), max(t.spec.runs, 1))
		results = append(results, direct, r)
	}
	if len(chosen) == 0 {
		return "off", results, nil
	}
	return strings.Join(chosen, "+"), results, nil
}

// winoCase is one timed shape of pickWino: its buffers, its op, and the
// op's work in multiply-adds of the direct convolution, times 2.
type winoCase struct {
	name  string
	flops float64
	run   func() error
	out   device.Buffer
	n     int
	reset func() error
	bufs  []device.Buffer
	t     *tuner
}

func (c *winoCase) free() {
	for _, b := range c.bufs {
		c.t.s.Free(b)
	}
}

// winoCase sets up op on s with random data.
func (t *tuner) winoCase(op string, s device.ConvShape) (*winoCase, error) {
	nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C/s.Groups*s.R*s.S, s.N*s.K*s.OH()*s.OW()
	c := &winoCase{t: t,
		name:  fmt.Sprintf("%s %d 3x3 g%d on %dx%dx%dx%d", op, s.K, s.Groups, s.N, s.C, s.H, s.W),
		flops: 2 * float64(ny) * float64(s.C/s.Groups*9)}
	var err error
	up := func(n int) device.Buffer {
		if err != nil {
			return nil
		}
		var b device.Buffer
		if b, err = t.upload(t.random(n)); err == nil {
			c.bufs = append(c.bufs, b)
		}
		return b
	}
	x, w, b, y := up(nx), up(nw), up(s.K), up(ny)
	if err != nil {
		return c, err
	}
	nan := func(b device.Buffer) func() error {
		return func() error { return t.s.Fill(b, float32(math.NaN())) }
	}
	switch op {
	case winoOpForward:
		c.run, c.out, c.n, c.reset = func() error { return t.s.Conv2DForward(x, w, b, y, s) }, y, ny, nan(y)
	case winoOpData:
		c.run, c.out, c.n, c.reset = func() error { return t.s.Conv2DBackwardData(y, w, x, s) }, x, nx, nan(x)
	case winoOpFilter:
		dw := up(nw)
		if err != nil {
			return c, err
		}
		c.run, c.out, c.n = func() error { return t.s.Conv2DBackwardFilter(x, y, dw, b, s) }, dw, nw
		c.reset = func() error { return t.s.Fill(dw, 0) }
	}
	return c, nil
}

// timeWino checks c's Winograd output against its usual path's and
// returns the median device times of the two over the spec's runs, run
// in alternation.
func (t *tuner) timeWino(op string, c *winoCase) (direct, wino time.Duration, err error) {
	var outs [2][]float32
	for i, v := range []string{"off", op} {
		t.s.opts.Defines["CONV_WINO"] = v
		if err := c.reset(); err != nil {
			return 0, 0, err
		}
		if err := c.run(); err != nil {
			return 0, 0, err
		}
		// The hook's candidate names the path: "off", or the Winograd op.
		if outs[i], err = t.readBack("wino", candidate{Kind: v}, c.out, c.n); err != nil {
			return 0, 0, err
		}
	}
	if err := checkNear(c.name, outs[1], outs[0]); err != nil {
		return 0, 0, err
	}
	var ts [2][]time.Duration
	for range max(t.spec.runs, 1) {
		for i, v := range []string{"off", op} {
			t.s.opts.Defines["CONV_WINO"] = v
			d, err := t.timeOne(benchCase{name: c.name, run: c.run})
			if err != nil {
				return 0, 0, err
			}
			ts[i] = append(ts[i], d)
		}
	}
	t.s.opts.Defines["CONV_WINO"] = op
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

// checkWinoSmall runs op with Winograd (the scratch device's CONV_WINO
// is op) on small shapes, odd-sized and grouped, against device/ref.
func (t *tuner) checkWinoSmall(op string) error {
	for _, s := range []device.ConvShape{
		{N: 2, C: 5, H: 7, W: 9, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 3, C: 4, H: 6, W: 5, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
	} {
		nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C/s.Groups*9, s.N*s.K*s.H*s.W
		x, w, b, y := t.random(nx), t.random(nw), t.random(s.K), t.random(ny)
		var want []float32
		var in [][]float32 // uploaded in this order
		var outIdx, n int
		switch op {
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
			return errors.New("unknown op " + op)
		}
		var bufs []device.Buffer
		var err error
		for _, v := range in {
			var buf device.Buffer
			if buf, err = t.upload(v); err != nil {
				break
			}
			bufs = append(bufs, buf)
		}
		var got []float32
		if err == nil {
			switch op {
			case winoOpForward:
				err = t.s.Conv2DForward(bufs[0], bufs[1], bufs[2], bufs[3], s)
			case winoOpData:
				err = t.s.Conv2DBackwardData(bufs[0], bufs[1], bufs[2], s)
			case winoOpFilter:
				err = t.s.Conv2DBackwardFilter(bufs[0], bufs[1], bufs[2], bufs[3], s)
			}
			if err == nil {
				got, err = t.readBack("wino", candidate{Kind: op}, bufs[outIdx], n)
			}
		}
		for _, buf := range bufs {
			t.s.Free(buf)
		}
		if err != nil {
			return err
		}
		if err := checkClose(fmt.Sprintf("%s %+v", op, s), got, want); err != nil {
			return err
		}
	}
	return nil
}

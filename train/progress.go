package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress reports training progress on w: on a terminal one line redrawn
// in place, otherwise a plain line every interval. It keeps the running mean
// of the loss since the last epoch line.
type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	total    int64 // steps the run will do in all (from step 0), 0 if unknown
	perEpoch int

	lastDraw  time.Time
	drawn     bool // a line is on screen that the next output must clear
	lossSum   float64
	lossN     int64
	rateStart time.Time // images/s is measured since here
	rateImgs  int64
	rate      float64 // last measured images/s
	stepStart int64   // first step of this process, for the ETA
	runStart  time.Time
	// firstEnd is when this process's first step ended: the ETA counts
	// from there once a second step is done, as the first carries
	// one-time costs (an OpenCL device times each convolution's paths on
	// its first use of a layer shape, shapes.go).
	firstEnd time.Time
	now      func() time.Time // time.Now; tests step a clock of their own
	// evalDur is how long the last evaluation took; the ETA counts one per
	// epoch end (and one at a last step inside an epoch) still to come.
	// The steps' own time leaves evaluations out (evalDone).
	evalDur time.Duration
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newProgress(w io.Writer, interval time.Duration, total int64, perEpoch int, startStep int64) *progress {
	tty := isTerminal(w)
	if interval <= 0 {
		interval = 10 * time.Second
		if tty {
			interval = 200 * time.Millisecond
		}
	}
	now := time.Now()
	return &progress{w: w, tty: tty, interval: interval, total: total, perEpoch: perEpoch,
		rateStart: now, runStart: now, stepStart: startStep, lastDraw: now, now: time.Now}
}

// step records one finished step (step counted from 1) of n images with the
// batch mean loss, and redraws the line when it is due.
func (p *progress) step(step int64, epoch int, n int, loss float64, lr float64) {
	p.lossSum += loss
	p.lossN++
	p.rateImgs += int64(n)
	now := p.now()
	if p.firstEnd.IsZero() {
		p.firstEnd = now
	}
	if now.Sub(p.lastDraw) < p.interval && step != p.total {
		return
	}
	if dt := now.Sub(p.rateStart).Seconds(); dt > 0 {
		p.rate = float64(p.rateImgs) / dt
	}
	p.rateStart, p.rateImgs = now, 0
	p.lastDraw = now

	var b strings.Builder
	if p.total > 0 {
		fmt.Fprintf(&b, "step %d/%d", step, p.total)
	} else {
		fmt.Fprintf(&b, "step %d", step)
	}
	if p.perEpoch > 0 {
		fmt.Fprintf(&b, "  epoch %d (%d/%d)", epoch+1, int(step-1)%p.perEpoch+1, p.perEpoch)
	}
	fmt.Fprintf(&b, "  loss %.4f  lr %.3g  %.1f img/s", p.lossSum/float64(p.lossN), lr, p.rate)
	if done := step - p.stepStart; p.total > 0 && done > 0 {
		perStep := now.Sub(p.runStart) / time.Duration(done)
		if done > 1 {
			perStep = now.Sub(p.firstEnd) / time.Duration(done-1)
		}
		eta := perStep*time.Duration(p.total-step) + p.evalDur*time.Duration(p.evalsLeft(step))
		fmt.Fprintf(&b, "  ETA %s", fmtDuration(eta))
	}
	p.print(b.String(), p.tty)
}

// begin starts the clocks of the rate and the ETA: the run's setup (an
// OpenCL device compiles and tunes its kernels) is not a step's time.
func (p *progress) begin() {
	now := p.now()
	p.runStart, p.rateStart, p.lastDraw = now, now, now
}

// eval shows, on a terminal, how far an evaluation has come (done of
// total test samples), redrawn at most every interval; elsewhere the
// result line that follows is enough.
func (p *progress) eval(step int64, done, total int) {
	if !p.tty {
		return
	}
	now := p.now()
	if now.Sub(p.lastDraw) < p.interval && done != total {
		return
	}
	p.lastDraw = now
	p.print(fmt.Sprintf("step %d: evaluating, %d/%d test samples", step, done, total), true)
}

// evalsLeft is how many evaluations the run still does after step: one
// at each epoch end from step on (step's own, if it ends an epoch, runs
// next) and one at the last step if it ends inside an epoch.
func (p *progress) evalsLeft(step int64) int64 {
	if p.perEpoch <= 0 || p.total <= 0 || step > p.total {
		return 0
	}
	pe := int64(p.perEpoch)
	n := p.total/pe - (step-1)/pe
	if p.total%pe != 0 {
		n++
	}
	return max(n, 0)
}

// evalDone records that an evaluation took d, which the ETA counts for
// each one still to come, and moves the steps' clock past it, so that
// the time per step leaves it out.
func (p *progress) evalDone(d time.Duration) {
	p.evalDur = d
	if !p.firstEnd.IsZero() {
		p.firstEnd = p.firstEnd.Add(d)
	}
	p.runStart = p.runStart.Add(d)
}

// meanLoss is the running mean of the training loss since the last reset.
func (p *progress) meanLoss() float64 {
	if p.lossN == 0 {
		return 0
	}
	return p.lossSum / float64(p.lossN)
}

// resetLoss starts a new running mean, and a new images/s window so that
// an evaluation's time does not count as training time.
func (p *progress) resetLoss() {
	p.lossSum, p.lossN = 0, 0
	p.rateStart, p.rateImgs = p.now(), 0
}

// line prints a line that stays (epoch summaries, checkpoints, warnings).
func (p *progress) line(format string, args ...any) {
	p.print(fmt.Sprintf(format, args...), false)
}

// print writes s, in place when transient on a terminal.
func (p *progress) print(s string, transient bool) {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	if transient {
		fmt.Fprint(p.w, s)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, s)
}

// fmtDuration formats d as 1h02m, 3m04s or 5.2s.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

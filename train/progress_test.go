package train

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/alexcl/alexcl/device/cpu"
)

// TestProgressETA: the ETA counts from the end of the first step, whose
// one-time costs (tuning, the paths per layer shape) would otherwise
// stretch it for the whole run.
func TestProgressETA(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, time.Nanosecond, 11, 0, 0)
	clock := p.runStart
	p.now = func() time.Time { return clock }
	clock = clock.Add(100 * time.Second) // a slow first step
	p.step(1, 0, 8, 1, 0.1)
	if !strings.Contains(out.String(), "ETA 16m40s") { // 100 s a step so far, 10 to go
		t.Errorf("after the first step: %q", out.String())
	}
	out.Reset()
	for step := int64(2); step <= 3; step++ { // then 1 s a step
		clock = clock.Add(time.Second)
		p.step(step, 0, 8, 1, 0.1)
	}
	if !strings.Contains(out.String(), "ETA 8.0s") { // 8 steps to go at 1 s
		t.Errorf("after the third step: %q", out.String())
	}
}

// TestProgressEval: on a terminal an evaluation redraws its own line, at
// most every interval and always at its end, and the next line clears it;
// elsewhere it prints nothing.
func TestProgressEval(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, time.Second, 10, 0, 0)
	p.tty = true
	clock := p.runStart
	p.now = func() time.Time { return clock }
	clock = clock.Add(2 * time.Second)
	p.eval(10, 128, 1000)
	p.eval(10, 256, 1000) // within the interval: not drawn
	p.eval(10, 1000, 1000)
	p.line("epoch 1: ...")
	want := "step 10: evaluating, 128/1000 test samples\r\033[Kstep 10: evaluating, 1000/1000 test samples\r\033[Kepoch 1: ...\n"
	if out.String() != want {
		t.Errorf("terminal output %q, want %q", out.String(), want)
	}
	out.Reset()
	p.tty = false
	p.eval(10, 1000, 1000)
	if out.Len() != 0 {
		t.Errorf("not a terminal: %q, want nothing", out.String())
	}
}

// TestNoteDataWait: an epoch whose steps waited more than dataWaitShare
// of their time for the loader says so, with the share and the workers;
// one that waited less says nothing.
func TestNoteDataWait(t *testing.T) {
	var out bytes.Buffer
	d := cpu.New()
	defer d.Close()
	r := &run{cfg: Config{Workers: 3}, d: d, prog: newProgress(&out, time.Second, 10, 0, 0)}
	r.noteDataWait(2*time.Second, 10*time.Second, 2, 10)
	if out.Len() != 0 {
		t.Errorf("20%% waiting, 2 of 10 steps held up: %q, want nothing", out.String())
	}
	r.noteDataWait(4*time.Second, 10*time.Second, 0, 0)
	if s := out.String(); !strings.Contains(s, "waited 4.0s of 10.0s (40%) for the data loader") || !strings.Contains(s, "on 3 workers") {
		t.Errorf("40%% waiting: %q", s)
	}
	out.Reset()
	r.noteDataWait(0, 10*time.Second, 4, 10) // a device that takes the next batch during a step
	if s := out.String(); !strings.Contains(s, "in 4 of 10 steps (40%) cpu was done before the data loader had the next batch") {
		t.Errorf("4 of 10 steps held up: %q", s)
	}
}

// TestProgressETAEval: once an evaluation has run, the ETA counts one
// like it per epoch end still to come (and one at a last step inside an
// epoch), and the time per step leaves the evaluation out.
func TestProgressETAEval(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, time.Nanosecond, 25, 10, 0) // epochs of 10 steps; evaluations at 10, 20 and 25
	clock := p.runStart
	p.now = func() time.Time { return clock }
	for step := int64(1); step <= 3; step++ {
		clock = clock.Add(time.Second)
		p.step(step, 0, 8, 1, 0.1)
	}
	clock = clock.Add(5 * time.Second) // an evaluation of 5 s
	p.evalDone(5 * time.Second)
	out.Reset()
	clock = clock.Add(time.Second)
	p.step(4, 0, 8, 1, 0.1)
	if !strings.Contains(out.String(), "ETA 36.0s") { // 21 steps of 1 s, 3 evaluations of 5 s
		t.Errorf("after an evaluation: %q, want ETA 36.0s", out.String())
	}
	for step, want := range map[int64]int64{1: 3, 10: 3, 11: 2, 20: 2, 21: 1, 25: 1} {
		if got := p.evalsLeft(step); got != want {
			t.Errorf("evaluations left after step %d: %d, want %d", step, got, want)
		}
	}
}

// TestProgressBegin: time before begin (the device's setup) counts in
// neither the rate nor the ETA.
func TestProgressBegin(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, time.Nanosecond, 11, 0, 0)
	clock := p.runStart
	p.now = func() time.Time { return clock }
	clock = clock.Add(time.Minute) // compiling and tuning
	p.begin()
	clock = clock.Add(2 * time.Second)
	p.step(1, 0, 8, 1, 0.1)
	if s := out.String(); !strings.Contains(s, "4.0 img/s") || !strings.Contains(s, "ETA 20.0s") {
		t.Errorf("first step after a minute of setup: %q, want 4.0 img/s and ETA 20.0s", s)
	}
}

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
	r.noteDataWait(2*time.Second, 10*time.Second)
	if out.Len() != 0 {
		t.Errorf("20%% waiting: %q, want nothing", out.String())
	}
	r.noteDataWait(4*time.Second, 10*time.Second)
	if s := out.String(); !strings.Contains(s, "waited 4.0s of 10.0s (40%) for the data loader") || !strings.Contains(s, "on 3 workers") {
		t.Errorf("40%% waiting: %q", s)
	}
}

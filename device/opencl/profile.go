package opencl

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/alexcl/alexcl/device/opencl/cl"
)

// KernelTime is the execution time of one profiled kernel launch, from its
// OpenCL event (CL_PROFILING_COMMAND_END − CL_PROFILING_COMMAND_START).
type KernelTime struct {
	Kernel   string        // the kernel's name, e.g. "gemm_vec"
	Duration time.Duration // time the device spent running it
}

// profiler keeps the events of kernel launches while profiling is on. The
// queue is created with CL_QUEUE_PROFILING_ENABLE, so keeping an event is
// all profiling costs; when it is off, launches ask for no event.
type profiler struct {
	mu     sync.Mutex
	on     bool
	paused int // while above 0, launches are not recorded (shapes.go's timing)
	events []profEvent
}

type profEvent struct {
	kernel string
	ev     *cl.Event
}

// recording reports whether a launch now is recorded: profiling on and not
// paused. A launch asks for its event only then.
func (p *profiler) recording() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on && p.paused == 0
}

// keep records ev of a launch of kernel while profiling, else releases it.
func (p *profiler) keep(kernel string, ev *cl.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || p.paused > 0 {
		ev.Release()
		return
	}
	p.events = append(p.events, profEvent{kernel, ev})
}

// pause stops recording launches until resume, which each pause needs;
// profiling stays on.
func (p *profiler) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused++
}

func (p *profiler) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused--
}

// drop releases every kept event and turns profiling off.
func (p *profiler) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		e.ev.Release()
	}
	p.events, p.on = nil, false
}

// StartProfiling makes the device keep the OpenCL event of every kernel it
// launches from now on, until StopProfiling. Copies, fills and transfers
// are not recorded. Profiling changes no result; it costs an event per
// launch, so benchmarks time throughput with it off.
func (d *Device) StartProfiling() {
	d.prof.mu.Lock()
	defer d.prof.mu.Unlock()
	d.prof.on = true
}

// ProfiledLaunches is the number of kernel launches recorded since
// StartProfiling. A caller that notes it before and after an op knows
// which of StopProfiling's entries the op queued (ops queue in call order).
func (d *Device) ProfiledLaunches() int {
	d.prof.mu.Lock()
	defer d.prof.mu.Unlock()
	return len(d.prof.events)
}

// StopProfiling waits for queued work, turns profiling off and returns
// the recorded launches in launch order with their device times.
func (d *Device) StopProfiling() ([]KernelTime, error) {
	defer d.prof.drop()
	if err := d.Sync(); err != nil {
		return nil, err
	}
	d.prof.mu.Lock()
	defer d.prof.mu.Unlock()
	out := make([]KernelTime, len(d.prof.events))
	var errs []error
	for i, e := range d.prof.events {
		dur, err := e.ev.Duration()
		if err != nil {
			errs = append(errs, fmt.Errorf("profiling %s: %w", e.kernel, err))
		}
		out[i] = KernelTime{Kernel: e.kernel, Duration: dur}
	}
	return out, errors.Join(errs...)
}

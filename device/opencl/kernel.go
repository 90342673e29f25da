package opencl

import (
	"fmt"
	"math"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
)

// launch queues kernel name over global work items in groups of local,
// as launch.go documents. Besides the argument types listed there, a nil
// device.Buffer is passed as a NULL __global pointer.
func (d *Device) launch(name string, global, local []int, args ...any) error {
	k := d.kernels[name]
	if k == nil {
		return fmt.Errorf("%s: launch %s: not a kernel of the program (it has: %s): %w",
			d.info.ID, name, d.kernelNames(), cl.InvalidKernelName)
	}
	if len(global) < 1 || len(global) > 3 || (local != nil && len(local) != len(global)) {
		return fmt.Errorf("%s: launch %s: global %v and local %v must have the same 1 to 3 dimensions", d.info.ID, name, global, local)
	}
	for i, g := range global {
		if g < 1 {
			return fmt.Errorf("%s: launch %s: global size %v must be positive", d.info.ID, name, global)
		}
		if local != nil && (local[i] < 1 || g%local[i] != 0) {
			return fmt.Errorf("%s: launch %s: global size %v must be a positive multiple of the work-group size %v", d.info.ID, name, global, local)
		}
	}

	d.useMu.RLock()
	defer d.useMu.RUnlock()
	if d.closed {
		return fmt.Errorf("%s: launch %s: %w", d.info.ID, name, errClosed)
	}
	clArgs := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
			clArgs[i] = (*cl.MemObject)(nil)
		case device.Buffer:
			buf, ok := v.(*buffer)
			if !ok || buf == nil || buf.dev != d || buf.freed {
				// Format the argument's name only on this error path.
				_, err := d.resolve("launch "+name, fmt.Sprintf("argument %d", i), v)
				return fmt.Errorf("%s: %w", d.info.ID, err)
			}
			clArgs[i] = buf.mem
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				return fmt.Errorf("%s: launch %s: argument %d = %d does not fit a cl_int", d.info.ID, name, i, v)
			}
			clArgs[i] = int32(v)
		case int32, uint32, float32:
			clArgs[i] = v
		case Local:
			clArgs[i] = cl.LocalBuffer(v)
		default:
			return fmt.Errorf("%s: launch %s: argument %d has unsupported type %T", d.info.ID, name, i, a)
		}
	}

	d.launchMu.Lock()
	defer d.launchMu.Unlock()
	if err := k.SetArgs(clArgs...); err != nil {
		return fmt.Errorf("%s: launch %s: %w", d.info.ID, name, err)
	}
	w := d.takeWaits()
	var err error
	if d.prof.recording() {
		var ev *cl.Event
		if ev, err = d.queue.EnqueueNDRangeKernel(k, nil, global, local, w); err == nil {
			d.prof.keep(name, ev) // releases ev if profiling stopped meanwhile (profile.go)
		}
	} else {
		// No event: nothing waits on a launch, and creating and releasing
		// one per launch is host work a driver could spare.
		err = d.queue.EnqueueNDRangeKernelNoEvent(k, nil, global, local, w)
	}
	d.putWaits(w, err)
	if err != nil {
		return fmt.Errorf("%s: launch %s global %v local %v: %w", d.info.ID, name, global, local, err)
	}
	if d.flushEvery > 0 {
		// Hand the queued kernels to the device now and then, and at once
		// after the host has waited for it (the device is idle then): a
		// driver may hold them until a flush or a wait, idling the device
		// while the host queues the rest of a training step.
		if d.launches++; d.launches%d.flushEvery == 0 || d.idle.Swap(false) {
			if err := d.queue.Flush(); err != nil {
				return fmt.Errorf("%s: flush after %s: %w", d.info.ID, name, err)
			}
		}
	}
	return nil
}

package opencl

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
)

// This file gives the Device device.AsyncWriter: WriteAsync copies host
// data on a second in-order queue (the transfer queue), so that a GPU's
// copy engine uploads the next batch while the compute queue runs the
// current step. The compute queue's next command carries the copy's event
// in its wait list (takeWaits), so everything queued after WriteAsync sees
// the data, and nothing queued before it waits for the copy. A blocking
// Read waits only for copies into the buffer it reads (takeWaitsFor), so
// reading a step's loss does not wait for the next batch's upload.

// uploads is the Device's transfer-queue state.
type uploads struct {
	mu      sync.Mutex
	queue   *cl.CommandQueue // created on the first WriteAsync
	pending []pendingCopy    // copies the compute queue has not been made to wait for yet
}

// pendingCopy is a WriteAsync copy into dst, with its event.
type pendingCopy struct {
	ev  *cl.Event
	dst *buffer
}

// transfer is a device.Transfer: one WriteAsync copy.
type transfer struct {
	once sync.Once
	ev   *cl.Event
	src  []byte // kept reachable until the copy is done
	err  error
	what string
}

// Wait blocks until the copy has finished and reports its error.
func (t *transfer) Wait() error {
	t.once.Do(func() {
		if t.ev == nil {
			return
		}
		if err := t.ev.Wait(); err != nil {
			t.err = fmt.Errorf("%s: %w", t.what, err)
		}
		t.ev.Release()
		t.src = nil
	})
	return t.err
}

var _ device.AsyncWriter = (*Device)(nil)

// WriteAsync queues a copy of src into dst at byte offset off on the
// transfer queue and returns at once (device.AsyncWriter says what callers
// must keep to). A zero-length src gives a finished Transfer.
func (d *Device) WriteAsync(dst device.Buffer, off int, src []byte) (device.Transfer, error) {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	buf, err := d.resolveRange("write", "dst", dst, off, len(src))
	if err != nil {
		return nil, err
	}
	if len(src) == 0 {
		return &transfer{}, nil
	}
	what := fmt.Sprintf("write %d bytes to %s", len(src), d.info.ID)
	u := &d.up
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.queue == nil {
		if u.queue, err = d.ctx.CreateCommandQueue(d.dev, 0); err != nil {
			return nil, fmt.Errorf("%s: transfer queue: %w", what, err)
		}
	}
	ev, err := u.queue.EnqueueWriteBuffer(buf.mem, false, off, len(src), unsafe.Pointer(&src[0]), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := u.queue.Flush(); err != nil {
		ev.Wait()
		ev.Release()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	mine, err := ev.Retain()
	if err != nil {
		ev.Wait()
		ev.Release()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	u.pending = append(u.pending, pendingCopy{ev, buf})
	return &transfer{ev: mine, src: src, what: what}, nil
}

// takeWaits returns the copies the next command of the compute queue must
// wait for; the caller passes them as its wait list, then calls putWaits.
func (d *Device) takeWaits() []*cl.Event { return d.takeWaitsFor(nil) }

// takeWaitsFor is takeWaits for a command that uses only buffer b, such as
// a Read of b: it waits for the copies into b alone, and the others stay
// pending for the next command. A nil b takes every copy.
func (d *Device) takeWaitsFor(b *buffer) []*cl.Event {
	u := &d.up
	u.mu.Lock()
	defer u.mu.Unlock()
	var w []*cl.Event
	keep := u.pending[:0]
	for _, p := range u.pending {
		if b == nil || p.dst == b {
			w = append(w, p.ev)
		} else {
			keep = append(keep, p)
		}
	}
	clear(u.pending[len(keep):])
	u.pending = keep
	return w
}

// putWaits releases the wait list of a command that was queued (err ==
// nil), or keeps it for the next command when queueing failed.
func (d *Device) putWaits(w []*cl.Event, err error) {
	if len(w) == 0 {
		return
	}
	if err != nil {
		// Kept for the next command; which buffer each copy went to no
		// longer matters: any command takes them.
		u := &d.up
		u.mu.Lock()
		back := make([]pendingCopy, len(w))
		for i, e := range w {
			back[i] = pendingCopy{ev: e}
		}
		u.pending = append(back, u.pending...)
		u.mu.Unlock()
		return
	}
	for _, e := range w {
		e.Release()
	}
}

// finish waits for every copy on the transfer queue and every command of
// the compute queue (clFinish on both).
func (d *Device) finish() error {
	u := &d.up
	u.mu.Lock()
	q := u.queue
	u.mu.Unlock()
	var err error
	if q != nil {
		err = q.Finish()
	}
	if err2 := d.queue.Finish(); err == nil {
		err = err2
	}
	d.idle.Store(true)
	return err
}

// releaseUploads drops the waits not yet taken and the transfer queue of
// a device that is closing; finish has run.
func (d *Device) releaseUploads() {
	u := &d.up
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range u.pending {
		p.ev.Release()
	}
	u.pending = nil
	u.queue.Release()
	u.queue = nil
}

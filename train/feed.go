package train

import (
	"fmt"
	"time"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/device"
)

// feeder hands the training loop its batches already on the device. On a
// device.AsyncWriter (OpenCL) it keeps two pairs of input and label
// buffers and copies batch i+1 into one pair while step i runs on the
// other (prefetch), so no upload sits between two steps. On other devices
// it has one pair and Writes each batch when the loop asks for it.
type feeder struct {
	d      device.Device
	aw     device.AsyncWriter // nil: synchronous Writes
	loader *data.Loader
	x, y   [2]device.Buffer // y[s] holds the labels of the batch in x[s]

	slot  int     // buffers of the batch handed out last
	cur   *staged // that batch, kept until its copies have finished
	ahead *staged // what the next call of next returns, when prefetched

	// wait is the time next blocked in Loader.Next: a step that could not
	// start for want of images (the device idle). lastPrefetch is how
	// long the last prefetch blocked there, beside the device's work on
	// the step before: idle only for what outlasted that work.
	wait, lastPrefetch time.Duration
}

// staged is a batch copied (or being copied) into the buffers of slot, or
// the error Loader.Next gave instead (io.EOF at an epoch's end).
type staged struct {
	b      *data.Batch
	slot   int
	tx, ty device.Transfer // nil after synchronous Writes
	err    error
}

// uploadError is a device's failure to take a batch, as opposed to the
// loader's failure to give one.
type uploadError struct{ err error }

func (e *uploadError) Error() string { return e.err.Error() }
func (e *uploadError) Unwrap() error { return e.err }

// newFeeder allocates the buffers for batches of batch samples of inputLen
// floats each.
func newFeeder(d device.Device, loader *data.Loader, batch, inputLen int) (*feeder, error) {
	f := &feeder{d: d, loader: loader}
	f.aw, _ = d.(device.AsyncWriter)
	pairs := 1
	if f.aw != nil {
		pairs = 2
	}
	for s := range pairs {
		var err error
		if f.x[s], err = device.AllocFloat32(d, batch*inputLen); err != nil {
			f.close()
			return nil, fmt.Errorf("input buffer: %w", err)
		}
		if f.y[s], err = d.Alloc(4 * batch); err != nil {
			f.close()
			return nil, fmt.Errorf("label buffer: %w", err)
		}
	}
	return f, nil
}

// next returns the next batch and the buffers that hold it (the copies may
// still be running: work queued from now on sees them), or the loader's
// error (io.EOF at the end of an epoch), or an *uploadError.
func (f *feeder) next() (*data.Batch, device.Buffer, device.Buffer, error) {
	st := f.ahead
	f.ahead = nil
	if st == nil {
		t0 := time.Now()
		st = f.fetch(f.slot ^ 1)
		f.wait += time.Since(t0)
	}
	if err := f.retire(); err != nil {
		st.release(f.loader)
		return nil, nil, nil, err
	}
	if st.err != nil {
		st.release(f.loader) // waits for a copy started before the failure
		return nil, nil, nil, st.err
	}
	f.cur, f.slot = st, st.slot
	return st.b, f.x[st.slot], f.y[st.slot], nil
}

// prefetch starts copying the batch after the current one into the other
// buffers. Call it once the current step is queued: the other buffers were
// last used by the step before, which must have finished (the loop has read
// its loss). Without an AsyncWriter it does nothing.
func (f *feeder) prefetch() {
	if f.aw == nil || f.ahead != nil {
		return
	}
	t0 := time.Now()
	f.ahead = f.fetch(f.slot ^ 1)
	f.lastPrefetch = time.Since(t0)
}

// fetch takes the loader's next batch and copies it into the buffers of
// slot (slot 0 when there is only one pair).
func (f *feeder) fetch(slot int) *staged {
	b, err := f.loader.Next()
	if err != nil {
		return &staged{err: err}
	}
	if f.aw == nil {
		st := &staged{b: b}
		if err := f.d.Write(f.x[0], 0, device.Float32Bytes(b.X)); err != nil {
			st.err = &uploadError{fmt.Errorf("upload batch: %w", err)}
		} else if err := f.d.Write(f.y[0], 0, device.Int32Bytes(b.Y)); err != nil {
			st.err = &uploadError{fmt.Errorf("upload labels: %w", err)}
		}
		return st // the loop still reads b (b.N): retire gives it back
	}
	st := &staged{b: b, slot: slot}
	if st.tx, err = f.aw.WriteAsync(f.x[slot], 0, device.Float32Bytes(b.X)); err != nil {
		st.err = &uploadError{fmt.Errorf("upload batch: %w", err)}
		return st
	}
	if st.ty, err = f.aw.WriteAsync(f.y[slot], 0, device.Int32Bytes(b.Y)); err != nil {
		st.err = &uploadError{fmt.Errorf("upload labels: %w", err)}
	}
	return st
}

// retire waits for the copies of the batch handed out last and gives its
// host memory back to the loader. The loop calls it once the step has
// read its loss, so that a failed copy fails its own step (the step's
// kernels waited for the copy already, so this does not wait), and next
// calls it too.
func (f *feeder) retire() error {
	st := f.cur
	f.cur = nil
	if st == nil {
		return nil
	}
	return st.release(f.loader)
}

// release waits for st's copies, then gives its batch back to the loader
// (once the copies are done nothing reads it). It is safe to call twice.
func (st *staged) release(loader *data.Loader) error {
	var err error
	for _, t := range []device.Transfer{st.tx, st.ty} {
		if t != nil {
			if e := t.Wait(); e != nil && err == nil {
				err = &uploadError{fmt.Errorf("upload: %w", e)}
			}
		}
	}
	if st.b != nil {
		loader.Release(st.b)
	}
	st.b, st.tx, st.ty = nil, nil, nil
	return err
}

// close waits for copies still running and frees the buffers.
func (f *feeder) close() {
	f.retire()
	if f.ahead != nil {
		f.ahead.release(f.loader)
		f.ahead = nil
	}
	for s := range f.x {
		if f.x[s] != nil {
			f.d.Free(f.x[s])
		}
		if f.y[s] != nil {
			f.d.Free(f.y[s])
		}
	}
}

package opencl

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
)

// workspaceCap (a variable for tests) bounds, as wsCap scales it on large
// GPUs, the bytes of the workspace a convolution's chunk of images asks
// for (slots 0 and 1 together): the batch is split into chunks that fit
// (one image per chunk at least).
// Slot 3 (Winograd's transformed filters) is outside the cap, and slot 4
// (a split GEMM's partial products, gemmSplits) has a cap of its own, so
// the workspace may peak at about twice the cap plus slot 3 (a Winograd
// filter gradient whose GEMM is split).
var workspaceCap = 256 << 20

// wsCap is the device's workspace cap: workspaceCap, or on a GPU with more
// than 8 GiB a thirty-second of its memory (2.5 GiB on an 80 GiB card),
// so that a large batch's filter gradient runs in one chunk of images
// rather than a few, each of fewer work-groups than the GPU holds. On a
// CPU device memory is the host's, and larger chunks gain nothing.
func (d *Device) wsCap() int64 {
	c := int64(workspaceCap)
	if strings.Contains(d.info.Type, "GPU") {
		c = max(c, d.info.GlobalMem/32)
	}
	return c
}

// workspace is the device scratch memory of the convolutions and of split
// GEMMs: slot 0 holds unrolled patches (col), or the flipped filters of an
// implicit backward-data convolution, slot 1 the partial filter gradients
// of a GPU's runs of images (Conv2DBackwardFilter), slot 2 zeros (zeros);
// a Winograd convolution (wino.go) takes slots 0, 1 and 3, a GEMM
// split along K (gemm.go) slot 4 for its runs' partial products, and
// Device.Gemm's A·Bᵀ on the vector family (gemmByTranspose) slots 0 and 1
// for Aᵀ and the product. Each slot grows
// to the largest size asked for and is then reused, so a training step
// allocates nothing after its first one. Workspace buffers
// are not counted in MemStats (they are the device's, not the caller's);
// WorkspaceBytes reports them. mu is held for a whole convolution op, and
// for a split Device.Gemm, so ops of several goroutines never share a
// slot's contents.
type workspace struct {
	mu    sync.Mutex
	slots [5]*buffer
	bytes atomic.Int64
}

// slot returns workspace slot i of at least elems float32s. The caller
// holds d.ws.mu. Releasing an outgrown buffer is safe while queued work
// still uses it: OpenCL frees it once that work is done.
func (d *Device) slot(i, elems int) (*buffer, error) {
	size := 4 * elems
	if b := d.ws.slots[i]; b != nil && b.size >= size {
		return b, nil
	}
	if int64(size) > d.maxAlloc {
		return nil, fmt.Errorf("a workspace of %s is more than the %s a buffer may hold on %s: use a smaller batch or image",
			device.HumanBytes(int64(size)), device.HumanBytes(d.maxAlloc), d.info.ID)
	}
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("workspace on %s: %w", d.info.ID, errClosed)
	}
	mem, err := d.ctx.CreateEmptyBuffer(cl.MemReadWrite, size)
	if err != nil {
		return nil, fmt.Errorf("allocating a %s workspace on %s: %w", device.HumanBytes(int64(size)), d.info.ID, err)
	}
	if old := d.ws.slots[i]; old != nil {
		d.ws.bytes.Add(-int64(old.size))
		old.freed = true
		old.mem.Release()
	}
	d.ws.slots[i] = &buffer{mem: mem, size: size, dev: d}
	d.ws.bytes.Add(int64(size))
	return d.ws.slots[i], nil
}

// zeros returns a workspace buffer of at least n float32 zeros: slot 2,
// zero-filled when it is (re)allocated and never written by a kernel (a
// bias of zeros). The caller holds d.ws.mu.
func (d *Device) zeros(n int) (*buffer, error) {
	if b := d.ws.slots[2]; b != nil && b.size >= 4*n {
		return b, nil
	}
	b, err := d.slot(2, n)
	if err != nil {
		return nil, err
	}
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("workspace on %s: %w", d.info.ID, errClosed)
	}
	zero := float32(0)
	w := d.takeWaits()
	ev, err := d.queue.EnqueueFillBuffer(b.mem, unsafe.Pointer(&zero), 4, 0, b.size, w)
	d.putWaits(w, err)
	if err != nil {
		d.ws.slots[2] = nil // not zeros: the next call allocates again
		d.ws.bytes.Add(-int64(b.size))
		b.freed = true
		b.mem.Release()
		return nil, fmt.Errorf("zeroing %d bytes of workspace on %s: %w", b.size, d.info.ID, err)
	}
	ev.Release()
	return b, nil
}

// chunkImages returns how many of n images a chunk holds (at least one)
// when a chunk of nc needs slots of elems(nc) float32s (col, part; both
// nondecreasing in nc): the fewest chunks whose slots fit the workspace
// cap together and the device's largest buffer each, and of those chunks
// the smallest size that still covers n in that many, so that they are
// even (128 images in chunks of 43, 43 and 42, not 58, 58 and 12, whose
// last would leave most of a GPU idle).
func (d *Device) chunkImages(n int, elems func(nc int) (col, part int)) int {
	limit := d.wsCap()
	fits := func(nc int) bool {
		col, part := elems(nc)
		c, p := int64(col), int64(part)
		return 4*(c+p) <= limit && 4*c <= d.maxAlloc && 4*p <= d.maxAlloc
	}
	lo, hi := 1, n // fits(lo) or lo == 1; the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	lo = max(lo, 1)
	chunks := (n + lo - 1) / lo
	return max((n+chunks-1)/chunks, 1)
}

// evenChunks calls f on the n images in chunks of at most nc (what
// chunkImages gave), as few as that allows and as even as can be: their
// sizes differ by one at most (128 images in chunks of at most 9: not
// 14 of 9 and a last of 2, but 8 of 9 and 7 of 8).
func evenChunks(n, nc int, f func(n0, c int) error) error {
	chunks := (n + nc - 1) / max(nc, 1)
	n0 := 0
	for i := range chunks {
		c := n / chunks
		if i < n%chunks {
			c++
		}
		if err := f(n0, c); err != nil {
			return err
		}
		n0 += c
	}
	return nil
}

// WorkspaceBytes is the device memory the convolutions' workspace holds
// now, on top of MemStats.InUse.
func (d *Device) WorkspaceBytes() int64 { return d.ws.bytes.Load() }

// labelStatus is SoftmaxCrossEntropy's error path. The kernel sets a flag
// in status when a label is outside [0, classes) (and writes NaN loss for
// that sample); instead of reading the labels back before every launch,
// which would stall the queue each step, Sync and Read, which wait anyway,
// read the flag after their wait when a launch may have set it, report it
// once as an error, and clear it.
type labelStatus struct {
	mu      sync.Mutex
	status  *buffer // (1) int32, created by the first SoftmaxCrossEntropy
	pending atomic.Bool
	classes atomic.Int64 // the class count of the last launch, for the message
}

// labelStatusBuffer returns the flag buffer, creating and zeroing it on
// first use.
func (d *Device) labelStatusBuffer() (*buffer, error) {
	// Lock order: useMu before labels.mu, as in Sync and Read.
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	d.labels.mu.Lock()
	defer d.labels.mu.Unlock()
	if d.labels.status != nil {
		return d.labels.status, nil
	}
	if d.closed {
		return nil, fmt.Errorf("SoftmaxCrossEntropy on %s: %w", d.info.ID, errClosed)
	}
	mem, err := d.ctx.CreateEmptyBuffer(cl.MemReadWrite, 4)
	if err != nil {
		return nil, fmt.Errorf("SoftmaxCrossEntropy: label status buffer on %s: %w", d.info.ID, err)
	}
	var zero int32
	ev, err := d.queue.EnqueueWriteBuffer(mem, true, 0, 4, unsafe.Pointer(&zero), nil)
	if err != nil {
		mem.Release()
		return nil, fmt.Errorf("SoftmaxCrossEntropy: clearing the label status on %s: %w", d.info.ID, err)
	}
	ev.Release()
	d.labels.status = &buffer{mem: mem, size: 4, dev: d}
	return d.labels.status, nil
}

// takeLabelError is called by Sync and Read after they waited (with useMu
// held for reading). When a SoftmaxCrossEntropy was queued since the last
// check it reads the flag, and if a label was bad clears it and returns the
// error. Otherwise it costs nothing.
func (d *Device) takeLabelError(op string) error {
	if !d.labels.pending.Swap(false) {
		return nil
	}
	d.labels.mu.Lock()
	defer d.labels.mu.Unlock()
	st := d.labels.status
	if st == nil || d.closed {
		return nil
	}
	var v int32
	ev, err := d.queue.EnqueueReadBuffer(st.mem, true, 0, 4, unsafe.Pointer(&v), nil)
	if err != nil {
		return fmt.Errorf("%s %s: reading the label status: %w", op, d.info.ID, err)
	}
	ev.Release()
	if v == 0 {
		return nil
	}
	var zero int32
	if ev, err = d.queue.EnqueueWriteBuffer(st.mem, true, 0, 4, unsafe.Pointer(&zero), nil); err != nil {
		return fmt.Errorf("%s %s: clearing the label status: %w", op, d.info.ID, err)
	}
	ev.Release()
	return fmt.Errorf("%s %s: SoftmaxCrossEntropy: a label is outside [0, %d) (that sample's loss is NaN): check the dataset's labels and the network's class count",
		op, d.info.ID, d.labels.classes.Load())
}

// releaseOpsState releases what ops.go and profile.go hold: the
// workspace, the label status buffer and profiled events. Called by
// release, for a closing device or one that failed to open, with useMu
// held for writing. It does not take ws.mu (an op holds ws.mu while it
// waits for useMu); an op still running on another goroutine finds the
// device closed at its next launch.
func (d *Device) releaseOpsState() {
	for i, b := range d.ws.slots {
		if b != nil {
			b.freed = true
			b.mem.Release()
			d.ws.slots[i] = nil
		}
	}
	d.ws.bytes.Store(0)
	d.labels.mu.Lock()
	if b := d.labels.status; b != nil {
		b.freed = true
		b.mem.Release()
		d.labels.status = nil
	}
	d.labels.mu.Unlock()
	d.prof.drop()
}

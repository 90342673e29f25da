// Package cpu is alexcl's pure-Go device: every op of device.Device, run
// synchronously on the host and parallelised over runtime.GOMAXPROCS cores.
//
// Convolutions are im2col followed by a blocked, packed float32 GEMM
// (gemm.go); the other ops are parallel loops over batch, channel or rows.
// Every op is judged against the readable reference in device/ref, and every
// op is deterministic: work is split so that each output element, and each
// reduction, is computed by exactly one goroutine in a fixed order, so the
// bits do not depend on scheduling (nor on the number of workers).
package cpu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/alexcl/alexcl/device"
)

// Device is the CPU implementation of device.Device. Alloc, Free, Close and
// MemStats may be called from several goroutines; the ops themselves run to
// completion before they return, each using up to Info().ComputeUnits
// goroutines.
type Device struct {
	workers int
	info    device.Info

	mu     sync.Mutex
	live   map[*buffer]struct{}
	stats  device.MemStats
	closed bool
}

var _ device.Device = (*Device)(nil)

// buffer is a block of host memory. It is backed by a []float32 so that the
// float32 and int32 views the ops take are 4-byte aligned.
type buffer struct {
	dev   *Device
	size  int       // bytes, as allocated
	f     []float32 // ceil(size/4) elements; nil once freed
	freed atomic.Bool
}

// Size is the size in bytes the buffer was allocated with.
func (b *buffer) Size() int { return b.size }

// bytes views the buffer as its size bytes.
func (b *buffer) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&b.f[0])), len(b.f)*4)[:b.size]
}

// New returns a CPU device using runtime.GOMAXPROCS(0) workers.
func New() *Device {
	w := runtime.GOMAXPROCS(0)
	d := &Device{workers: w, live: map[*buffer]struct{}{}}
	d.info = hostInfo(w)
	return d
}

// hostInfo describes the host from /proc where that is cheap to read.
func hostInfo(workers int) device.Info {
	info := device.Info{
		ID: "cpu", Name: "Go CPU", Platform: "Go", Type: "CPU",
		ComputeUnits: workers, FP64: true,
		Driver: runtime.Version(),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case k == "model name" && info.Name == "Go CPU" && v != "":
				info.Name = v
			case k == "vendor_id" && info.Vendor == "":
				info.Vendor = v
			case k == "cpu MHz" && info.ClockMHz == 0:
				if mhz, err := strconv.ParseFloat(v, 64); err == nil {
					info.ClockMHz = int(mhz)
				}
			}
			if info.Name != "Go CPU" && info.Vendor != "" && info.ClockMHz != 0 {
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				fields := strings.Fields(rest)
				if len(fields) >= 1 {
					if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
						info.GlobalMem = kb * 1024
					}
				}
				break
			}
		}
		f.Close()
	}
	info.MaxAlloc = info.GlobalMem
	return info
}

// Info describes the device.
func (d *Device) Info() device.Info { return d.info }

// Close frees every live buffer. Using the device or its buffers afterwards
// is an error.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("cpu: device already closed")
	}
	for b := range d.live {
		b.freed.Store(true)
		b.f = nil
	}
	d.live = nil
	d.stats.InUse, d.stats.Buffers = 0, 0
	d.closed = true
	return nil
}

// maxAlloc caps a single allocation: make() of more than the host has would
// kill the process instead of returning an error.
func (d *Device) maxAlloc() int64 {
	if d.info.GlobalMem > 0 {
		return d.info.GlobalMem
	}
	return 1 << 40
}

// Alloc returns a buffer of size bytes (size > 0), zero-filled.
func (d *Device) Alloc(size int) (device.Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("cpu: alloc %d bytes: size must be positive", size)
	}
	if int64(size) > d.maxAlloc() {
		return nil, fmt.Errorf("cpu: alloc %d bytes: more than the host's %d bytes of memory", size, d.maxAlloc())
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, errors.New("cpu: alloc on a closed device")
	}
	b := &buffer{dev: d, size: size, f: make([]float32, (size+3)/4)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("cpu: alloc on a closed device")
	}
	d.live[b] = struct{}{}
	d.stats.InUse += int64(size)
	d.stats.Buffers++
	d.stats.Peak = max(d.stats.Peak, d.stats.InUse)
	return b, nil
}

// Free releases b.
func (d *Device) Free(b device.Buffer) error {
	buf, err := d.own("free", "buffer", b)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.live[buf]; !ok || !buf.freed.CompareAndSwap(false, true) {
		return fmt.Errorf("free: %w", device.ErrFreed)
	}
	delete(d.live, buf)
	buf.f = nil
	d.stats.InUse -= int64(buf.size)
	d.stats.Buffers--
	return nil
}

// MemStats reports allocation accounting.
func (d *Device) MemStats() device.MemStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Sync returns nil: every op has finished when it returns.
func (d *Device) Sync() error { return nil }

// own checks that b is a live buffer of d.
func (d *Device) own(op, name string, b device.Buffer) (*buffer, error) {
	if b == nil {
		return nil, fmt.Errorf("%s: %s is nil", op, name)
	}
	buf, ok := b.(*buffer)
	if !ok || buf == nil || buf.dev != d {
		return nil, fmt.Errorf("%s: %s belongs to another device", op, name)
	}
	if buf.freed.Load() {
		return nil, fmt.Errorf("%s: %s: %w", op, name, device.ErrFreed)
	}
	return buf, nil
}

// floats checks b (live, ours, at least elems float32) and returns its
// first elems elements.
func (d *Device) floats(op, name string, b device.Buffer, elems int) ([]float32, error) {
	buf, err := d.own(op, name, b)
	if err != nil {
		return nil, err
	}
	if err := device.CheckBuf(op, name, b, elems); err != nil {
		return nil, err
	}
	return buf.f[:elems], nil
}

// ints is floats for int32 buffers.
func (d *Device) ints(op, name string, b device.Buffer, elems int) ([]int32, error) {
	f, err := d.floats(op, name, b, elems)
	if err != nil || len(f) == 0 {
		return nil, err
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&f[0])), len(f)), nil
}

// byteRange checks that [off, off+n) lies inside b.
func byteRange(op, name string, b *buffer, off, n int) error {
	if off < 0 || n < 0 || off > b.size || n > b.size-off {
		return fmt.Errorf("%s: %s: bytes [%d, %d) outside its %d bytes", op, name, off, off+n, b.size)
	}
	return nil
}

// Write copies src into dst at byte offset off.
func (d *Device) Write(dst device.Buffer, off int, src []byte) error {
	b, err := d.own("write", "dst", dst)
	if err != nil {
		return err
	}
	if err := byteRange("write", "dst", b, off, len(src)); err != nil {
		return err
	}
	copy(b.bytes()[off:], src)
	return nil
}

// Read copies len(dst) bytes from src at byte offset off into dst.
func (d *Device) Read(src device.Buffer, off int, dst []byte) error {
	b, err := d.own("read", "src", src)
	if err != nil {
		return err
	}
	if err := byteRange("read", "src", b, off, len(dst)); err != nil {
		return err
	}
	copy(dst, b.bytes()[off:])
	return nil
}

// Copy copies n bytes from src at srcOff to dst at dstOff; the ranges may
// overlap.
func (d *Device) Copy(dst device.Buffer, dstOff int, src device.Buffer, srcOff int, n int) error {
	db, err := d.own("copy", "dst", dst)
	if err != nil {
		return err
	}
	sb, err := d.own("copy", "src", src)
	if err != nil {
		return err
	}
	if err := byteRange("copy", "src", sb, srcOff, n); err != nil {
		return err
	}
	if err := byteRange("copy", "dst", db, dstOff, n); err != nil {
		return err
	}
	copy(db.bytes()[dstOff:dstOff+n], sb.bytes()[srcOff:srcOff+n])
	return nil
}

// Fill sets every float32 element of b to v.
func (d *Device) Fill(b device.Buffer, v float32) error {
	buf, err := d.own("fill", "buffer", b)
	if err != nil {
		return err
	}
	f := buf.f[:buf.size/4]
	d.parallelFor(len(f), 1<<15, func(lo, hi int) {
		s := f[lo:hi]
		for i := range s {
			s[i] = v
		}
	})
	return nil
}

// parallelFor splits [0, n) into contiguous chunks of at least grain
// elements and runs fn on each, on up to d.workers goroutines, returning
// when all are done. fn must compute each index's result independently of
// the chunk bounds it is handed; then the result does not depend on the
// split.
func (d *Device) parallelFor(n, grain int, fn func(lo, hi int)) {
	parallelFor(d.workers, n, grain, fn)
}

func parallelFor(workers, n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks := min(workers, (n+grain-1)/max(grain, 1))
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for c := 0; c < chunks; c++ {
		lo, hi := n*c/chunks, n*(c+1)/chunks
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// product returns the product of dims for op's error messages, failing if a
// dimension is not positive or the product would not fit a buffer.
func product(op string, dims ...int) (int, error) {
	p := 1
	for _, v := range dims {
		if v <= 0 {
			return 0, fmt.Errorf("%s: sizes %v must be positive", op, dims)
		}
		if p > (1<<40)/v {
			return 0, fmt.Errorf("%s: sizes %v too large", op, dims)
		}
		p *= v
	}
	return p, nil
}

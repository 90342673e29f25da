// Package cpu is alexcl's CPU device: every op of device.Device, run
// synchronously on the host and parallelised over runtime.GOMAXPROCS cores.
//
// Convolutions are im2col (or Winograd) followed by float32 GEMMs over
// chunks of samples (conv.go, winograd.go). The GEMMs run on alexcl's own
// AVX-512 or AVX2 kernels (package sgemm) where the CPU has them, else on
// a system BLAS (OpenBLAS) loaded at run time without cgo, else on gonum's
// pure-Go BLAS; ALEXCL_GEMM picks one (gemm.go). The other ops are parallel
// loops over batch, channel or rows.
//
// Every op is judged against the readable reference in device/ref, and every
// op is deterministic: work is split into tasks by the shape alone, each
// output element and each reduction is computed by exactly one task in a
// fixed order, so the bits do not depend on scheduling, nor on the number of
// workers (they may differ between the BLAS and the pure-Go path).
//
// Scratch memory (im2col columns, partial sums) comes from arenas the device
// keeps between calls, so a training step allocates no buffers once the
// arenas have grown to the largest layer.
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
	"github.com/alexcl/alexcl/device/cpu/blas"
	"github.com/alexcl/alexcl/device/cpu/sgemm"
)

// Device is the CPU implementation of device.Device. Alloc, Free, Close and
// MemStats may be called from several goroutines; the ops themselves run to
// completion before they return, each using up to Info().ComputeUnits
// goroutines.
type Device struct {
	workers int
	info    device.Info
	path    gemmPath      // which GEMM runs (gemm.go)
	kern    *sgemm.Kernel // the kernel of gemmAsm
	lib     *blas.Lib     // the BLAS library of gemmBLAS

	noWinograd bool // ALEXCL_WINOGRAD=off: every convolution uses im2col

	arenaMu sync.Mutex
	arenas  []*arena // idle arenas, reused by the next op

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

// New returns a CPU device using runtime.GOMAXPROCS(0) workers and the
// GEMM ALEXCL_GEMM asks for (see gemmFromEnv; by default the fastest one
// this machine has). An ALEXCL_GEMM it cannot honour falls back to that
// default; Open reports it instead.
func New() *Device {
	path, kern, lib, _ := gemmFromEnv()
	return newDevice(runtime.GOMAXPROCS(0), path, kern, lib)
}

// switchNames are the variables that turn a fast path off (envOff).
var switchNames = []string{"ALEXCL_AVX512", "ALEXCL_WINOGRAD"}

// envOff reports whether variable name turns its path off: off, 0, false
// or no (any case); anything else leaves it on, and Open reports a value
// that is neither on nor off (parseSwitch).
func envOff(name string) bool {
	off, _ := parseSwitch(name)
	return off
}

// parseSwitch reads variable name as a switch: off, 0, false, no; or
// unset, on, 1, true, yes, auto; else an error naming it.
func parseSwitch(name string) (off bool, err error) {
	off, ok := device.Switch(os.Getenv(name))
	if !ok {
		return false, fmt.Errorf("cpu: %s=%q: want off or on", name, os.Getenv(name))
	}
	return off, nil
}

// Open is New, with an error when ALEXCL_GEMM has a value this machine
// cannot honour (unknown, a kernel the CPU lacks, no BLAS library), or
// ALEXCL_AVX512 or ALEXCL_WINOGRAD is neither on nor off.
func Open() (*Device, error) {
	for _, name := range switchNames {
		if _, err := parseSwitch(name); err != nil {
			return nil, err
		}
	}
	path, kern, lib, err := gemmFromEnv()
	if err != nil {
		return nil, err
	}
	return newDevice(runtime.GOMAXPROCS(0), path, kern, lib), nil
}

// NewGo returns a CPU device that uses gonum's pure-Go GEMM whatever the
// machine has.
func NewGo() *Device { return newDevice(runtime.GOMAXPROCS(0), gemmGonum, nil, nil) }

// newDevice returns a device with the given workers and GEMM path (kern is
// the kernel of gemmAsm, lib the library of gemmBLAS). The library is set
// to one thread: the device runs one GEMM per worker itself.
func newDevice(workers int, path gemmPath, kern *sgemm.Kernel, lib *blas.Lib) *Device {
	if (path == gemmBLAS && lib == nil) || (path == gemmAsm && (kern == nil || !kern.Available())) {
		path = gemmGonum
	}
	d := &Device{workers: workers, path: path, live: map[*buffer]struct{}{}, noWinograd: winogradOff}
	if path == gemmAsm {
		d.kern = kern
	}
	if path == gemmBLAS {
		d.lib = lib
		lib.SetThreads(1)
	}
	d.info = hostInfo(workers)
	d.info.Driver = runtime.Version() + "; gemm " + d.BLAS()
	return d
}

// BLAS names the GEMM backend in use: "alexcl avx512 (Go assembly)",
// "gonum (pure Go)" or the library and, for OpenBLAS, its version and
// kernel core.
func (d *Device) BLAS() string {
	switch d.path {
	case gemmAsm:
		return "alexcl " + d.kern.Name + " (Go assembly)"
	case gemmBLAS:
		return d.lib.Describe()
	}
	return "gonum (pure Go)"
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
	b := &buffer{dev: d, size: size, f: alignedFloats((size + 3) / 4)}
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

// arena is the scratch memory of one op: a float32 region handed out by
// take, and one worker state per goroutine. An op acquires an arena, takes
// what it needs and releases it; the region keeps its size, so the next op
// of the same shape allocates nothing.
type arena struct {
	buf     []float32
	used    int
	need    int // floats the op asked for, to size buf on release
	workers []*worker
}

// WorkspaceBytes is the scratch the device holds between ops (im2col
// columns, Winograd tiles, GEMM packing), which MemStats does not count:
// the idle arenas, which is all of them between ops.
func (d *Device) WorkspaceBytes() int64 {
	d.arenaMu.Lock()
	defer d.arenaMu.Unlock()
	var n int64
	for _, a := range d.arenas {
		n += int64(len(a.buf)) * 4
		for _, w := range a.workers {
			n += w.ws.Bytes() + int64(len(w.tr))*4
		}
	}
	return n
}

// acquire returns an idle arena (or a new one) with a worker state for each
// of the device's workers.
func (d *Device) acquire() *arena {
	d.arenaMu.Lock()
	var a *arena
	if n := len(d.arenas); n > 0 {
		a, d.arenas = d.arenas[n-1], d.arenas[:n-1]
	}
	d.arenaMu.Unlock()
	if a == nil {
		a = &arena{}
	}
	for len(a.workers) < d.workers {
		a.workers = append(a.workers, &worker{idx: len(a.workers)})
	}
	a.used, a.need = 0, 0
	return a
}

// release returns a to the idle list, growing its region to what the op
// needed when that did not fit.
func (d *Device) release(a *arena) {
	if a.need > len(a.buf) {
		a.buf = alignedFloats(a.need)
	}
	d.arenaMu.Lock()
	d.arenas = append(d.arenas, a)
	d.arenaMu.Unlock()
}

// take returns n floats of scratch (contents undefined), 64-byte aligned.
func (a *arena) take(n int) []float32 {
	n16 := round16(n)
	a.need += n16
	if a.used+n16 <= len(a.buf) {
		s := a.buf[a.used : a.used+n : a.used+n]
		a.used += n16
		return s
	}
	return alignedFloats(n) // first use of this size: release grows buf
}

// round16 rounds n up to a multiple of 16 floats (64 bytes).
func round16(n int) int { return (n + 15) &^ 15 }

// alignedFloats returns n zeroed floats starting on a 64-byte boundary.
//
// Alignment is part of determinism: gonum's SIMD kernels (the pure-Go GEMM
// path) peel elements until an operand is 16-byte aligned, so their
// summation order, and the bits of the result, depend on the address mod
// 16. Buffers and scratch regions (each a multiple of 64 bytes long) all
// start 64-byte aligned, so the address of every operand mod 64 is a
// function of the shape alone, whichever worker or allocation it lands in.
func alignedFloats(n int) []float32 {
	s := make([]float32, n+15)
	off := int((64 - uintptr(unsafe.Pointer(&s[0]))%64) % 64 / 4)
	return s[off : off+n : off+n]
}

// worker returns the state of goroutine i.
func (a *arena) worker(i int) *worker { return a.workers[i] }

// run calls fn(w, t) for every task t in [0, tasks), on up to d.workers
// goroutines, each with its own worker state w, handing out tasks in order
// as goroutines become free. fn must compute each task's result
// independently of which goroutine runs it.
func (d *Device) run(a *arena, tasks int, fn func(w *worker, t int)) {
	g := min(d.workers, tasks)
	if g <= 1 {
		for t := 0; t < tasks; t++ {
			fn(a.workers[0], t)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				fn(w, t)
			}
		}(a.workers[i])
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

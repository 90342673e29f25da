package opencl

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/alexcl/alexcl/clkernels"
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
)

// Options configure Open.
type Options struct {
	// Version is alexcl's version; it is part of the kernel cache key, so a
	// new release never loads an old release's binaries.
	Version string
	// Logf receives debug lines (kernel cache hits and misses, build
	// times). nil is silent.
	Logf func(format string, args ...any)
	// CacheDir overrides where compiled kernels are cached (default:
	// $ALEXCL_KERNEL_CACHE_DIR, else os.UserCacheDir()/alexcl/kernels).
	CacheDir string
	// NoCache disables the kernel cache (as ALEXCL_KERNEL_CACHE=off does).
	NoCache bool
	// Defines are passed to the OpenCL compiler as -D NAME=value (an empty
	// value gives -D NAME); the tunables each .cl file reads are listed in
	// its header comment.
	Defines map[string]string
	// BuildOptions are more compiler options, e.g. "-cl-mad-enable",
	// appended after the defines.
	BuildOptions []string
	// Tune lets Open choose the GEMM and convolution tunables of this
	// device by timing a few candidates on first use (about 15 s on a GPU
	// plus the candidates' builds, 37 s in all on an H200; 20 s under
	// POCL), stored beside the kernel binaries and read on later
	// Opens (tune.go). False keeps the vendor defaults. ALEXCL_TUNE=off,
	// on or force (re-tune) overrides it; Defines that set a tuned name
	// (GEMM_KIND, the GEMM_ and CONV_ tiles and K-step runs, GEMMV_VW, _MR,
	// _LM, CONV_KIND: tune.go's tunedNames), here or in ALEXCL_CL_DEFINES,
	// turn tuning off; those that set a convolution path (CONV_WINO,
	// CONV_WINO43, CONV_WINO5, CONV_WINO35, CONV_BWDATA) override the
	// tuner's choice of that path and leave the rest tuned (one of a
	// filter size's two Winograd defines turns the other off unless set
	// too), and so do the small GEMM set's (GEMMS_*, gemmset.go), which
	// replace the tuned small set as a whole.
	Tune bool

	// extraSources are appended to clkernels.Sources(); tests use them to
	// build kernels of their own.
	extraSources []string
	// editSource, when set (tests), changes the text of each clkernels
	// file (by name) before it is built.
	editSource func(name, text string) string
}

// logf logs a debug line when a logger is set.
func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Device is one OpenCL device opened for alexcl. Its methods may be called
// from several goroutines; work is queued in call order.
type Device struct {
	info    device.Info
	opts    Options
	dev     *cl.Device
	ctx     *cl.Context
	queue   *cl.CommandQueue
	prog    *cl.Program
	kernels map[string]*cl.Kernel // every kernel of prog, and the small set's; read-only after Open

	// small is the small GEMM tile set, built from smallProg, or nil
	// (gemmset.go).
	small     *gemmSet
	smallProg *cl.Program
	maxAlloc  int64

	// userDefines are the defines of Options and ALEXCL_CL_DEFINES, before
	// tuning adds its own. noWino, when set, says why wino.cl is not in
	// the program (its build failed, buildProgram): no Winograd then.
	userDefines map[string]string
	noWino      error

	// useMu is held for reading while a call uses buffers or the queue, and
	// for writing by Free and Close, so a buffer is never released while a
	// call is queueing work on it.
	useMu  sync.RWMutex
	closed bool

	// launchMu serialises launches: a cl.Kernel's arguments are state.
	launchMu sync.Mutex

	statsMu sync.Mutex
	live    map[*buffer]struct{}
	stats   device.MemStats

	// Owned by ops.go and profile.go: the conv workspace, the label
	// status flag of SoftmaxCrossEntropy, and kernel profiling.
	ws     workspace
	labels labelStatus
	prof   profiler

	// shapes is the convolutions' path per layer shape (shapes.go).
	shapes shapePaths

	// up is WriteAsync's transfer queue (upload.go).
	up uploads

	// legacy are the GPU-path changes of this version turned back off
	// (ALEXCL_CL_LEGACY), to measure what each gains.
	legacy legacy

	// flushEvery: launch flushes the queue after every flushEvery-th
	// kernel (0: never), and after the first kernel once the host has
	// waited for the queue (idle, set by Read and Sync). launches counts
	// them, under launchMu.
	flushEvery, launches int
	idle                 atomic.Bool
}

// legacy says which GPU-path changes ALEXCL_CL_LEGACY (a comma-separated
// list, or "all") turns back off: "filter" gives every image its own run
// of the filter gradient (filterRuns), "flush" stops flushing the queue
// every 16 kernels, "im2col" goes back to a work item per row in im2col
// and col2im (conv_im2col, conv_col2im) on GPUs, "splitk" stops cutting K
// into runs (Device.Gemm, Winograd's filter gradient; gemm.go), "shapes"
// takes the convolutions' paths per filter size (the tuner's choice, the
// defines) instead of timing them per layer shape (shapes.go), "small"
// builds no small GEMM tile set, so that every product takes the main
// tiles (gemmset.go).
type legacy struct {
	filterPerImage, noFlush, rowIm2col, noSplitK, perSize, oneGemmSet bool
}

// parseLegacy reads ALEXCL_CL_LEGACY's value.
func parseLegacy(v string) (legacy, error) {
	var l legacy
	for _, item := range strings.Split(strings.ToLower(v), ",") {
		switch strings.TrimSpace(item) {
		case "":
		case "filter":
			l.filterPerImage = true
		case "flush":
			l.noFlush = true
		case "im2col":
			l.rowIm2col = true
		case "splitk":
			l.noSplitK = true
		case "shapes":
			l.perSize = true
		case "small":
			l.oneGemmSet = true
		case "all":
			l = legacy{true, true, true, true, true, true}
		default:
			return l, fmt.Errorf("ALEXCL_CL_LEGACY=%q: %q is not one of filter, flush, im2col, splitk, shapes, small, all", v, item)
		}
	}
	return l, nil
}

// parseDefines reads ALEXCL_CL_DEFINES: NAME=VALUE (or NAME) items,
// comma-separated, added to Options.Defines by Open (over the caller's).
// It pins kernel tunables without code, to compare kernel families on one
// machine (GEMM_KIND=blocked,GEMM_KU=16) or to step around a driver's bug;
// setting a tuned name turns tuning off, as Options.Defines does, except
// a convolution path (pathNames), which overrides that choice only. A name
// must be one the kernels or the host read (knownDefines), GEMM_KIND and
// CONV_KIND one of the families, and values are checked as the build
// options are; whether a value suits the kernel is the compiler's to say
// (the .cl files #error on impossible tiles and K-step runs). A blocked
// kind whose register blocks are not multiples of 4 runs the tiled
// kernel, as documented in gemm.go and ops.go.
func parseDefines(v string) (map[string]string, error) {
	defs := map[string]string{}
	bad := func(format string, args ...any) (map[string]string, error) {
		return nil, fmt.Errorf("ALEXCL_CL_DEFINES=%q: "+format+" (want NAME=VALUE,NAME=VALUE; the names are in the clkernels/*.cl headers)", append([]any{v}, args...)...)
	}
	known := knownDefines()
	for _, item := range strings.Split(v, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		name, value, _ := strings.Cut(strings.TrimSpace(item), "=")
		if _, dup := defs[name]; dup {
			return bad("%s is set twice", name)
		}
		if !slices.Contains(known, name) {
			return bad("%q is not a tunable of alexcl's kernels", name)
		}
		defs[name] = value
	}
	if k, ok := defs["GEMM_KIND"]; ok && k != gemmTiled && k != gemmBlocked && k != gemmVector {
		return bad("GEMM_KIND=%q: want %s, %s or %s", k, gemmTiled, gemmBlocked, gemmVector)
	}
	if k, ok := defs["CONV_KIND"]; ok && k != gemmTiled && k != gemmBlocked {
		return bad("CONV_KIND=%q: want %s or %s", k, gemmTiled, gemmBlocked)
	}
	if err := checkHostDefines(defs); err != nil {
		return bad("%v", err)
	}
	if _, err := buildOptions(Options{Defines: defs}); err != nil {
		return bad("%v", err)
	}
	if len(defs) == 0 {
		return nil, nil
	}
	return defs, nil
}

// checkHostDefines checks the values of the host-only defines in defs
// that buildOptions does not see: the convolution paths, and positive
// integers for the sizes.
func checkHostDefines(defs map[string]string) error {
	if v, ok := defs["CONV_BWDATA"]; ok && v != "col" && v != "implicit" {
		return fmt.Errorf("CONV_BWDATA=%q: want col or implicit", v)
	}
	for _, n := range []string{"GEMMV_LM", "CONV_WINO_MINCH", "GEMM_SPLIT_GROUPS", "CONV_FILTER_GROUPS"} {
		if v, ok := defs[n]; ok {
			if i, err := strconv.Atoi(v); err != nil || i < 1 {
				return fmt.Errorf("%s=%q: want a positive integer", n, v)
			}
		}
	}
	if _, err := smallDefines(defs); err != nil {
		return err
	}
	return checkWinoDefines(defs)
}

// hostOnlyDefines are the tunables only the Go side reads (kernel family,
// convolution paths, launch sizes); buildOptions leaves them out of the
// compiler's options, so that they change no program binary.
var hostOnlyDefines = slices.Concat([]string{"GEMM_KIND", "CONV_KIND", "CONV_BWDATA", "CONV_WINO", "CONV_WINO43", "CONV_WINO5", "CONV_WINO35",
	"CONV_WINO_MINCH", "GEMMV_LM", "GEMM_SPLIT_GROUPS", "CONV_FILTER_GROUPS"}, smallNames)

// knownDefines lists the -D names alexcl's kernels read (#ifndef, #ifdef,
// defined()) and those only the host reads (GEMM_KIND, CONV_KIND,
// CONV_BWDATA, the Winograd defines, CONV_WINO_MINCH, GEMMV_LM,
// GEMM_SPLIT_GROUPS, CONV_FILTER_GROUPS, the small GEMM set's GEMMS_*), less
// GEMM_BLOCKED and CONV_BLOCKED, which the host derives from the kinds
// (buildOptions).
func knownDefines() []string {
	names := slices.Clone(hostOnlyDefines)
	re := regexp.MustCompile(`#\s*ifn?def\s+([A-Z_][A-Z0-9_]*)|defined\(([A-Z_][A-Z0-9_]*)\)`)
	for _, src := range clkernels.Sources() {
		for _, m := range re.FindAllStringSubmatch(src, -1) {
			names = append(names, m[1]+m[2])
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return strings.HasSuffix(n, "_BLOCKED") })
	slices.Sort(names)
	return slices.Compact(names)
}

// buffer is a device.Buffer of this package.
type buffer struct {
	mem   *cl.MemObject
	size  int
	dev   *Device
	freed bool // guarded by dev.useMu
}

// Size is the size in bytes the buffer was allocated with.
func (b *buffer) Size() int { return b.size }

// clDevice is one entry of the global device numbering.
type clDevice struct {
	platform *cl.Platform
	dev      *cl.Device
}

// enumerate lists every device of every platform, in order. A platform
// that fails to list its devices is skipped; its error is returned only
// when no device was found at all.
func enumerate() ([]clDevice, error) {
	platforms, err := cl.GetPlatforms()
	if errors.Is(err, cl.PlatformNotFoundKHR) {
		return nil, fmt.Errorf("the OpenCL loader found no driver (none registered in /etc/OpenCL/vendors or $OCL_ICD_VENDORS): %w", err)
	}
	if err != nil {
		return nil, err
	}
	var out []clDevice
	var errs []error
	for _, p := range platforms {
		devs, err := p.GetDevices(cl.DeviceTypeAll)
		if errors.Is(err, cl.DeviceNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("platform %q: %w", p.Name(), err))
			continue
		}
		for _, d := range devs {
			out = append(out, clDevice{p, d})
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// infoOf describes device i of the numbering.
func infoOf(i int, d clDevice) device.Info {
	return device.Info{
		ID:           fmt.Sprintf("cl%d", i),
		Name:         d.dev.Name(),
		Vendor:       d.dev.Vendor(),
		Platform:     d.platform.Name(),
		Type:         d.dev.Type().String(),
		ComputeUnits: d.dev.MaxComputeUnits(),
		ClockMHz:     d.dev.MaxClockFrequency(),
		GlobalMem:    d.dev.GlobalMemSize(),
		MaxAlloc:     d.dev.MaxMemAllocSize(),
		LocalMem:     d.dev.LocalMemSize(),
		CVersion:     d.dev.OpenCLCVersion(),
		Driver:       d.dev.DriverVersion(),
		FP16:         d.dev.FP16(),
		FP64:         d.dev.FP64(),
	}
}

// List describes every OpenCL device over all platforms, in order, with
// IDs "cl0", "cl1", .... Without an OpenCL runtime (or with a loader but
// no installed driver) it returns an error saying so.
func List() ([]device.Info, error) {
	devs, err := enumerate()
	if err != nil {
		return nil, err
	}
	out := make([]device.Info, len(devs))
	for i, d := range devs {
		out[i] = infoOf(i, d)
	}
	return out, nil
}

// Open opens device cl<index> of List: it creates a context and a
// profiling in-order queue, and builds (or loads from the kernel cache)
// the program of clkernels.Sources.
func Open(index int, opts Options) (*Device, error) {
	devs, err := enumerate()
	if err != nil {
		return nil, fmt.Errorf("open cl%d: %w", index, err)
	}
	if index < 0 || index >= len(devs) {
		return nil, fmt.Errorf("open cl%d: no such OpenCL device; there are %d (%s)", index, len(devs), idRange(len(devs)))
	}
	cd := devs[index]
	d := &Device{
		info:     infoOf(index, cd),
		opts:     opts,
		dev:      cd.dev,
		maxAlloc: cd.dev.MaxMemAllocSize(),
		live:     map[*buffer]struct{}{},
	}
	fail := func(err error) (*Device, error) {
		d.release()
		return nil, fmt.Errorf("open %s (%s): %w", d.info.ID, d.info.Name, err)
	}
	if d.ctx, err = cl.CreateContext([]*cl.Device{cd.dev}); err != nil {
		return fail(err)
	}
	if d.queue, err = d.ctx.CreateCommandQueue(cd.dev, cl.CommandQueueProfilingEnable); err != nil {
		return fail(err)
	}
	if d.legacy, err = parseLegacy(os.Getenv("ALEXCL_CL_LEGACY")); err != nil {
		return fail(err)
	}
	if env, err := parseDefines(os.Getenv("ALEXCL_CL_DEFINES")); err != nil {
		return fail(err)
	} else if len(env) > 0 {
		d.opts.Defines = maps.Clone(d.opts.Defines)
		if d.opts.Defines == nil {
			d.opts.Defines = map[string]string{}
		}
		maps.Copy(d.opts.Defines, env)
	}
	if env := strings.Fields(os.Getenv("ALEXCL_CL_OPTIONS")); len(env) > 0 {
		d.opts.BuildOptions = append(slices.Clip(d.opts.BuildOptions), env...)
	}
	for _, o := range d.opts.BuildOptions {
		switch o {
		case "-cl-fast-relaxed-math", "-cl-finite-math-only", "-cl-unsafe-math-optimizations":
			d.opts.logf("warning: %s lets the compiler assume no NaN or Inf (or reorder sums): a diverged run may go unseen, "+
				"NaN logits may score, and results may differ from the reference's", o)
		}
	}
	// Switches with a value alexcl does not read are errors, as the CPU
	// device's are, rather than a guess.
	if v := os.Getenv("ALEXCL_KERNEL_CACHE"); !isSwitch(v) {
		return fail(fmt.Errorf("ALEXCL_KERNEL_CACHE=%q: want off or on", v))
	}
	if v := os.Getenv("ALEXCL_TUNE"); !isSwitch(v) && !strings.EqualFold(strings.TrimSpace(v), "force") {
		return fail(fmt.Errorf("ALEXCL_TUNE=%q: want off, on or force", v))
	}
	if err := checkHostDefines(d.opts.Defines); err != nil {
		return fail(err)
	}
	if err := checkSmallFits(d.opts.Defines, limitsOf(d.dev)); err != nil {
		return fail(err)
	}
	if err := checkUserTiles(d.opts.Defines, limitsOf(d.dev)); err != nil {
		return fail(err)
	}
	d.userDefines = maps.Clone(d.opts.Defines)
	if !d.legacy.noFlush {
		d.flushEvery = 16
	}
	mode := d.applyTuning(cd.platform) // tune.go; logs, never fails
	if err := d.buildProgram(cd.platform); err != nil {
		return fail(err)
	}
	d.buildSmall(cd.platform) // gemmset.go; logs, never fails
	if mode != tuneOff {
		d.setupShapePaths(mode, d.tuneKey(cd.platform)) // shapes.go
	}
	return d, nil
}

// idRange names the valid ids for n devices.
func idRange(n int) string {
	switch n {
	case 0:
		return "none"
	case 1:
		return "cl0"
	}
	return fmt.Sprintf("cl0..cl%d", n-1)
}

// Info describes the device.
func (d *Device) Info() device.Info { return d.info }

// release frees the OpenCL objects of a device that is closing or failed to open.
func (d *Device) release() {
	d.releaseOpsState()
	for _, k := range d.kernels {
		k.Release()
	}
	d.kernels = nil
	d.prog.Release()
	d.smallProg.Release()
	d.small, d.smallProg = nil, nil
	d.releaseUploads()
	d.queue.Release()
	d.ctx.Release()
}

// Close waits for queued work, then releases every buffer, the program,
// the queue and the context. It reports an error queued work raised.
// Closing twice is a no-op.
func (d *Device) Close() error {
	d.useMu.Lock()
	defer d.useMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.finish()
	d.statsMu.Lock()
	for b := range d.live {
		b.freed = true
		b.mem.Release()
	}
	d.live = map[*buffer]struct{}{}
	d.stats.InUse, d.stats.Buffers = 0, 0
	d.statsMu.Unlock()
	d.release()
	if err != nil {
		return fmt.Errorf("close %s: %w", d.info.ID, err)
	}
	return nil
}

var errClosed = errors.New("device is closed")

// Alloc returns a buffer of size bytes with undefined contents.
func (d *Device) Alloc(size int) (device.Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("alloc %d bytes on %s: size must be positive", size, d.info.ID)
	}
	if int64(size) > d.maxAlloc {
		return nil, fmt.Errorf("alloc %s (%d bytes) on %s (%s): larger than the device's largest single buffer, %s (CL_DEVICE_MAX_MEM_ALLOC_SIZE = %d bytes)",
			device.HumanBytes(int64(size)), size, d.info.ID, d.info.Name, device.HumanBytes(d.maxAlloc), d.maxAlloc)
	}
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	if d.closed {
		return nil, fmt.Errorf("alloc on %s: %w", d.info.ID, errClosed)
	}
	mem, err := d.ctx.CreateEmptyBuffer(cl.MemReadWrite, size)
	if err != nil {
		st := d.MemStats()
		return nil, fmt.Errorf("alloc %s on %s (%s in use in %d buffers, %s on the device): %w",
			device.HumanBytes(int64(size)), d.info.ID, device.HumanBytes(st.InUse), st.Buffers, device.HumanBytes(d.info.GlobalMem), err)
	}
	b := &buffer{mem: mem, size: size, dev: d}
	d.statsMu.Lock()
	d.live[b] = struct{}{}
	d.stats.Buffers++
	d.stats.InUse += int64(size)
	d.stats.Peak = max(d.stats.Peak, d.stats.InUse)
	d.statsMu.Unlock()
	return b, nil
}

// Free releases b. Work already queued on b still completes.
func (d *Device) Free(b device.Buffer) error {
	d.useMu.Lock()
	defer d.useMu.Unlock()
	buf, err := d.resolve("free", "buffer", b)
	if err != nil {
		return err
	}
	if buf == nil {
		return fmt.Errorf("free: buffer is nil")
	}
	buf.freed = true
	buf.mem.Release()
	d.statsMu.Lock()
	delete(d.live, buf)
	d.stats.Buffers--
	d.stats.InUse -= int64(buf.size)
	d.statsMu.Unlock()
	return nil
}

// resolve checks that b is a live buffer of d (nil is returned as nil) and
// returns it. The caller holds useMu.
func (d *Device) resolve(op, name string, b device.Buffer) (*buffer, error) {
	if d.closed {
		return nil, fmt.Errorf("%s on %s: %w", op, d.info.ID, errClosed)
	}
	if b == nil {
		return nil, nil
	}
	buf, ok := b.(*buffer)
	if !ok || buf == nil {
		return nil, fmt.Errorf("%s: %s is a %T, not a buffer of OpenCL device %s", op, name, b, d.info.ID)
	}
	if buf.dev != d {
		return nil, fmt.Errorf("%s: %s belongs to %s, not to %s", op, name, buf.dev.info.ID, d.info.ID)
	}
	if buf.freed {
		return nil, fmt.Errorf("%s: %s: %w", op, name, device.ErrFreed)
	}
	return buf, nil
}

// resolveRange resolves a non-nil buffer and checks that n bytes at off lie in it.
func (d *Device) resolveRange(op, name string, b device.Buffer, off, n int) (*buffer, error) {
	buf, err := d.resolve(op, name, b)
	if err != nil {
		return nil, err
	}
	if buf == nil {
		return nil, fmt.Errorf("%s: %s is nil", op, name)
	}
	if off < 0 || n < 0 || off > buf.size-n {
		return nil, fmt.Errorf("%s: %d bytes at offset %d do not fit %s of %d bytes", op, n, off, name, buf.size)
	}
	return buf, nil
}

// Write copies src into dst at byte offset off; src may be reused on return.
func (d *Device) Write(dst device.Buffer, off int, src []byte) error {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	buf, err := d.resolveRange("write", "dst", dst, off, len(src))
	if err != nil || len(src) == 0 {
		return err
	}
	w := d.takeWaits()
	ev, err := d.queue.EnqueueWriteBuffer(buf.mem, true, off, len(src), unsafe.Pointer(&src[0]), w)
	d.putWaits(w, err)
	if err != nil {
		return fmt.Errorf("write %d bytes to %s: %w", len(src), d.info.ID, err)
	}
	ev.Release()
	return nil
}

// Read copies len(dst) bytes of src at byte offset off into dst, after all
// earlier work, and reports an error that work raised.
func (d *Device) Read(src device.Buffer, off int, dst []byte) error {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	if err := d.read(src, off, dst); err != nil {
		return err
	}
	return d.takeLabelError("read")
}

// read is Read without the label check, which it leaves for the caller's
// next Sync or Read; the caller holds useMu for reading.
func (d *Device) read(src device.Buffer, off int, dst []byte) error {
	buf, err := d.resolveRange("read", "src", src, off, len(dst))
	if err != nil {
		return err
	}
	if len(dst) == 0 {
		if err := d.finish(); err != nil {
			return fmt.Errorf("read from %s: %w", d.info.ID, err)
		}
		return nil
	}
	w := d.takeWaitsFor(buf)
	ev, err := d.queue.EnqueueReadBuffer(buf.mem, true, off, len(dst), unsafe.Pointer(&dst[0]), w)
	d.putWaits(w, err)
	d.idle.Store(true)
	if err != nil {
		return fmt.Errorf("read %d bytes from %s: %w", len(dst), d.info.ID, err)
	}
	ev.Release()
	return nil
}

// Copy queues a copy of n bytes from src at srcOff to dst at dstOff.
func (d *Device) Copy(dst device.Buffer, dstOff int, src device.Buffer, srcOff int, n int) error {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	db, err := d.resolveRange("copy", "dst", dst, dstOff, n)
	if err != nil {
		return err
	}
	sb, err := d.resolveRange("copy", "src", src, srcOff, n)
	if err != nil || n == 0 {
		return err
	}
	if db == sb && srcOff < dstOff+n && dstOff < srcOff+n {
		return fmt.Errorf("copy: %d bytes from offset %d to %d overlap in one buffer", n, srcOff, dstOff)
	}
	w := d.takeWaits()
	ev, err := d.queue.EnqueueCopyBuffer(sb.mem, db.mem, srcOff, dstOff, n, w)
	d.putWaits(w, err)
	if err != nil {
		return fmt.Errorf("copy %d bytes on %s: %w", n, d.info.ID, err)
	}
	ev.Release()
	return nil
}

// Fill queues setting every float32 element of b to v (the whole 4-byte
// elements of b; a trailing partial element is left as it is).
func (d *Device) Fill(b device.Buffer, v float32) error {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	buf, err := d.resolveRange("fill", "buffer", b, 0, 0)
	if err != nil {
		return err
	}
	n := buf.size / 4 * 4
	if n == 0 {
		return nil
	}
	w := d.takeWaits()
	ev, err := d.queue.EnqueueFillBuffer(buf.mem, unsafe.Pointer(&v), 4, 0, n, w)
	d.putWaits(w, err)
	if err != nil {
		return fmt.Errorf("fill %d bytes on %s: %w", n, d.info.ID, err)
	}
	ev.Release()
	return nil
}

// Sync waits for all queued work (clFinish) and reports an error it raised.
func (d *Device) Sync() error {
	d.useMu.RLock()
	defer d.useMu.RUnlock()
	if err := d.drainLocked(); err != nil {
		return err
	}
	return d.takeLabelError("sync")
}

// drainLocked waits for the queue: Sync without the label check, which
// it leaves for the caller's next Sync or Read. The caller holds useMu for
// reading.
func (d *Device) drainLocked() error {
	if d.closed {
		return fmt.Errorf("sync %s: %w", d.info.ID, errClosed)
	}
	if err := d.finish(); err != nil {
		return fmt.Errorf("sync %s: %w", d.info.ID, err)
	}
	return nil
}

// MemStats reports allocation accounting.
func (d *Device) MemStats() device.MemStats {
	d.statsMu.Lock()
	defer d.statsMu.Unlock()
	return d.stats
}

// kernelNames lists the program's kernels, sorted, for error messages.
func (d *Device) kernelNames() string {
	names := make([]string, 0, len(d.kernels))
	for n := range d.kernels {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// isSwitch reports whether v is a value device.Switch reads.
func isSwitch(v string) bool {
	_, ok := device.Switch(v)
	return ok
}

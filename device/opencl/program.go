package opencl

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alexcl/alexcl/clkernels"
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
)

// cacheMagic starts every kernel cache file; a SHA-256 of the binary that
// follows it guards against truncated or corrupted files, which a driver
// might not reject cleanly.
const cacheMagic = "alexcl-clbin-v1\n"

// buildOptions turns Options into the compiler's option string: the
// defines sorted by name, less the host-only ones (hostOnlyDefines), then
// BuildOptions. GEMM_KIND=blocked also
// defines GEMM_BLOCKED, which builds gemm_blk, and a blocked forward
// convolution (convKind) CONV_BLOCKED, which builds conv2d_forward_blk:
// programs that do not run them leave them out, so that their larger,
// double-buffered local tiles never fail a build.
func buildOptions(o Options) (string, error) {
	names := make([]string, 0, len(o.Defines))
	for n := range o.Defines {
		if !slices.Contains(hostOnlyDefines, n) {
			names = append(names, n)
		}
	}
	for flag, on := range map[string]bool{
		"GEMM_BLOCKED": o.Defines["GEMM_KIND"] == gemmBlocked,
		"CONV_BLOCKED": convKind(o.Defines) == gemmBlocked,
	} {
		if _, set := o.Defines[flag]; on && !set {
			names = append(names, flag)
		}
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		if !isIdent(n) {
			return "", fmt.Errorf("define %q: not a C identifier", n)
		}
		v := o.Defines[n]
		if strings.ContainsAny(v, " \t\r\n\"'\\") {
			return "", fmt.Errorf("define %s=%q: the value must not contain spaces, quotes or backslashes", n, v)
		}
		if v == "" {
			parts = append(parts, "-D "+n)
		} else {
			parts = append(parts, "-D "+n+"="+v)
		}
	}
	parts = append(parts, o.BuildOptions...)
	return strings.Join(parts, " "), nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && !(r >= 'a' && r <= 'z') && !(r >= 'A' && r <= 'Z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// cacheDir returns the kernel cache directory, or "" when caching is off.
func cacheDir(o Options) string {
	if off, _ := device.Switch(os.Getenv("ALEXCL_KERNEL_CACHE")); off { // Open refuses values that are neither
		return ""
	}
	if o.NoCache {
		return ""
	}
	if o.CacheDir != "" {
		return o.CacheDir
	}
	if dir := os.Getenv("ALEXCL_KERNEL_CACHE_DIR"); dir != "" {
		return dir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		o.logf("kernel cache off: %v", err)
		return ""
	}
	return filepath.Join(base, "alexcl", "kernels")
}

// cacheKey hashes everything a compiled binary depends on.
func cacheKey(sources []string, options string, p *cl.Platform, dev *cl.Device, version string) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(cacheMagic)
	field(version)
	field(p.Name())
	field(p.Version())
	field(dev.Name())
	field(dev.Vendor())
	field(dev.Version())
	field(dev.DriverVersion())
	field(options)
	for _, s := range sources {
		field(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// optionalSources are the .cl files of paths a device can do without.
// When the driver's compiler rejects one, Open builds the program without
// it and the path stays off, with the build log in Options.Logf, rather
// than failing: wino.cl's Winograd convolutions are only ever chosen where
// they time faster, and every convolution has its usual path. A path the
// user set in Options.Defines or ALEXCL_CL_DEFINES is still an error.
var optionalSources = []string{"wino.cl"}

// sources returns the program's sources: the .cl files of clkernels
// (common.cl and those in only, or all of them when only is nil), less
// those in skip, each through o.editSource (tests), then, for the whole
// program, o.extraSources.
func (o *Options) sources(only, skip []string) []string {
	var out []string
	for _, f := range clkernels.Files() {
		if only != nil && f.Name != "common.cl" && !slices.Contains(only, f.Name) || slices.Contains(skip, f.Name) {
			continue
		}
		text := f.Text
		if o.editSource != nil {
			text = o.editSource(f.Name, text)
		}
		out = append(out, text)
	}
	if only == nil {
		out = append(out, o.extraSources...)
	}
	return out
}

// buildProgram builds the program of clkernels' sources (plus test
// sources) for d, through the kernel cache, and creates all its kernels.
// When the whole program does not build but builds without
// optionalSources, d runs without them (d.noWino says why), and the
// failure is kept in the cache beside the binaries (<key>.failed, the
// whole program's key: a new driver or release tries again), so that later
// Opens go straight to the program without them.
func (d *Device) buildProgram(platform *cl.Platform) error {
	d.noWino = nil
	full := d.opts.sources(nil, nil)
	failed := ""
	if path, err := d.cachePath(platform, full); err == nil && path != "" {
		failed = strings.TrimSuffix(path, ".clbin") + ".failed"
	}
	var err error
	kept := false
	if log, rerr := os.ReadFile(failed); failed != "" && rerr == nil {
		err, kept = fmt.Errorf("%s (the build failure kept in %s)", log, failed), true
	} else if err = d.buildSources(platform, full); err == nil || !errors.Is(err, cl.BuildProgramFailure) {
		return err
	}
	if errSkip := d.buildSources(platform, d.opts.sources(nil, optionalSources)); errSkip != nil {
		if kept { // something else changed: build the whole program again
			os.Remove(failed)
			return d.buildSources(platform, full)
		}
		return err // the whole program's log: the optional files were not the only fault
	}
	if failed != "" && !kept {
		if werr := writeAtomic(failed, []byte(err.Error())); werr != nil {
			d.opts.logf("kernel cache: the build failure not kept: %v", werr)
		}
	}
	for _, name := range winoAllDefines {
		if v := d.userDefines[name]; v != "" && v != "off" {
			d.dropProgram()
			return fmt.Errorf("%s=%s is set, but wino.cl, whose kernels it needs, does not build on this driver "+
				"(unset %s to run without Winograd): %w", name, v, name, err)
		}
	}
	d.noWino = err
	// A tuned Winograd path (a record from before a driver update) is
	// turned off in the defines too, so that Tunables says what runs.
	defs := maps.Clone(d.opts.Defines)
	for _, name := range winoAllDefines {
		if v, ok := defs[name]; ok && v != "off" {
			defs[name] = "off"
		}
	}
	d.opts.Defines = defs
	d.opts.logf("warning: the Winograd convolutions are off on %s: wino.cl does not build on this driver (everything else did; "+
		"each convolution takes its usual path; please report it with this log): %v", d.info.Name, err)
	return nil
}

// cachePath returns the kernel cache file of a program of sources on d
// ("" when the cache is off).
func (d *Device) cachePath(platform *cl.Platform, sources []string) (string, error) {
	options, err := buildOptions(d.opts)
	if err != nil {
		return "", err
	}
	dir := cacheDir(d.opts)
	if dir == "" {
		return "", nil
	}
	version := cmp.Or(d.opts.Version, "dev")
	return filepath.Join(dir, cacheKey(sources, options, platform, d.dev, version)+".clbin"), nil
}

// buildSources builds d's program of sources, through the kernel cache,
// and creates all its kernels.
func (d *Device) buildSources(platform *cl.Platform, sources []string) error {
	options, err := buildOptions(d.opts)
	if err != nil {
		return err
	}
	path, err := d.cachePath(platform, sources)
	if err != nil {
		return err
	}
	if path != "" {
		if err := d.loadCached(path, options); err == nil {
			d.opts.logf("kernel cache hit %s", path)
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			d.opts.logf("kernel cache entry %s unusable, rebuilding: %v", path, err)
		}
	}

	start := time.Now()
	prog, err := d.ctx.CreateProgramWithSource(sources)
	if err != nil {
		return err
	}
	d.prog = prog
	if err := prog.BuildProgram(nil, options); err != nil {
		d.dropProgram()
		if env := os.Getenv("ALEXCL_CL_OPTIONS"); env != "" {
			return fmt.Errorf("the driver's OpenCL compiler rejected alexcl's kernels with options %q, "+
				"which include ALEXCL_CL_OPTIONS=%q: try without it: %w", options, env, err)
		}
		return fmt.Errorf("the driver's OpenCL compiler rejected alexcl's kernels (options %q); update the driver, "+
			"or use another --device (alexcl list-devices; cpu always works), and report it with the build log below: %w", options, err)
	}
	appendBuildLog(prog, d.dev, options)
	if err := d.createKernels(); err != nil {
		d.dropProgram()
		return err
	}
	ms := time.Since(start).Milliseconds()
	if path == "" {
		d.opts.logf("kernel cache off, built in %d ms", ms)
		return nil
	}
	if err := d.saveCached(path); err != nil {
		d.opts.logf("kernel cache miss, built in %d ms, not saved: %v", ms, err)
		return nil
	}
	d.opts.logf("kernel cache miss, built in %d ms, saved %s", ms, path)
	return nil
}

// loadCached builds d.prog from the cached binary at path and creates its
// kernels. On any error it leaves d without a program.
func (d *Device) loadCached(path, options string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	bin, ok := bytes.CutPrefix(data, []byte(cacheMagic))
	if !ok || len(bin) <= sha256.Size {
		return fmt.Errorf("not a kernel cache file")
	}
	sum, bin := bin[:sha256.Size], bin[sha256.Size:]
	if got := sha256.Sum256(bin); !bytes.Equal(got[:], sum) {
		return fmt.Errorf("checksum mismatch (corrupted file)")
	}
	prog, err := d.ctx.CreateProgramWithBinary([]*cl.Device{d.dev}, [][]byte{bin})
	if err != nil {
		return err
	}
	d.prog = prog
	if err := prog.BuildProgram(nil, options); err != nil {
		d.dropProgram()
		return err
	}
	if err := d.createKernels(); err != nil {
		d.dropProgram()
		return err
	}
	return nil
}

// dropProgram releases d's program and kernels.
func (d *Device) dropProgram() {
	for _, k := range d.kernels {
		k.Release()
	}
	d.kernels = nil
	d.prog.Release()
	d.prog = nil
}

// createKernels creates every kernel of d.prog into d.kernels.
func (d *Device) createKernels() error {
	ks, err := d.prog.CreateKernels()
	if err != nil {
		return err
	}
	d.kernels = make(map[string]*cl.Kernel, len(ks))
	for _, k := range ks {
		d.kernels[k.Name()] = k
	}
	return nil
}

// saveCached writes d.prog's binary to path atomically (a temporary file
// in the same directory, renamed over path).
func (d *Device) saveCached(path string) error {
	bins, err := d.prog.Binaries()
	if err != nil {
		return err
	}
	if len(bins) != 1 || len(bins[0]) == 0 {
		return fmt.Errorf("the driver returned no program binary")
	}
	sum := sha256.Sum256(bins[0])
	return writeAtomic(path, slices.Concat([]byte(cacheMagic), sum[:], bins[0]))
}

// writeAtomic writes data to path through a temporary file in the same
// directory renamed over path, so a reader sees the old file or the new
// one, never a part; the directory is created when missing.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// appendBuildLog appends the compiler's log of a successful build of prog,
// headed by its options, to the file $ALEXCL_CL_BUILD_LOG names, if any:
// the driver's own report of each kernel, such as the registers and
// spills NVIDIA's ptxas gives with ALEXCL_CL_OPTIONS=-cl-nv-verbose. The
// tuner's candidates are logged too; programs loaded from the kernel cache
// are not built, so not logged. A log that cannot be written is dropped.
func appendBuildLog(prog *cl.Program, dev *cl.Device, options string) {
	path := os.Getenv("ALEXCL_CL_BUILD_LOG")
	if path == "" {
		return
	}
	log, err := prog.GetBuildLog(dev)
	if err != nil {
		log = "(no build log: " + err.Error() + ")"
	}
	buildLogMu.Lock()
	defer buildLogMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s\n%s\n", options, strings.TrimRight(log, "\n"))
}

// buildLogMu keeps the tuner's concurrent builds' logs whole.
var buildLogMu sync.Mutex

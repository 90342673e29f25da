package opencl

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/opencl/cl"
)

// sharedCache is one kernel cache for the tests that do not test the cache,
// so the real kernels are compiled once per test run.
var sharedCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "alexcl-kernel-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireOpenCL skips the test when there is no OpenCL device, unless
// ALEXCL_REQUIRE_OPENCL=1 (CI), where it fails.
func requireOpenCL(t *testing.T) []device.Info {
	t.Helper()
	infos, err := List()
	if err == nil && len(infos) == 0 {
		err = errors.New("no OpenCL device on any platform")
	}
	if err != nil {
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but: %v", err)
		}
		t.Skipf("no OpenCL device: %v", err)
	}
	return infos
}

// testKernels are built into the test devices' program besides clkernels.
const testKernels = `
__kernel void alexcl_test_axpy(float a, __global const float *x, __global float *y, int n) {
	int i = get_global_id(0);
	if (i < n) y[i] += a * x[i];
}
// y[g] = (sum of the group's x) * TEST_SCALE; out may be NULL.
__kernel void alexcl_test_group_sum(__global const float *x, __global float *y, __local float *tmp, uint n,
                                    __global float *out) {
	int l = get_local_id(0);
	int i = get_global_id(0);
	tmp[l] = i < n ? x[i] : 0.0f;
	barrier(CLK_LOCAL_MEM_FENCE);
	if (l == 0) {
		float s = 0.0f;
		for (int j = 0; j < (int)get_local_size(0); j++) s += tmp[j];
		y[get_group_id(0)] = s * TEST_SCALE;
		if (out) out[get_group_id(0)] = 1.0f;
	}
}
`

// logLines collects Logf output.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func testOptions(cacheDir string, log *logLines) Options {
	o := Options{
		Version:      "test",
		CacheDir:     cacheDir,
		Defines:      map[string]string{"TEST_SCALE": "2.0f"},
		extraSources: []string{testKernels},
	}
	if log != nil {
		o.Logf = log.logf
	}
	return o
}

func openTest(t *testing.T) *Device {
	t.Helper()
	requireOpenCL(t)
	d, err := Open(0, testOptions(sharedCache, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func TestList(t *testing.T) {
	infos := requireOpenCL(t)
	for i, info := range infos {
		t.Logf("%+v", info)
		if info.ID != fmt.Sprintf("cl%d", i) || info.Name == "" || info.Platform == "" || info.Type == "" ||
			info.MaxAlloc <= 0 || info.GlobalMem <= 0 || info.ComputeUnits < 1 {
			t.Errorf("implausible info %+v", info)
		}
	}
	if _, err := Open(len(infos), Options{}); err == nil || !strings.Contains(err.Error(), "no such OpenCL device") {
		t.Errorf("Open(%d) error = %v", len(infos), err)
	}
}

func TestOpenBuildsKernels(t *testing.T) {
	d := openTest(t)
	if d.Info().ID != "cl0" {
		t.Errorf("ID = %q", d.Info().ID)
	}
	if d.kernels["alexcl_test_axpy"] == nil {
		t.Fatalf("test kernel missing; kernels: %s", d.kernelNames())
	}
	t.Logf("kernels: %s", d.kernelNames())
}

func TestBuffers(t *testing.T) {
	d := openTest(t)
	const n = 1001
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i) * 0.25
	}
	a, err := device.Upload(d, src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Alloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	if st := d.MemStats(); st.Buffers != 2 || st.InUse != 8*n || st.Peak != 8*n {
		t.Errorf("MemStats = %+v", st)
	}
	if err := d.Fill(b, -3); err != nil {
		t.Fatal(err)
	}
	if err := d.Copy(b, 40, a, 4, 400); err != nil { // elements [1, 101) to [10, 110)
		t.Fatal(err)
	}
	if err := d.Write(b, 4*500, device.Float32Bytes([]float32{7, 8})); err != nil {
		t.Fatal(err)
	}
	got, err := device.ReadFloat32(d, b, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		want := float32(-3)
		switch {
		case i >= 10 && i < 110:
			want = src[i-9]
		case i == 500:
			want = 7
		case i == 501:
			want = 8
		}
		if v != want {
			t.Fatalf("b[%d] = %v, want %v", i, v, want)
		}
	}
	// Partial read at an offset.
	part := make([]float32, 3)
	if err := d.Read(a, 4*5, device.Float32Bytes(part)); err != nil || part[0] != src[5] || part[2] != src[7] {
		t.Errorf("partial read = %v, %v", part, err)
	}

	// Errors: out of range, overlap, zero and oversized allocations.
	if err := d.Write(b, 4*n-2, []byte{1, 2, 3}); err == nil {
		t.Error("write past the end succeeded")
	}
	if err := d.Read(b, -1, make([]byte, 1)); err == nil {
		t.Error("read at offset -1 succeeded")
	}
	if err := d.Copy(b, 0, b, 8, 16); err == nil {
		t.Error("overlapping copy succeeded")
	}
	if _, err := d.Alloc(0); err == nil {
		t.Error("Alloc(0) succeeded")
	}
	if max := d.Info().MaxAlloc; max < 1<<62 {
		_, err := d.Alloc(int(max) + 1)
		if err == nil || !strings.Contains(err.Error(), "CL_DEVICE_MAX_MEM_ALLOC_SIZE") {
			t.Errorf("oversized Alloc error = %v", err)
		}
	}

	// Freed buffers.
	if err := d.Free(a); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(a, 0, []byte{0, 0, 0, 0}); !errors.Is(err, device.ErrFreed) {
		t.Errorf("write to a freed buffer: %v", err)
	}
	if err := d.Free(a); !errors.Is(err, device.ErrFreed) {
		t.Errorf("double free: %v", err)
	}
	if st := d.MemStats(); st.Buffers != 1 || st.InUse != 4*n || st.Peak != 8*n {
		t.Errorf("MemStats after free = %+v", st)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestForeignBuffer(t *testing.T) {
	d1 := openTest(t)
	d2 := openTest(t)
	b, err := d2.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Fill(b, 1); err == nil || !strings.Contains(err.Error(), "belongs to") {
		t.Errorf("fill of another device's buffer: %v", err)
	}
	if err := d1.launch("alexcl_test_axpy", []int{4}, nil, float32(1), b, b, 4); err == nil {
		t.Error("launch with another device's buffer succeeded")
	}
}

func TestLaunch(t *testing.T) {
	d := openTest(t)
	const n = 37
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], y[i] = float32(i), 1
	}
	bx, _ := device.Upload(d, x)
	by, _ := device.Upload(d, y)
	if err := d.launch("alexcl_test_axpy", []int{64}, []int{16}, float32(2), bx, by, n); err != nil {
		t.Fatal(err)
	}
	got, err := device.ReadFloat32(d, by, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if want := 1 + 2*float32(i); v != want {
			t.Fatalf("y[%d] = %v, want %v", i, v, want)
		}
	}

	// __local memory, uint32, a nil buffer (NULL pointer) and a define.
	sums, _ := d.Alloc(4 * 3)
	if err := d.launch("alexcl_test_group_sum", []int{48}, []int{16}, bx, sums, Local(16*4), uint32(n), nil); err != nil {
		t.Fatal(err)
	}
	flags, _ := d.Alloc(4 * 3)
	d.Fill(flags, 0)
	if err := d.launch("alexcl_test_group_sum", []int{48}, []int{16}, bx, sums, Local(16*4), uint32(n), flags); err != nil {
		t.Fatal(err)
	}
	gs, err := device.ReadFloat32(d, sums, 3)
	if err != nil {
		t.Fatal(err)
	}
	fl, _ := device.ReadFloat32(d, flags, 3)
	for g := range 3 {
		want := float32(0)
		for i := 16 * g; i < min(16*g+16, n); i++ {
			want += x[i]
		}
		if gs[g] != 2*want || fl[g] != 1 {
			t.Errorf("group %d: sum %v flag %v, want %v and 1", g, gs[g], fl[g], 2*want)
		}
	}

	// Argument errors name the kernel.
	if big := int(^uint(0) >> 1); big > math.MaxInt32 {
		if err := d.launch("alexcl_test_axpy", []int{64}, []int{16}, float32(2), bx, by, big); err == nil || !strings.Contains(err.Error(), "alexcl_test_axpy") {
			t.Errorf("out-of-range int: %v", err)
		}
	}
	if err := d.launch("alexcl_test_axpy", []int{64}, []int{16}, 2.0, bx, by, n); err == nil {
		t.Error("float64 argument accepted")
	}
	if err := d.launch("alexcl_test_axpy", []int{60}, []int{16}, float32(2), bx, by, n); err == nil {
		t.Error("global not a multiple of local accepted")
	}
	d.Free(bx)
	if err := d.launch("alexcl_test_axpy", []int{64}, nil, float32(2), bx, by, n); !errors.Is(err, device.ErrFreed) {
		t.Errorf("launch with a freed buffer: %v", err)
	}
}

func TestBadKernelName(t *testing.T) {
	d := openTest(t)
	err := d.launch("no_such_kernel", []int{1}, nil)
	if !errors.Is(err, cl.InvalidKernelName) || !strings.Contains(err.Error(), "no_such_kernel") ||
		!strings.Contains(err.Error(), "CL_INVALID_KERNEL_NAME") {
		t.Errorf("error = %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	requireOpenCL(t)
	o := testOptions(t.TempDir(), nil)
	o.extraSources = []string{"__kernel void alexcl_test_broken(__global float *x) { x[0] = no_such_identifier; }"}
	_, err := Open(0, o)
	if !errors.Is(err, cl.BuildProgramFailure) || !strings.Contains(err.Error(), "no_such_identifier") ||
		!strings.Contains(err.Error(), "rejected alexcl's kernels") || !strings.Contains(err.Error(), "build log:") {
		t.Errorf("broken kernel: %v", err)
	}
	o = testOptions(t.TempDir(), nil)
	o.Defines["not an identifier"] = "1"
	if _, err := Open(0, o); err == nil || !strings.Contains(err.Error(), "not a C identifier") {
		t.Errorf("bad define: %v", err)
	}
}

func TestKernelCache(t *testing.T) {
	requireOpenCL(t)
	dir := t.TempDir()
	open := func() string {
		t.Helper()
		var log logLines
		d, err := Open(0, testOptions(dir, &log))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		// The device works whichever way its program was made.
		x, _ := device.Upload(d, []float32{1, 2})
		y, _ := device.Upload(d, []float32{1, 1})
		if err := d.launch("alexcl_test_axpy", []int{2}, nil, float32(3), x, y, 2); err != nil {
			t.Fatal(err)
		}
		if got, err := device.ReadFloat32(d, y, 2); err != nil || got[0] != 4 || got[1] != 7 {
			t.Fatalf("axpy = %v, %v", got, err)
		}
		return log.String()
	}

	first := open()
	if !strings.Contains(first, "kernel cache miss, built in") || !strings.Contains(first, "saved "+dir) {
		t.Fatalf("first open logged %q, want a miss that saved into %s", first, dir)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.clbin"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	if second := open(); !strings.Contains(second, "kernel cache hit "+files[0]) {
		t.Fatalf("second open logged %q, want a hit", second)
	}

	// A corrupted entry is rebuilt and replaced.
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(files[0], bad, 0o644)
	if third := open(); !strings.Contains(third, "unusable") || !strings.Contains(third, "kernel cache miss") {
		t.Fatalf("open with a corrupted entry logged %q", third)
	}
	// A truncated one too.
	os.WriteFile(files[0], data[:10], 0o644)
	if log := open(); !strings.Contains(log, "kernel cache miss") {
		t.Fatalf("open with a truncated entry logged %q", log)
	}
	// A well-formed file whose binary the driver rejects (stale).
	os.WriteFile(files[0], append([]byte(cacheMagic), sha256Of([]byte("not a binary"))...), 0o644)
	if log := open(); !strings.Contains(log, "kernel cache miss") {
		t.Fatalf("open with a stale entry logged %q", log)
	}
	if log := open(); !strings.Contains(log, "kernel cache hit") {
		t.Fatalf("open after rebuilding logged %q", log)
	}

	// The key changes with the defines and the version.
	o := testOptions(dir, nil)
	o.Defines["TEST_SCALE"] = "3.0f"
	o.Version = "test2"
	d, err := Open(0, o)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if files, _ := filepath.Glob(filepath.Join(dir, "*.clbin")); len(files) != 2 {
		t.Errorf("cache holds %d entries, want 2", len(files))
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	// ALEXCL_KERNEL_CACHE=off disables it.
	t.Setenv("ALEXCL_KERNEL_CACHE", "off")
	if log := open(); !strings.Contains(log, "kernel cache off") {
		t.Errorf("with ALEXCL_KERNEL_CACHE=off logged %q", log)
	}
}

func sha256Of(b []byte) []byte {
	sum := sha256Sum(b)
	return append(sum[:], b...)
}

func TestCloseReleases(t *testing.T) {
	requireOpenCL(t)
	d, err := Open(0, testOptions(sharedCache, nil))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := d.Alloc(64)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if st := d.MemStats(); st.Buffers != 0 || st.InUse != 0 {
		t.Errorf("MemStats after Close = %+v", st)
	}
	if err := d.Fill(b, 0); err == nil {
		t.Error("Fill after Close succeeded")
	}
	if _, err := d.Alloc(4); err == nil {
		t.Error("Alloc after Close succeeded")
	}
	if err := d.Sync(); err == nil {
		t.Error("Sync after Close succeeded")
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestConcurrentUse queues work from several goroutines at once; run with
// -race it checks the device's locking.
func TestConcurrentUse(t *testing.T) {
	d := openTest(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range 20 {
				n := 1 + (g*31+it*7)%100
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(i + g)
				}
				bx, err := device.Upload(d, x)
				if err != nil {
					errs <- err
					return
				}
				by, _ := d.Alloc(4 * n)
				d.Fill(by, 1)
				if err := d.launch("alexcl_test_axpy", []int{n}, nil, float32(g), bx, by, n); err != nil {
					errs <- err
					return
				}
				got, err := device.ReadFloat32(d, by, n)
				if err != nil {
					errs <- err
					return
				}
				for i, v := range got {
					if want := 1 + float32(g)*x[i]; v != want {
						errs <- fmt.Errorf("goroutine %d: y[%d] = %v, want %v", g, i, v, want)
						return
					}
				}
				d.Free(bx)
				d.Free(by)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := d.MemStats(); st.Buffers != 0 || st.InUse != 0 {
		t.Errorf("MemStats = %+v after freeing everything", st)
	}
}

// TestOpenEnv checks ALEXCL_CL_LEGACY, which turns this version's GPU-path
// changes back off one by one, and that a bad value is an error naming the
// variable and the choices.
func TestOpenEnv(t *testing.T) {
	requireOpenCL(t)
	for _, tc := range []struct {
		val       string
		want      legacy
		flush     int
		wantError string
	}{
		{"", legacy{}, 16, ""},
		{"filter", legacy{filterPerImage: true}, 16, ""},
		{"Flush", legacy{noFlush: true}, 0, ""},
		{"im2col, filter", legacy{filterPerImage: true, rowIm2col: true}, 16, ""},
		{"splitk", legacy{noSplitK: true}, 16, ""},
		{"shapes", legacy{perSize: true}, 16, ""},
		{"small", legacy{oneGemmSet: true}, 16, ""},
		{"all", legacy{true, true, true, true, true, true}, 0, ""},
		{"filter,tiles", legacy{}, 0, "is not one of filter, flush, im2col, splitk, shapes, small, all"},
	} {
		t.Setenv("ALEXCL_CL_LEGACY", tc.val)
		d, err := Open(0, testOptions(sharedCache, nil))
		if tc.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), "ALEXCL_CL_LEGACY") || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("ALEXCL_CL_LEGACY=%q: %v, want an error %q", tc.val, err, tc.wantError)
			}
			if err == nil {
				d.Close()
			}
			continue
		}
		if err != nil {
			t.Fatalf("ALEXCL_CL_LEGACY=%q: %v", tc.val, err)
		}
		if d.legacy != tc.want || d.flushEvery != tc.flush {
			t.Errorf("ALEXCL_CL_LEGACY=%q: %+v, flush every %d; want %+v, %d", tc.val, d.legacy, d.flushEvery, tc.want, tc.flush)
		}
		d.Close()
	}
}

// TestOpenDefinesEnv checks ALEXCL_CL_DEFINES: its items reach the
// program's defines over the caller's (and a tuned name keeps Open from
// tuning), and a malformed item, an unknown name (a test kernel's
// TEST_SCALE included) or family is an error that names the variable.
func TestOpenDefinesEnv(t *testing.T) {
	requireOpenCL(t)
	t.Setenv("ALEXCL_TUNE", "on")
	t.Setenv("ALEXCL_CL_DEFINES", " GEMM_KIND=tiled, CONV_INTDIV,GEMMV_LM=4,")
	var log logLines
	o := testOptions(t.TempDir(), &log)
	o.Tune = true
	o.Defines["GEMM_KIND"] = "vector" // the variable wins over the caller
	d, err := Open(0, o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !strings.Contains(log.String(), "tuning skipped") || !strings.Contains(log.String(), "GEMM_KIND") {
		t.Errorf("log %q: want tuning skipped for GEMM_KIND", log.String())
	}
	want := map[string]string{"GEMM_KIND": "tiled", "TEST_SCALE": "2.0f", "CONV_INTDIV": "", "GEMMV_LM": "4"}
	if !maps.Equal(d.Tunables(), want) {
		t.Errorf("defines %v, want %v", d.Tunables(), want)
	}
	if !maps.Equal(o.Defines, map[string]string{"TEST_SCALE": "2.0f", "GEMM_KIND": "vector"}) {
		t.Errorf("the caller's Options.Defines changed: %v", o.Defines)
	}
	if d.gemmKind() != gemmTiled {
		t.Errorf("kernel family %s, want tiled", d.gemmKind())
	}
	// Options.Defines are checked too (the variable is, below).
	t.Setenv("ALEXCL_CL_DEFINES", "")
	for name, v := range map[string]string{"CONV_WINO": "sideways", "CONV_BWDATA": "gemm"} {
		o = testOptions(sharedCache, nil)
		o.Defines[name] = v
		if d, err := Open(0, o); err == nil || !strings.Contains(err.Error(), name+`="`+v+`"`) {
			t.Errorf("Options.Defines %s=%s: %v, want an error naming it", name, v, err)
			if err == nil {
				d.Close()
			}
		}
	}
	for _, bad := range []string{"GEMM_KIND=tiled,GEMM_KIND=blocked", "GEMM TSM=64", "GEMM_TSM=6 4",
		"=3", "GEMM_KU2=2", "GEMM_KIND=blocke", "TEST_SCALE=3.0f", "CONV_KIND=vector", "CONV_KIND", "CONV_BLOCKED", "CONV_BWDATA=yes",
		"CONV_WINO=yes", "CONV_WINO=forward+forward", "CONV_WINO", "CONV_WINO35=", "CONV_WINO=on+data", "CONV_WINO5=sideways", "CONV_WINO43=yes", "CONV_WINO35=forward+", "CONV_BWDATA=gemm",
		"GEMMV_LM=4 8", "CONV_WINO_MINCH=0", "CONV_WINO_MINCH=x", "GEMM_SPLIT_GROUPS=0", "CONV_FILTER_GROUPS=many",
		"GEMMS_KIND=vector", "GEMMS_KIND=tiled,GEMMS_TSM=128"} {
		t.Setenv("ALEXCL_CL_DEFINES", bad)
		if d, err := Open(0, testOptions(sharedCache, nil)); err == nil || !strings.Contains(err.Error(), "ALEXCL_CL_DEFINES") {
			t.Errorf("ALEXCL_CL_DEFINES=%q: %v, want an error naming the variable", bad, err)
			if err == nil {
				d.Close()
			}
		}
	}
}

// TestFlushEveryKernel runs kernels with a flush after each one.
func TestFlushEveryKernel(t *testing.T) {
	d := openTest(t)
	d.flushEvery = 1
	x, _ := device.Upload(d, []float32{-1, 2, -3})
	for range 3 {
		if err := d.ReLUForward(x, x, 3); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := device.ReadFloat32(d, x, 3); err != nil || got[0] != 0 || got[1] != 2 || got[2] != 0 {
		t.Errorf("ReLU with a flush after each: %v, %v", got, err)
	}
	if d.launches != 3 {
		t.Errorf("%d launches counted, want 3", d.launches)
	}
}

// TestBuildLogEnv: ALEXCL_CL_OPTIONS reaches the compiler (and the kernel
// cache's key), and ALEXCL_CL_BUILD_LOG collects the log of each program
// built from source, headed by its options, and nothing for a program the
// cache gives back.
func TestBuildLogEnv(t *testing.T) {
	requireOpenCL(t)
	logPath := filepath.Join(t.TempDir(), "build.log")
	t.Setenv("ALEXCL_TUNE", "off")
	t.Setenv("ALEXCL_CL_OPTIONS", " -w ")
	t.Setenv("ALEXCL_CL_BUILD_LOG", logPath)
	cache := t.TempDir()
	for range 2 {
		d, err := Open(0, testOptions(cache, nil))
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var heads []string
	for line := range strings.Lines(string(b)) {
		if h, ok := strings.CutPrefix(line, "=== "); ok {
			heads = append(heads, strings.TrimSpace(h))
		}
	}
	if len(heads) != 1 || !strings.HasSuffix(heads[0], "-D TEST_SCALE=2.0f -w") {
		t.Errorf("build log heads %q: want one, of the options ending in -D TEST_SCALE=2.0f -w", heads)
	}
}

// TestBuildOptionsEnvRejected: options the compiler refuses fail Open
// with an error that names ALEXCL_CL_OPTIONS.
func TestBuildOptionsEnvRejected(t *testing.T) {
	requireOpenCL(t)
	t.Setenv("ALEXCL_TUNE", "off")
	t.Setenv("ALEXCL_CL_OPTIONS", "-cl-no-such-option")
	d, err := Open(0, testOptions(t.TempDir(), nil))
	if err == nil {
		d.Close()
		t.Skip("this OpenCL compiler accepts -cl-no-such-option")
	}
	if !strings.Contains(err.Error(), `ALEXCL_CL_OPTIONS="-cl-no-such-option"`) {
		t.Errorf("error %q: want it to name ALEXCL_CL_OPTIONS", err)
	}
}

// TestSwitchEnvRefused: ALEXCL_TUNE and ALEXCL_KERNEL_CACHE values that
// are neither on nor off (nor force) fail Open, naming the variable.
func TestSwitchEnvRefused(t *testing.T) {
	requireOpenCL(t)
	for _, name := range []string{"ALEXCL_TUNE", "ALEXCL_KERNEL_CACHE"} {
		t.Setenv(name, "sometimes")
		d, err := Open(0, testOptions(sharedCache, nil))
		if err == nil || !strings.Contains(err.Error(), name+`="sometimes"`) {
			t.Errorf("%s=sometimes: %v, want an error naming it", name, err)
		}
		if err == nil {
			d.Close()
		}
		t.Setenv(name, "")
	}
}

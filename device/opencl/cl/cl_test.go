package cl

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"unsafe"
)

func TestStatusNames(t *testing.T) {
	if got, want := OutOfResources.String(), "CL_OUT_OF_RESOURCES (-5)"; got != want {
		t.Errorf("OutOfResources.String() = %q, want %q", got, want)
	}
	err := error(&Error{Call: "clEnqueueNDRangeKernel", Status: OutOfResources})
	if got, want := err.Error(), "clEnqueueNDRangeKernel: CL_OUT_OF_RESOURCES (-5)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, OutOfResources) || errors.Is(err, InvalidValue) {
		t.Errorf("errors.Is does not match the status of %v", err)
	}
	err = &Error{Call: "clCreateKernel", Subject: "relu", Status: InvalidKernelName}
	if got, want := err.Error(), `clCreateKernel "relu": CL_INVALID_KERNEL_NAME (-46)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// Every OpenCL 1.2 code has a name.
	for c := int32(0); c >= -68; c-- {
		if c < -19 && c > -30 {
			continue
		}
		name := Status(c).Name()
		if name == "CL_UNKNOWN_ERROR" || !strings.HasPrefix(name, "CL_") {
			t.Errorf("status %d has no name", c)
		}
	}
	if got := Status(-12345).String(); got != "CL_UNKNOWN_ERROR (-12345)" {
		t.Errorf("unknown status formats as %q", got)
	}
	if got := PlatformNotFoundKHR.Name(); got != "CL_PLATFORM_NOT_FOUND_KHR" {
		t.Errorf("-1001 is %q", got)
	}
}

// testDevice returns the first OpenCL device, or skips the test when there
// is none, unless ALEXCL_REQUIRE_OPENCL=1 (CI), where it fails.
func testDevice(t *testing.T) (*Device, *Context, *CommandQueue) {
	t.Helper()
	var dev *Device
	platforms, err := GetPlatforms()
	if err == nil {
		for _, p := range platforms {
			if ds, err := p.GetDevices(DeviceTypeAll); err == nil && len(ds) > 0 {
				dev = ds[0]
				break
			}
		}
		if dev == nil {
			err = errors.New("no OpenCL device on any platform")
		}
	}
	if err != nil {
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but: %v", err)
		}
		t.Skipf("no OpenCL device: %v", err)
	}
	ctx, err := CreateContext([]*Device{dev})
	if err != nil {
		t.Fatal(err)
	}
	q, err := ctx.CreateCommandQueue(dev, CommandQueueProfilingEnable)
	if err != nil {
		ctx.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Release(); ctx.Release() })
	return dev, ctx, q
}

func TestDeviceInfo(t *testing.T) {
	dev, _, _ := testDevice(t)
	p := dev.Platform()
	t.Logf("platform %q %q %q", p.Name(), p.Vendor(), p.Version())
	t.Logf("device %q (%s) vendor %q, %d CUs at %d MHz, %d B global, %d B max alloc, %d B local, %q, driver %q, fp16 %v fp64 %v, wg %d %v",
		dev.Name(), dev.Type(), dev.Vendor(), dev.MaxComputeUnits(), dev.MaxClockFrequency(), dev.GlobalMemSize(),
		dev.MaxMemAllocSize(), dev.LocalMemSize(), dev.OpenCLCVersion(), dev.DriverVersion(), dev.FP16(), dev.FP64(),
		dev.MaxWorkGroupSize(), dev.MaxWorkItemSizes())
	if dev.Name() == "" || p.Name() == "" || dev.MaxComputeUnits() < 1 || dev.GlobalMemSize() <= 0 ||
		dev.MaxMemAllocSize() <= 0 || dev.MaxWorkGroupSize() < 1 || len(dev.MaxWorkItemSizes()) < 1 {
		t.Errorf("implausible device info")
	}
}

func TestBuildFailureCarriesLog(t *testing.T) {
	_, ctx, _ := testDevice(t)
	prog, err := ctx.CreateProgramWithSource([]string{"__kernel void broken(__global float *x) { x[0] = undeclared_thing; }"})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Release()
	err = prog.BuildProgram(nil, "")
	if !errors.Is(err, BuildProgramFailure) {
		t.Fatalf("build error = %v, want CL_BUILD_PROGRAM_FAILURE", err)
	}
	if !strings.Contains(err.Error(), "undeclared_thing") || !strings.Contains(err.Error(), "clBuildProgram: CL_BUILD_PROGRAM_FAILURE (-11)") {
		t.Errorf("build error does not carry the log:\n%v", err)
	}
}

func TestBufferRoundTrip(t *testing.T) {
	_, ctx, q := testDevice(t)
	src := make([]float32, 1000)
	for i := range src {
		src[i] = float32(i) - 0.5
	}
	a, err := ctx.CreateBuffer(MemReadWrite, unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*len(src)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := ctx.CreateEmptyBuffer(MemReadWrite, 4*len(src))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	pattern := float32(7)
	ev, err := q.EnqueueFillBuffer(b, unsafe.Pointer(&pattern), 4, 0, 4*len(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Release()
	// Copy elements [100, 300) of a to b at element 500.
	ev, err = q.EnqueueCopyBuffer(a, b, 400, 2000, 800, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Release()
	// Overwrite element 0 with a write.
	one := []float32{42}
	ev, err = q.EnqueueWriteBuffer(b, true, 0, 4, unsafe.Pointer(&one[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Release()
	got := make([]float32, len(src))
	ev, err = q.EnqueueReadBuffer(b, true, 0, 4*len(got), unsafe.Pointer(&got[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Release()
	for i, v := range got {
		want := float32(7)
		switch {
		case i == 0:
			want = 42
		case i >= 500 && i < 700:
			want = src[i-400]
		}
		if v != want {
			t.Fatalf("element %d = %v, want %v", i, v, want)
		}
	}
	if _, err := ctx.CreateEmptyBuffer(MemReadWrite, 0); !errors.Is(err, InvalidBufferSize) {
		t.Errorf("zero-size buffer: err = %v", err)
	}
}

const testKernels = `
__kernel void axpy(float a, __global const float *x, __global float *y, int n) {
	int i = get_global_id(0);
	if (i < n) y[i] += a * x[i];
}
__kernel void local_sum(__global const float *x, __global float *out, __local float *tmp) {
	int l = get_local_id(0);
	tmp[l] = x[get_global_id(0)];
	barrier(CLK_LOCAL_MEM_FENCE);
	if (l == 0) {
		float s = 0;
		for (int i = 0; i < (int)get_local_size(0); i++) s += tmp[i];
		out[get_group_id(0)] = s;
	}
}
`

func buildTest(t *testing.T, ctx *Context) *Program {
	t.Helper()
	prog, err := ctx.CreateProgramWithSource([]string{testKernels})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prog.Release)
	if err := prog.BuildProgram(nil, "-cl-mad-enable"); err != nil {
		t.Fatal(err)
	}
	return prog
}

func runAxpy(t *testing.T, ctx *Context, q *CommandQueue, prog *Program) {
	t.Helper()
	const n = 37
	k, err := prog.CreateKernel("axpy")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Release()
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], y[i] = float32(i), 1
	}
	bx, err := ctx.CreateBuffer(MemReadOnly, unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*n))
	if err != nil {
		t.Fatal(err)
	}
	defer bx.Release()
	by, err := ctx.CreateBuffer(MemReadWrite, unsafe.Slice((*byte)(unsafe.Pointer(&y[0])), 4*n))
	if err != nil {
		t.Fatal(err)
	}
	defer by.Release()
	if err := k.SetArgs(float32(2), bx, by, int32(n)); err != nil {
		t.Fatal(err)
	}
	ev, err := q.EnqueueNDRangeKernel(k, nil, []int{64}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Release()
	if d, err := ev.Duration(); err != nil || d < 0 {
		t.Errorf("profiling: %v, %v", d, err)
	}
	got := make([]float32, n)
	ev2, err := q.EnqueueReadBuffer(by, true, 0, 4*n, unsafe.Pointer(&got[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev2.Release()
	for i, v := range got {
		if want := 1 + 2*float32(i); v != want {
			t.Fatalf("y[%d] = %v, want %v", i, v, want)
		}
	}
}

func TestKernelLaunch(t *testing.T) {
	_, ctx, q := testDevice(t)
	prog := buildTest(t, ctx)
	runAxpy(t, ctx, q, prog)

	// __local memory and an explicit work-group size.
	k, err := prog.CreateKernel("local_sum")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Release()
	x := make([]float32, 64)
	for i := range x {
		x[i] = 1
	}
	bx, _ := ctx.CreateBuffer(MemReadOnly, unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x)))
	defer bx.Release()
	bo, _ := ctx.CreateEmptyBuffer(MemReadWrite, 4*4)
	defer bo.Release()
	if err := k.SetArgs(bx, bo, LocalBuffer(16*4)); err != nil {
		t.Fatal(err)
	}
	// Without an event (axpy above took one): the in-order queue still runs
	// it before the read.
	if err := q.EnqueueNDRangeKernelNoEvent(k, nil, []int{64}, []int{16}, nil); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 4)
	ev, err := q.EnqueueReadBuffer(bo, true, 0, 16, unsafe.Pointer(&got[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Release()
	for i, v := range got {
		if v != 16 {
			t.Errorf("group %d sum = %v, want 16", i, v)
		}
	}
	if err := q.Finish(); err != nil {
		t.Fatal(err)
	}
	ks, err := prog.CreateKernels()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range ks {
		names = append(names, k.Name())
		k.Release()
	}
	if strings.Join(names, ",") != "axpy,local_sum" && strings.Join(names, ",") != "local_sum,axpy" {
		t.Errorf("CreateKernels names = %v", names)
	}
}

func TestBadKernelNameAndArgs(t *testing.T) {
	_, ctx, _ := testDevice(t)
	prog := buildTest(t, ctx)
	_, err := prog.CreateKernel("no_such_kernel")
	if !errors.Is(err, InvalidKernelName) || !strings.Contains(err.Error(), "no_such_kernel") {
		t.Errorf("CreateKernel(no_such_kernel) error = %v", err)
	}
	k, err := prog.CreateKernel("axpy")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Release()
	if err := k.SetArg(0, "text"); !errors.Is(err, InvalidArgValue) {
		t.Errorf("SetArg(string) = %v", err)
	}
	if big := int(^uint(0) >> 1); big > math.MaxInt32 {
		if err := k.SetArg(3, big); !errors.Is(err, InvalidArgValue) {
			t.Errorf("SetArg(huge int) = %v", err)
		}
	}
	if err := k.SetArg(9, int32(1)); !errors.Is(err, InvalidArgIndex) {
		t.Errorf("SetArg(9) = %v", err)
	}
}

func TestProgramBinaries(t *testing.T) {
	dev, ctx, q := testDevice(t)
	prog := buildTest(t, ctx)
	bins, err := prog.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) != 1 || len(bins[0]) == 0 {
		t.Fatalf("got %d binaries", len(bins))
	}
	p2, err := ctx.CreateProgramWithBinary([]*Device{dev}, bins)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Release()
	if err := p2.BuildProgram(nil, "-cl-mad-enable"); err != nil {
		t.Fatal(err)
	}
	runAxpy(t, ctx, q, p2)

	if _, err := ctx.CreateProgramWithBinary([]*Device{dev}, [][]byte{[]byte("garbage, not a binary")}); err == nil {
		t.Errorf("a garbage binary was accepted")
	} else {
		t.Logf("garbage binary: %v", err)
	}
}

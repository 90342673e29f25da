package cl

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// Program is an OpenCL program: sources or binaries, built for devices.
type Program struct {
	id      uintptr
	devices []*Device
}

// Kernel is one __kernel function of a built Program. A Kernel's arguments
// are state: SetArg and EnqueueNDRangeKernel on one Kernel must not run
// concurrently.
type Kernel struct {
	id   uintptr
	name string
}

// LocalBuffer, as an argument to Kernel.SetArg, asks for __local memory of
// that many bytes.
type LocalBuffer int

const (
	programNumDevices  = 0x1162
	programBinarySizes = 0x1165
	programBinaries    = 0x1166
	programBuildLog    = 0x1183
	kernelFunctionName = 0x1190
	kernelNumArgs      = 0x1191

	kernelWorkGroupSize                  = 0x11B0
	kernelPreferredWorkGroupSizeMultiple = 0x11B3
)

// CreateProgramWithSource creates a program from OpenCL C sources, compiled
// in order as one translation unit (as if concatenated).
func (c *Context) CreateProgramWithSource(sources []string) (*Program, error) {
	if len(sources) == 0 {
		return nil, &Error{Call: "clCreateProgramWithSource", Subject: "no sources", Status: InvalidValue}
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	ptrs := pinnedUintptrs(&pin, len(sources))
	lens := pinnedUintptrs(&pin, len(sources))
	for i, s := range sources {
		b := []byte(s + "\n") // never empty; a NUL-free copy on the heap
		pin.Pin(&b[0])
		ptrs[i] = uintptr(unsafe.Pointer(&b[0]))
		lens[i] = uintptr(len(b))
	}
	var st int32
	id := call(fns.CreateProgramWithSource, c.id, uintptr(len(sources)), uintptr(unsafe.Pointer(&ptrs[0])),
		uintptr(unsafe.Pointer(&lens[0])), uintptr(unsafe.Pointer(&st)))
	if err := check("clCreateProgramWithSource", st); err != nil {
		return nil, err
	}
	return &Program{id: id, devices: c.devices}, nil
}

// CreateProgramWithBinary creates a program from binaries that
// Program.Binaries returned earlier, one per device. The program must still
// be built (BuildProgram) before kernels are created from it. A binary the
// driver rejects gives an error wrapping InvalidBinary.
func (c *Context) CreateProgramWithBinary(devices []*Device, binaries [][]byte) (*Program, error) {
	if len(devices) == 0 || len(devices) != len(binaries) {
		return nil, &Error{Call: "clCreateProgramWithBinary", Subject: fmt.Sprintf("%d devices, %d binaries", len(devices), len(binaries)), Status: InvalidValue}
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	ids := pinnedUintptrs(&pin, len(devices))
	ptrs := pinnedUintptrs(&pin, len(devices))
	lens := pinnedUintptrs(&pin, len(devices))
	status := make([]int32, len(devices))
	pin.Pin(&status[0])
	for i, b := range binaries {
		if len(b) == 0 {
			return nil, &Error{Call: "clCreateProgramWithBinary", Subject: "empty binary", Status: InvalidBinary}
		}
		pin.Pin(&b[0])
		ids[i] = devices[i].id
		ptrs[i] = uintptr(unsafe.Pointer(&b[0]))
		lens[i] = uintptr(len(b))
	}
	var st int32
	id := call(fns.CreateProgramWithBinary, c.id, uintptr(len(devices)), uintptr(unsafe.Pointer(&ids[0])),
		uintptr(unsafe.Pointer(&lens[0])), uintptr(unsafe.Pointer(&ptrs[0])), uintptr(unsafe.Pointer(&status[0])),
		uintptr(unsafe.Pointer(&st)))
	if st == 0 {
		for _, s := range status {
			if s != 0 {
				st = s
			}
		}
		if st != 0 {
			(&Program{id: id}).Release()
		}
	}
	if err := check("clCreateProgramWithBinary", st); err != nil {
		return nil, err
	}
	return &Program{id: id, devices: append([]*Device(nil), devices...)}, nil
}

// BuildProgram compiles and links the program for devices (nil: every
// device of the program's context) with the given compiler options. A
// failed build returns an *Error whose Log holds each device's build log.
func (p *Program) BuildProgram(devices []*Device, options string) error {
	if devices == nil {
		devices = p.devices
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	var idsPtr uintptr
	if len(devices) > 0 {
		ids := pinnedUintptrs(&pin, len(devices))
		for i, d := range devices {
			ids[i] = d.id
		}
		idsPtr = uintptr(unsafe.Pointer(&ids[0]))
	}
	opts := append([]byte(options), 0)
	st := int32(call(fns.BuildProgram, p.id, uintptr(len(devices)), idsPtr, uintptr(unsafe.Pointer(&opts[0])), 0, 0))
	if st == 0 {
		return nil
	}
	e := &Error{Call: "clBuildProgram", Status: Status(st)}
	for _, d := range devices {
		if log, err := p.GetBuildLog(d); err == nil && log != "" {
			if len(devices) > 1 {
				e.Log += "[" + d.Name() + "]\n"
			}
			e.Log += log + "\n"
		}
	}
	return e
}

// GetBuildLog returns the compiler's log of the last build for device; it
// holds warnings even when the build succeeded.
func (p *Program) GetBuildLog(device *Device) (string, error) {
	var size uintptr
	st := int32(call(fns.GetProgramBuildInfo, p.id, device.id, programBuildLog, 0, 0, uintptr(unsafe.Pointer(&size))))
	if err := check("clGetProgramBuildInfo", st); err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil
	}
	buf := make([]byte, size)
	st = int32(call(fns.GetProgramBuildInfo, p.id, device.id, programBuildLog, size, uintptr(unsafe.Pointer(&buf[0])), 0))
	if err := check("clGetProgramBuildInfo", st); err != nil {
		return "", err
	}
	return cString(buf), nil
}

// Binaries returns the built program's binaries (CL_PROGRAM_BINARIES), one
// per device of the program in CL_PROGRAM_DEVICES order, for caching and
// CreateProgramWithBinary. A device with no binary gets nil.
func (p *Program) Binaries() ([][]byte, error) {
	var n uint32
	st := int32(call(fns.GetProgramInfo, p.id, programNumDevices, 4, uintptr(unsafe.Pointer(&n)), 0))
	if err := check("clGetProgramInfo", st); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	sizes := pinnedUintptrs(&pin, int(n))
	st = int32(call(fns.GetProgramInfo, p.id, programBinarySizes, uintptr(n)*unsafe.Sizeof(uintptr(0)),
		uintptr(unsafe.Pointer(&sizes[0])), 0))
	if err := check("clGetProgramInfo", st); err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	ptrs := pinnedUintptrs(&pin, int(n))
	for i, size := range sizes {
		if size == 0 {
			continue
		}
		out[i] = make([]byte, size)
		pin.Pin(&out[i][0])
		ptrs[i] = uintptr(unsafe.Pointer(&out[i][0]))
	}
	st = int32(call(fns.GetProgramInfo, p.id, programBinaries, uintptr(n)*unsafe.Sizeof(uintptr(0)),
		uintptr(unsafe.Pointer(&ptrs[0])), 0))
	if err := check("clGetProgramInfo", st); err != nil {
		return nil, err
	}
	return out, nil
}

// Release releases the program.
func (p *Program) Release() {
	if p != nil && p.id != 0 {
		call(fns.ReleaseProgram, p.id)
		p.id = 0
	}
}

// CreateKernel creates the kernel called name from the built program. A
// name the program lacks gives `clCreateKernel "name": CL_INVALID_KERNEL_NAME (-46)`.
func (p *Program) CreateKernel(name string) (*Kernel, error) {
	cname := append([]byte(name), 0)
	var st int32
	id := call(fns.CreateKernel, p.id, uintptr(unsafe.Pointer(&cname[0])), uintptr(unsafe.Pointer(&st)))
	if err := checkOn("clCreateKernel", name, st); err != nil {
		return nil, err
	}
	return &Kernel{id: id, name: name}, nil
}

// CreateKernels creates one kernel for every __kernel function of the
// built program (clCreateKernelsInProgram); a program with none returns none.
func (p *Program) CreateKernels() ([]*Kernel, error) {
	var n uint32
	st := int32(call(fns.CreateKernelsInProgram, p.id, 0, 0, uintptr(unsafe.Pointer(&n))))
	if err := check("clCreateKernelsInProgram", st); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	ids := pinnedUintptrs(&pin, int(n))
	st = int32(call(fns.CreateKernelsInProgram, p.id, uintptr(n), uintptr(unsafe.Pointer(&ids[0])), 0))
	if err := check("clCreateKernelsInProgram", st); err != nil {
		return nil, err
	}
	out := make([]*Kernel, n)
	for i, id := range ids {
		k := &Kernel{id: id}
		b, err := getInfo(fns.GetKernelInfo, "clGetKernelInfo", id, kernelFunctionName)
		if err != nil {
			for _, k := range ids {
				call(fns.ReleaseKernel, k)
			}
			return nil, err
		}
		k.name = cString(b)
		out[i] = k
	}
	return out, nil
}

// Name is the kernel's function name.
func (k *Kernel) Name() string { return k.name }

// NumArgs is CL_KERNEL_NUM_ARGS.
func (k *Kernel) NumArgs() (int, error) {
	b, err := getInfo(fns.GetKernelInfo, "clGetKernelInfo", k.id, kernelNumArgs)
	if err != nil {
		return 0, err
	}
	return int(nativeUint(b)), nil
}

func (k *Kernel) workGroupInfo(device *Device, param uint32) (int, error) {
	var v uintptr
	st := int32(call(fns.GetKernelWorkGroupInfo, k.id, device.id, uintptr(param), unsafe.Sizeof(v), uintptr(unsafe.Pointer(&v)), 0))
	if err := checkOn("clGetKernelWorkGroupInfo", k.name, st); err != nil {
		return 0, err
	}
	return int(v), nil
}

// WorkGroupSize is CL_KERNEL_WORK_GROUP_SIZE: the largest work-group this
// kernel can be launched with on device.
func (k *Kernel) WorkGroupSize(device *Device) (int, error) {
	return k.workGroupInfo(device, kernelWorkGroupSize)
}

// PreferredWorkGroupSizeMultiple is CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE
// (the warp or wavefront size on GPUs).
func (k *Kernel) PreferredWorkGroupSizeMultiple(device *Device) (int, error) {
	return k.workGroupInfo(device, kernelPreferredWorkGroupSizeMultiple)
}

// SetArgs sets the kernel's arguments in order, as SetArg.
func (k *Kernel) SetArgs(args ...any) error {
	for i, a := range args {
		if err := k.SetArg(i, a); err != nil {
			return err
		}
	}
	return nil
}

// SetArg sets argument index to arg, one of: *MemObject (nil: a NULL
// __global pointer), int32, uint32, int (as int32, range-checked), int64,
// uint64, float32, float64, LocalBuffer (__local memory of that many bytes).
func (k *Kernel) SetArg(index int, arg any) error {
	var st int32
	switch v := arg.(type) {
	case *MemObject:
		var h uintptr
		if v != nil {
			h = v.id
		}
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), unsafe.Sizeof(h), uintptr(unsafe.Pointer(&h))))
	case nil:
		var h uintptr
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), unsafe.Sizeof(h), uintptr(unsafe.Pointer(&h))))
	case LocalBuffer:
		if v <= 0 {
			return &Error{Call: "clSetKernelArg", Subject: fmt.Sprintf("%s arg %d: %d bytes of local memory", k.name, index, v), Status: InvalidArgSize}
		}
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), uintptr(v), 0))
	case int32:
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), 4, uintptr(unsafe.Pointer(&v))))
	case uint32:
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), 4, uintptr(unsafe.Pointer(&v))))
	case int:
		if v < math.MinInt32 || v > math.MaxInt32 {
			return &Error{Call: "clSetKernelArg", Subject: fmt.Sprintf("%s arg %d: %d does not fit a cl_int", k.name, index, v), Status: InvalidArgValue}
		}
		w := int32(v)
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), 4, uintptr(unsafe.Pointer(&w))))
	case int64:
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), 8, uintptr(unsafe.Pointer(&v))))
	case uint64:
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), 8, uintptr(unsafe.Pointer(&v))))
	case float32:
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), 4, uintptr(unsafe.Pointer(&v))))
	case float64:
		st = int32(call(fns.SetKernelArg, k.id, uintptr(index), 8, uintptr(unsafe.Pointer(&v))))
	default:
		return &Error{Call: "clSetKernelArg", Subject: fmt.Sprintf("%s arg %d: unsupported Go type %T", k.name, index, arg), Status: InvalidArgValue}
	}
	if st != 0 {
		return &Error{Call: "clSetKernelArg", Subject: fmt.Sprintf("%s arg %d (%T)", k.name, index, arg), Status: Status(st)}
	}
	return nil
}

// Release releases the kernel.
func (k *Kernel) Release() {
	if k != nil && k.id != 0 {
		call(fns.ReleaseKernel, k.id)
		k.id = 0
	}
}

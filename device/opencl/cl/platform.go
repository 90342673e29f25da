package cl

import (
	"strings"
	"unsafe"
)

// Platform is an OpenCL platform (one vendor's driver).
type Platform struct{ id uintptr }

// Device is an OpenCL device of a platform.
type Device struct{ id uintptr }

// DeviceType is a cl_device_type bitfield.
type DeviceType uint64

// Device types, as CL_DEVICE_TYPE_*.
const (
	DeviceTypeDefault     DeviceType = 1 << 0
	DeviceTypeCPU         DeviceType = 1 << 1
	DeviceTypeGPU         DeviceType = 1 << 2
	DeviceTypeAccelerator DeviceType = 1 << 3
	DeviceTypeCustom      DeviceType = 1 << 4
	DeviceTypeAll         DeviceType = 0xFFFFFFFF
)

// String names the type's bits without DEFAULT (which only says the driver
// prefers the device): "GPU", "CPU", "ACCELERATOR", "CUSTOM", joined by "|"
// when several are set; "DEFAULT" or "UNKNOWN" otherwise.
func (t DeviceType) String() string {
	var parts []string
	for _, b := range []struct {
		bit  DeviceType
		name string
	}{{DeviceTypeGPU, "GPU"}, {DeviceTypeCPU, "CPU"}, {DeviceTypeAccelerator, "ACCELERATOR"}, {DeviceTypeCustom, "CUSTOM"}} {
		if t&b.bit != 0 {
			parts = append(parts, b.name)
		}
	}
	switch {
	case len(parts) > 0:
		return strings.Join(parts, "|")
	case t&DeviceTypeDefault != 0:
		return "DEFAULT"
	}
	return "UNKNOWN"
}

// cl_platform_info and cl_device_info parameters used here.
const (
	platformProfile    = 0x0900
	platformVersion    = 0x0901
	platformName       = 0x0902
	platformVendor     = 0x0903
	platformExtensions = 0x0904

	deviceType                     = 0x1000
	deviceMaxComputeUnits          = 0x1002
	deviceMaxWorkItemDimensions    = 0x1003
	deviceMaxWorkGroupSize         = 0x1004
	deviceMaxWorkItemSizes         = 0x1005
	deviceMaxClockFrequency        = 0x100C
	deviceAddressBits              = 0x100D
	deviceMaxMemAllocSize          = 0x1010
	deviceMemBaseAddrAlign         = 0x1019
	deviceGlobalMemCacheSize       = 0x101E
	deviceGlobalMemSize            = 0x101F
	deviceLocalMemSize             = 0x1023
	deviceProfilingTimerResolution = 0x1025
	deviceAvailable                = 0x1027
	deviceCompilerAvailable        = 0x1028
	deviceName                     = 0x102B
	deviceVendor                   = 0x102C
	driverVersion                  = 0x102D
	deviceProfile                  = 0x102E
	deviceVersion                  = 0x102F
	deviceExtensions               = 0x1030
	devicePlatform                 = 0x1031
	deviceDoubleFPConfig           = 0x1032
	deviceHalfFPConfig             = 0x1033
	deviceOpenCLCVersion           = 0x103D
)

// GetPlatforms returns every OpenCL platform the ICD loader knows. With no
// OpenCL library on the machine it returns an error wrapping ErrNoRuntime;
// with a loader but no installed driver, typically CL_PLATFORM_NOT_FOUND_KHR.
func GetPlatforms() ([]*Platform, error) {
	if err := load(); err != nil {
		return nil, err
	}
	var n uint32
	st := int32(call(fns.GetPlatformIDs, 0, 0, uintptr(unsafe.Pointer(&n))))
	if err := check("clGetPlatformIDs", st); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	ids := make([]uintptr, n)
	st = int32(call(fns.GetPlatformIDs, uintptr(n), uintptr(unsafe.Pointer(&ids[0])), uintptr(unsafe.Pointer(&n))))
	if err := check("clGetPlatformIDs", st); err != nil {
		return nil, err
	}
	out := make([]*Platform, 0, n)
	for _, id := range ids[:min(int(n), len(ids))] {
		out = append(out, &Platform{id})
	}
	return out, nil
}

// getInfo runs the two-step size-then-value protocol of clGet*Info on obj.
func getInfo(fn uintptr, name string, obj uintptr, param uint32) ([]byte, error) {
	var size uintptr
	st := int32(call(fn, obj, uintptr(param), 0, 0, uintptr(unsafe.Pointer(&size))))
	if err := check(name, st); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	st = int32(call(fn, obj, uintptr(param), size, uintptr(unsafe.Pointer(&buf[0])), 0))
	if err := check(name, st); err != nil {
		return nil, err
	}
	return buf, nil
}

// cString converts a NUL-terminated info value to a Go string.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// leUint reads a little- or native-endian unsigned integer of 4 or 8 bytes.
func nativeUint(b []byte) uint64 {
	switch len(b) {
	case 4:
		return uint64(*(*uint32)(unsafe.Pointer(&b[0])))
	case 8:
		return *(*uint64)(unsafe.Pointer(&b[0]))
	}
	return 0
}

func (p *Platform) infoString(param uint32) string {
	b, err := getInfo(fns.GetPlatformInfo, "clGetPlatformInfo", p.id, param)
	if err != nil {
		return ""
	}
	return cString(b)
}

// Name is CL_PLATFORM_NAME, e.g. "NVIDIA CUDA" or "Portable Computing Language".
func (p *Platform) Name() string { return p.infoString(platformName) }

// Vendor is CL_PLATFORM_VENDOR.
func (p *Platform) Vendor() string { return p.infoString(platformVendor) }

// Version is CL_PLATFORM_VERSION, e.g. "OpenCL 3.0 CUDA 12.4.131".
func (p *Platform) Version() string { return p.infoString(platformVersion) }

// Profile is CL_PLATFORM_PROFILE: "FULL_PROFILE" or "EMBEDDED_PROFILE".
func (p *Platform) Profile() string { return p.infoString(platformProfile) }

// Extensions is CL_PLATFORM_EXTENSIONS, space separated.
func (p *Platform) Extensions() string { return p.infoString(platformExtensions) }

// GetDevices returns the platform's devices of the given type (DeviceTypeAll
// for every one). A platform with no such device returns an error wrapping
// DeviceNotFound, as clGetDeviceIDs does.
func (p *Platform) GetDevices(t DeviceType) ([]*Device, error) {
	var n uint32
	st := int32(call(fns.GetDeviceIDs, p.id, uintptr(t), 0, 0, uintptr(unsafe.Pointer(&n))))
	if err := check("clGetDeviceIDs", st); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, &Error{Call: "clGetDeviceIDs", Status: DeviceNotFound}
	}
	ids := make([]uintptr, n)
	st = int32(call(fns.GetDeviceIDs, p.id, uintptr(t), uintptr(n), uintptr(unsafe.Pointer(&ids[0])), uintptr(unsafe.Pointer(&n))))
	if err := check("clGetDeviceIDs", st); err != nil {
		return nil, err
	}
	out := make([]*Device, 0, n)
	for _, id := range ids[:min(int(n), len(ids))] {
		out = append(out, &Device{id})
	}
	return out, nil
}

func (d *Device) info(param uint32) []byte {
	b, err := getInfo(fns.GetDeviceInfo, "clGetDeviceInfo", d.id, param)
	if err != nil {
		return nil
	}
	return b
}

func (d *Device) infoString(param uint32) string { return cString(d.info(param)) }
func (d *Device) infoUint(param uint32) uint64   { return nativeUint(d.info(param)) }

// Name is CL_DEVICE_NAME, e.g. "NVIDIA H100 80GB HBM3".
func (d *Device) Name() string { return d.infoString(deviceName) }

// Vendor is CL_DEVICE_VENDOR.
func (d *Device) Vendor() string { return d.infoString(deviceVendor) }

// Version is CL_DEVICE_VERSION, e.g. "OpenCL 3.0 CUDA".
func (d *Device) Version() string { return d.infoString(deviceVersion) }

// DriverVersion is CL_DRIVER_VERSION.
func (d *Device) DriverVersion() string { return d.infoString(driverVersion) }

// Profile is CL_DEVICE_PROFILE.
func (d *Device) Profile() string { return d.infoString(deviceProfile) }

// OpenCLCVersion is CL_DEVICE_OPENCL_C_VERSION, e.g. "OpenCL C 1.2".
func (d *Device) OpenCLCVersion() string { return d.infoString(deviceOpenCLCVersion) }

// Extensions is CL_DEVICE_EXTENSIONS, space separated.
func (d *Device) Extensions() string { return d.infoString(deviceExtensions) }

// HasExtension reports whether Extensions lists ext.
func (d *Device) HasExtension(ext string) bool {
	for _, e := range strings.Fields(d.Extensions()) {
		if e == ext {
			return true
		}
	}
	return false
}

// Type is CL_DEVICE_TYPE.
func (d *Device) Type() DeviceType { return DeviceType(d.infoUint(deviceType)) }

// MaxComputeUnits is CL_DEVICE_MAX_COMPUTE_UNITS.
func (d *Device) MaxComputeUnits() int { return int(d.infoUint(deviceMaxComputeUnits)) }

// MaxClockFrequency is CL_DEVICE_MAX_CLOCK_FREQUENCY in MHz.
func (d *Device) MaxClockFrequency() int { return int(d.infoUint(deviceMaxClockFrequency)) }

// AddressBits is CL_DEVICE_ADDRESS_BITS (32 or 64).
func (d *Device) AddressBits() int { return int(d.infoUint(deviceAddressBits)) }

// GlobalMemSize is CL_DEVICE_GLOBAL_MEM_SIZE in bytes.
func (d *Device) GlobalMemSize() int64 { return int64(d.infoUint(deviceGlobalMemSize)) }

// GlobalMemCacheSize is CL_DEVICE_GLOBAL_MEM_CACHE_SIZE in bytes.
func (d *Device) GlobalMemCacheSize() int64 { return int64(d.infoUint(deviceGlobalMemCacheSize)) }

// MaxMemAllocSize is CL_DEVICE_MAX_MEM_ALLOC_SIZE: the largest single buffer, in bytes.
func (d *Device) MaxMemAllocSize() int64 { return int64(d.infoUint(deviceMaxMemAllocSize)) }

// LocalMemSize is CL_DEVICE_LOCAL_MEM_SIZE in bytes.
func (d *Device) LocalMemSize() int64 { return int64(d.infoUint(deviceLocalMemSize)) }

// MemBaseAddrAlign is CL_DEVICE_MEM_BASE_ADDR_ALIGN in bits.
func (d *Device) MemBaseAddrAlign() int { return int(d.infoUint(deviceMemBaseAddrAlign)) }

// MaxWorkGroupSize is CL_DEVICE_MAX_WORK_GROUP_SIZE.
func (d *Device) MaxWorkGroupSize() int { return int(d.infoUint(deviceMaxWorkGroupSize)) }

// MaxWorkItemDimensions is CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS.
func (d *Device) MaxWorkItemDimensions() int { return int(d.infoUint(deviceMaxWorkItemDimensions)) }

// MaxWorkItemSizes is CL_DEVICE_MAX_WORK_ITEM_SIZES, one per dimension.
func (d *Device) MaxWorkItemSizes() []int {
	b := d.info(deviceMaxWorkItemSizes)
	n := len(b) / int(unsafe.Sizeof(uintptr(0)))
	out := make([]int, n)
	for i := range out {
		out[i] = int(*(*uintptr)(unsafe.Pointer(&b[i*int(unsafe.Sizeof(uintptr(0)))])))
	}
	return out
}

// ProfilingTimerResolution is CL_DEVICE_PROFILING_TIMER_RESOLUTION in ns.
func (d *Device) ProfilingTimerResolution() int {
	return int(d.infoUint(deviceProfilingTimerResolution))
}

// Available is CL_DEVICE_AVAILABLE.
func (d *Device) Available() bool { return d.infoUint(deviceAvailable) != 0 }

// CompilerAvailable is CL_DEVICE_COMPILER_AVAILABLE.
func (d *Device) CompilerAvailable() bool { return d.infoUint(deviceCompilerAvailable) != 0 }

// DoubleFPConfig is CL_DEVICE_DOUBLE_FP_CONFIG; 0 means no double support.
func (d *Device) DoubleFPConfig() uint64 { return d.infoUint(deviceDoubleFPConfig) }

// HalfFPConfig is CL_DEVICE_HALF_FP_CONFIG; 0 (or an error, read as 0) means
// no half support.
func (d *Device) HalfFPConfig() uint64 { return d.infoUint(deviceHalfFPConfig) }

// FP64 reports whether the device computes in double precision
// (cl_khr_fp64, or a non-zero CL_DEVICE_DOUBLE_FP_CONFIG).
func (d *Device) FP64() bool { return d.HasExtension("cl_khr_fp64") || d.DoubleFPConfig() != 0 }

// FP16 reports whether the device computes in half precision (cl_khr_fp16).
func (d *Device) FP16() bool { return d.HasExtension("cl_khr_fp16") }

// Platform is CL_DEVICE_PLATFORM.
func (d *Device) Platform() *Platform {
	return &Platform{uintptr(d.infoUint(devicePlatform))}
}

package cl

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// Context is an OpenCL context over one or more devices of one platform.
type Context struct {
	id      uintptr
	devices []*Device
}

// CommandQueue is a command queue of one device.
type CommandQueue struct {
	id     uintptr
	device *Device
}

// MemObject is a buffer allocated in a Context.
type MemObject struct {
	id   uintptr
	size int
}

// Event tracks one enqueued command.
type Event struct{ id uintptr }

// MemFlag is a cl_mem_flags bitfield.
type MemFlag uint64

// Memory flags, as CL_MEM_*.
const (
	MemReadWrite    MemFlag = 1 << 0
	MemWriteOnly    MemFlag = 1 << 1
	MemReadOnly     MemFlag = 1 << 2
	MemUseHostPtr   MemFlag = 1 << 3
	MemAllocHostPtr MemFlag = 1 << 4
	MemCopyHostPtr  MemFlag = 1 << 5
)

// CommandQueueProperty is a cl_command_queue_properties bitfield.
type CommandQueueProperty uint64

// Command queue properties, as CL_QUEUE_*.
const (
	CommandQueueOutOfOrderExecModeEnable CommandQueueProperty = 1 << 0
	CommandQueueProfilingEnable          CommandQueueProperty = 1 << 1
)

// ProfilingInfo selects a timestamp of Event.GetEventProfilingInfo.
type ProfilingInfo uint32

// Profiling timestamps, as CL_PROFILING_COMMAND_*.
const (
	ProfilingInfoCommandQueued ProfilingInfo = 0x1280
	ProfilingInfoCommandSubmit ProfilingInfo = 0x1281
	ProfilingInfoCommandStart  ProfilingInfo = 0x1282
	ProfilingInfoCommandEnd    ProfilingInfo = 0x1283
)

const (
	contextPlatform             = 0x1084
	eventCommandExecutionStatus = 0x11D3
)

// CreateContext creates a context over devices, which must all belong to
// one platform (the first device's platform is named in the context
// properties, which some ICD loaders require).
func CreateContext(devices []*Device) (*Context, error) {
	if len(devices) == 0 {
		return nil, &Error{Call: "clCreateContext", Status: InvalidValue}
	}
	if err := load(); err != nil {
		return nil, err
	}
	ids := deviceIDs(devices)
	props := []uintptr{contextPlatform, devices[0].Platform().id, 0}
	var st int32
	id := call(fns.CreateContext, uintptr(unsafe.Pointer(&props[0])), uintptr(len(ids)),
		uintptr(unsafe.Pointer(&ids[0])), 0, 0, uintptr(unsafe.Pointer(&st)))
	if err := check("clCreateContext", st); err != nil {
		return nil, err
	}
	return &Context{id: id, devices: append([]*Device(nil), devices...)}, nil
}

func deviceIDs(devices []*Device) []uintptr {
	ids := make([]uintptr, len(devices))
	for i, d := range devices {
		ids[i] = d.id
	}
	return ids
}

// eventIDs returns an event wait list for a call, its length and address;
// pin keeps it in place until the caller unpins it after the call.
func eventIDs(pin *runtime.Pinner, events []*Event) (n, ptr uintptr) {
	if len(events) == 0 {
		return 0, 0
	}
	ids := pinnedUintptrs(pin, len(events))
	for i, e := range events {
		ids[i] = e.id
	}
	return uintptr(len(ids)), uintptr(unsafe.Pointer(&ids[0]))
}

// Release releases the context.
func (c *Context) Release() {
	if c != nil && c.id != 0 {
		call(fns.ReleaseContext, c.id)
		c.id = 0
	}
}

// Devices returns the devices the context was created with.
func (c *Context) Devices() []*Device { return append([]*Device(nil), c.devices...) }

// CreateCommandQueue creates an in-order queue on device (props may add
// CommandQueueProfilingEnable, or CommandQueueOutOfOrderExecModeEnable).
func (c *Context) CreateCommandQueue(device *Device, props CommandQueueProperty) (*CommandQueue, error) {
	var st int32
	id := call(fns.CreateCommandQueue, c.id, device.id, uintptr(props), uintptr(unsafe.Pointer(&st)))
	if err := check("clCreateCommandQueue", st); err != nil {
		return nil, err
	}
	return &CommandQueue{id: id, device: device}, nil
}

// CreateEmptyBuffer allocates size bytes of device memory with undefined contents.
func (c *Context) CreateEmptyBuffer(flags MemFlag, size int) (*MemObject, error) {
	if size <= 0 {
		return nil, &Error{Call: "clCreateBuffer", Subject: fmt.Sprintf("%d bytes", size), Status: InvalidBufferSize}
	}
	var st int32
	id := call(fns.CreateBuffer, c.id, uintptr(flags), uintptr(size), 0, uintptr(unsafe.Pointer(&st)))
	if err := checkOn("clCreateBuffer", fmt.Sprintf("%d bytes", size), st); err != nil {
		return nil, err
	}
	return &MemObject{id: id, size: size}, nil
}

// CreateBuffer allocates a buffer holding a copy of data (CL_MEM_COPY_HOST_PTR
// is added to flags).
func (c *Context) CreateBuffer(flags MemFlag, data []byte) (*MemObject, error) {
	if len(data) == 0 {
		return nil, &Error{Call: "clCreateBuffer", Subject: "0 bytes", Status: InvalidBufferSize}
	}
	var st int32
	id := call(fns.CreateBuffer, c.id, uintptr(flags|MemCopyHostPtr), uintptr(len(data)),
		uintptr(unsafe.Pointer(&data[0])), uintptr(unsafe.Pointer(&st)))
	if err := checkOn("clCreateBuffer", fmt.Sprintf("%d bytes", len(data)), st); err != nil {
		return nil, err
	}
	return &MemObject{id: id, size: len(data)}, nil
}

// Size is the buffer's size in bytes.
func (m *MemObject) Size() int { return m.size }

// Release releases the buffer. Commands already queued that use it still
// complete (OpenCL keeps it alive until they have).
func (m *MemObject) Release() {
	if m != nil && m.id != 0 {
		call(fns.ReleaseMemObject, m.id)
		m.id = 0
	}
}

// Device is the queue's device.
func (q *CommandQueue) Device() *Device { return q.device }

// Release releases the queue.
func (q *CommandQueue) Release() {
	if q != nil && q.id != 0 {
		call(fns.ReleaseCommandQueue, q.id)
		q.id = 0
	}
}

// Finish blocks until every command queued so far has completed (clFinish)
// and reports an error any of them raised.
func (q *CommandQueue) Finish() error {
	return check("clFinish", int32(call(fns.Finish, q.id)))
}

// Flush submits the queued commands to the device without waiting (clFlush).
func (q *CommandQueue) Flush() error {
	return check("clFlush", int32(call(fns.Flush, q.id)))
}

// newEvent returns the event written by an enqueue call, or nil.
func newEvent(id uintptr) *Event {
	if id == 0 {
		return nil
	}
	return &Event{id}
}

func boolArg(b bool) uintptr {
	if b {
		return 1
	}
	return 0
}

// EnqueueReadBuffer copies dataSize bytes of buffer at offset into dataPtr.
// With blocking set it returns when the copy (and all earlier commands of
// the in-order queue) have completed. The returned event must be Released.
func (q *CommandQueue) EnqueueReadBuffer(buffer *MemObject, blocking bool, offset, dataSize int, dataPtr unsafe.Pointer, eventWaitList []*Event) (*Event, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	n, wl := eventIDs(&pin, eventWaitList)
	var ev uintptr
	st := int32(call(fns.EnqueueReadBuffer, q.id, buffer.id, boolArg(blocking), uintptr(offset), uintptr(dataSize),
		uintptr(dataPtr), n, wl, uintptr(unsafe.Pointer(&ev))))
	if err := check("clEnqueueReadBuffer", st); err != nil {
		return nil, err
	}
	return newEvent(ev), nil
}

// EnqueueWriteBuffer copies dataSize bytes from dataPtr into buffer at
// offset. With blocking set dataPtr may be reused on return. The returned
// event must be Released.
func (q *CommandQueue) EnqueueWriteBuffer(buffer *MemObject, blocking bool, offset, dataSize int, dataPtr unsafe.Pointer, eventWaitList []*Event) (*Event, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	n, wl := eventIDs(&pin, eventWaitList)
	var ev uintptr
	st := int32(call(fns.EnqueueWriteBuffer, q.id, buffer.id, boolArg(blocking), uintptr(offset), uintptr(dataSize),
		uintptr(dataPtr), n, wl, uintptr(unsafe.Pointer(&ev))))
	if err := check("clEnqueueWriteBuffer", st); err != nil {
		return nil, err
	}
	return newEvent(ev), nil
}

// EnqueueCopyBuffer copies byteCount bytes from src at srcOffset to dst at
// dstOffset on the device. The returned event must be Released.
func (q *CommandQueue) EnqueueCopyBuffer(src, dst *MemObject, srcOffset, dstOffset, byteCount int, eventWaitList []*Event) (*Event, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	n, wl := eventIDs(&pin, eventWaitList)
	var ev uintptr
	st := int32(call(fns.EnqueueCopyBuffer, q.id, src.id, dst.id, uintptr(srcOffset), uintptr(dstOffset),
		uintptr(byteCount), n, wl, uintptr(unsafe.Pointer(&ev))))
	if err := check("clEnqueueCopyBuffer", st); err != nil {
		return nil, err
	}
	return newEvent(ev), nil
}

// EnqueueFillBuffer repeats the patternSize bytes at pattern over size bytes
// of buffer from offset (both multiples of patternSize, a power of two up
// to 128). OpenCL copies the pattern during the call. The returned event
// must be Released.
func (q *CommandQueue) EnqueueFillBuffer(buffer *MemObject, pattern unsafe.Pointer, patternSize, offset, size int, eventWaitList []*Event) (*Event, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	n, wl := eventIDs(&pin, eventWaitList)
	var ev uintptr
	st := int32(call(fns.EnqueueFillBuffer, q.id, buffer.id, uintptr(pattern), uintptr(patternSize),
		uintptr(offset), uintptr(size), n, wl, uintptr(unsafe.Pointer(&ev))))
	if err := check("clEnqueueFillBuffer", st); err != nil {
		return nil, err
	}
	return newEvent(ev), nil
}

// EnqueueNDRangeKernel queues kernel over the NDRange global (1 to 3
// dimensions), with work-group size local (nil lets the driver choose) and
// globalWorkOffset (nil for none). The returned event must be Released.
func (q *CommandQueue) EnqueueNDRangeKernel(kernel *Kernel, globalWorkOffset, globalWorkSize, localWorkSize []int, eventWaitList []*Event) (*Event, error) {
	var ev uintptr
	if err := q.enqueueNDRange(kernel, globalWorkOffset, globalWorkSize, localWorkSize, eventWaitList, &ev); err != nil {
		return nil, err
	}
	return newEvent(ev), nil
}

// EnqueueNDRangeKernelNoEvent is EnqueueNDRangeKernel without the event
// (a NULL event argument), for launches nothing waits on or profiles: it
// spares the driver an event object per launch.
func (q *CommandQueue) EnqueueNDRangeKernelNoEvent(kernel *Kernel, globalWorkOffset, globalWorkSize, localWorkSize []int, eventWaitList []*Event) error {
	return q.enqueueNDRange(kernel, globalWorkOffset, globalWorkSize, localWorkSize, eventWaitList, nil)
}

// enqueueNDRange calls clEnqueueNDRangeKernel, with ev as its event
// argument (nil: NULL).
func (q *CommandQueue) enqueueNDRange(kernel *Kernel, globalWorkOffset, globalWorkSize, localWorkSize []int, eventWaitList []*Event, ev *uintptr) error {
	dim := len(globalWorkSize)
	if dim < 1 || dim > 3 || (localWorkSize != nil && len(localWorkSize) != dim) || (globalWorkOffset != nil && len(globalWorkOffset) != dim) {
		return &Error{Call: "clEnqueueNDRangeKernel", Subject: kernel.name, Status: InvalidWorkDimension}
	}
	// One pinned heap array holds global, local and offset sizes as size_t,
	// and the event the call returns.
	var pin runtime.Pinner
	defer pin.Unpin()
	sizes := pinnedUintptrs(&pin, 10)
	var localPtr, offsetPtr uintptr
	for i := 0; i < dim; i++ {
		sizes[i] = uintptr(globalWorkSize[i])
	}
	if localWorkSize != nil {
		for i := 0; i < dim; i++ {
			sizes[3+i] = uintptr(localWorkSize[i])
		}
		localPtr = uintptr(unsafe.Pointer(&sizes[3]))
	}
	if globalWorkOffset != nil {
		for i := 0; i < dim; i++ {
			sizes[6+i] = uintptr(globalWorkOffset[i])
		}
		offsetPtr = uintptr(unsafe.Pointer(&sizes[6]))
	}
	n, wl := eventIDs(&pin, eventWaitList)
	var evPtr uintptr
	if ev != nil {
		evPtr = uintptr(unsafe.Pointer(&sizes[9]))
	}
	st := int32(call(fns.EnqueueNDRangeKernel, q.id, kernel.id, uintptr(dim), offsetPtr,
		uintptr(unsafe.Pointer(&sizes[0])), localPtr, n, wl, evPtr))
	if err := checkOn("clEnqueueNDRangeKernel", kernel.name, st); err != nil {
		return err
	}
	if ev != nil {
		*ev = sizes[9]
	}
	return nil
}

// Wait blocks until the event's command has completed and reports its error.
func (e *Event) Wait() error { return WaitForEvents([]*Event{e}) }

// WaitForEvents blocks until every event's command has completed.
func WaitForEvents(events []*Event) error {
	if len(events) == 0 {
		return nil
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	n, wl := eventIDs(&pin, events)
	st := int32(call(fns.WaitForEvents, n, wl))
	return check("clWaitForEvents", st)
}

// ExecutionStatus is CL_EVENT_COMMAND_EXECUTION_STATUS: CL_COMPLETE (0),
// CL_RUNNING (1), CL_SUBMITTED (2), CL_QUEUED (3), or a negative error status.
func (e *Event) ExecutionStatus() (int32, error) {
	var v int32
	st := int32(call(fns.GetEventInfo, e.id, eventCommandExecutionStatus, 4, uintptr(unsafe.Pointer(&v)), 0))
	if err := check("clGetEventInfo", st); err != nil {
		return 0, err
	}
	return v, nil
}

// GetEventProfilingInfo returns one of the command's device timestamps in
// nanoseconds. The queue must have been created with
// CommandQueueProfilingEnable and the command must have completed.
func (e *Event) GetEventProfilingInfo(param ProfilingInfo) (int64, error) {
	var v uint64
	st := int32(call(fns.GetEventProfilingInfo, e.id, uintptr(param), 8, uintptr(unsafe.Pointer(&v)), 0))
	if err := check("clGetEventProfilingInfo", st); err != nil {
		return 0, err
	}
	return int64(v), nil
}

// Duration waits for the command and returns how long it ran on the device
// (CL_PROFILING_COMMAND_END − CL_PROFILING_COMMAND_START).
func (e *Event) Duration() (time.Duration, error) {
	if err := e.Wait(); err != nil {
		return 0, err
	}
	start, err := e.GetEventProfilingInfo(ProfilingInfoCommandStart)
	if err != nil {
		return 0, err
	}
	end, err := e.GetEventProfilingInfo(ProfilingInfoCommandEnd)
	if err != nil {
		return 0, err
	}
	return time.Duration(end - start), nil
}

// Retain returns a second reference to the event (clRetainEvent), to be
// Released on its own.
func (e *Event) Retain() (*Event, error) {
	if err := check("clRetainEvent", int32(call(fns.RetainEvent, e.id))); err != nil {
		return nil, err
	}
	return &Event{e.id}, nil
}

// Release releases the event. The command it tracks is unaffected.
func (e *Event) Release() {
	if e != nil && e.id != 0 {
		call(fns.ReleaseEvent, e.id)
		e.id = 0
	}
}

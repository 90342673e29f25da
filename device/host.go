package device

import (
	"fmt"
	"unsafe"
)

// Float32Bytes views f as its bytes (host byte order, which every OpenCL
// device alexcl supports shares: little-endian).
func Float32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), len(f)*4)
}

// Int32Bytes views v as its bytes.
func Int32Bytes(v []int32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
}

// AllocFloat32 allocates a buffer of n float32 elements.
func AllocFloat32(d Device, n int) (Buffer, error) {
	if n <= 0 {
		return nil, fmt.Errorf("alloc %d float32 elements: size must be positive", n)
	}
	return d.Alloc(4 * n)
}

// Upload allocates a buffer holding a copy of src.
func Upload(d Device, src []float32) (Buffer, error) {
	b, err := AllocFloat32(d, len(src))
	if err != nil {
		return nil, err
	}
	if err := d.Write(b, 0, Float32Bytes(src)); err != nil {
		d.Free(b)
		return nil, err
	}
	return b, nil
}

// UploadInt32 allocates a buffer holding a copy of src.
func UploadInt32(d Device, src []int32) (Buffer, error) {
	if len(src) == 0 {
		return nil, fmt.Errorf("upload: empty int32 slice")
	}
	b, err := d.Alloc(4 * len(src))
	if err != nil {
		return nil, err
	}
	if err := d.Write(b, 0, Int32Bytes(src)); err != nil {
		d.Free(b)
		return nil, err
	}
	return b, nil
}

// ReadFloat32 returns the first n float32 elements of b.
func ReadFloat32(d Device, b Buffer, n int) ([]float32, error) {
	out := make([]float32, n)
	return out, d.Read(b, 0, Float32Bytes(out))
}

// ReadInt32 returns the first n int32 elements of b.
func ReadInt32(d Device, b Buffer, n int) ([]int32, error) {
	out := make([]int32, n)
	return out, d.Read(b, 0, Int32Bytes(out))
}

// HumanBytes formats a byte count in binary units ("1.5 GiB", "512 B"),
// as device info and memory messages show it.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

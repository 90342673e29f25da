package devicetest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/alexcl/alexcl/device"
)

// bufferCases checks Alloc, Write, Read, Copy, Fill, Free and MemStats.
func bufferCases() []Case {
	var cs []Case
	// Round trips of awkward byte sizes, up to one buffer above 64 MiB.
	for _, size := range []int{1, 7, 4, 13 * 4, 4097 * 4, 64<<20 + 4} {
		cs = append(cs, roundTripCase(size))
	}
	cs = append(cs,
		Case{"Alloc", "size 0 and negative", allocErrors},
		Case{"Write/Read", "at offsets and out of range", offsets},
		Case{"Copy", "offsets and out of range", copyCase},
		Case{"Free", "use after free wraps ErrFreed", freed},
		Case{"MemStats", "accounting", memStats},
		Case{"Info", "identity", info},
	)
	for _, n := range []int{1, 13, 4097} {
		cs = append(cs, fillCase(n))
	}
	return cs
}

// roundTripCase writes size random bytes and reads them back.
func roundTripCase(size int) Case {
	shape := fmt.Sprintf("%d bytes", size)
	return Case{"Write/Read", shape, func(d device.Device) Result {
		h := newHarness(d, "Write/Read", shape)
		if max := d.Info().MaxAlloc; max > 0 && int64(size) > max {
			h.res.Skip = fmt.Sprintf("%d bytes exceed the device's max allocation of %d", size, max)
			return h.finish()
		}
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(h.rng.Uint32())
		}
		b := h.alloc(size)
		if b != nil {
			h.run("Write", func() error { return d.Write(b, 0, src) })
		}
		got := make([]byte, size)
		if !h.failed() {
			h.must("Read", d.Read(b, 0, got))
		}
		if !h.failed() && !bytes.Equal(got, src) {
			i := 0
			for got[i] == src[i] {
				i++
			}
			h.res.BadIndex = i
			h.fail("byte %d: got %#x, want %#x", i, got[i], src[i])
		}
		return h.finish()
	}}
}

// allocErrors checks that zero and negative sizes are refused.
func allocErrors(d device.Device) Result {
	h := newHarness(d, "Alloc", "errors")
	for _, size := range []int{0, -4} {
		b, err := d.Alloc(size)
		if err == nil {
			h.fail("Alloc(%d): no error", size)
			d.Free(b)
		}
	}
	return h.finish()
}

// offsets writes and reads at byte offsets and checks that out-of-range
// offsets are refused.
func offsets(d device.Device) Result {
	h := newHarness(d, "Write/Read", "offsets")
	base := []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9} // (10)
	b := h.upload(base)
	if h.failed() {
		return h.finish()
	}
	h.must("Write at offset 12", d.Write(b, 12, device.Float32Bytes([]float32{-3, -4, -5})))
	want := []float32{0, 1, 2, -3, -4, -5, 6, 7, 8, 9}
	h.expectExact("after Write at offset 12", h.read(b, 10), want)
	part := make([]float32, 2)
	if !h.failed() {
		h.must("Read at offset 20", d.Read(b, 20, device.Float32Bytes(part)))
	}
	h.expectExact("Read at offset 20", part, want[5:7])
	last := make([]byte, 4)
	if !h.failed() {
		h.must("Read of the last 4 bytes", d.Read(b, 36, last))
	}
	four := make([]byte, 4)
	eight := make([]byte, 8)
	h.expectErr("Write of 8 bytes at offset 36 of 40", "", d.Write(b, 36, eight))
	h.expectErr("Write at offset -4", "", d.Write(b, -4, four))
	h.expectErr("Write at offset 40", "", d.Write(b, 40, four))
	h.expectErr("Read of 8 bytes at offset 36 of 40", "", d.Read(b, 36, eight))
	h.expectErr("Read at offset -1", "", d.Read(b, -1, four))
	h.expectErr("Read at offset 41", "", d.Read(b, 41, nil))
	// The refused calls must not have changed the buffer.
	h.expectExact("after the refused writes", h.read(b, 10), want)
	return h.finish()
}

// copyCase copies between buffers at offsets and checks range errors.
func copyCase(d device.Device) Result {
	h := newHarness(d, "Copy", "")
	src := h.normal(13, 1) // (13)
	dst := h.normal(17, 1) // (17)
	bs, bd := h.upload(src), h.upload(dst)
	if h.failed() {
		return h.finish()
	}
	h.run("Copy", func() error { return d.Copy(bd, 8, bs, 4, 20) })
	want := clone32(dst)
	copy(want[2:7], src[1:6])
	h.expectExact("dst", h.read(bd, 17), want)
	h.expectExact("src", h.read(bs, 13), src)
	h.expectErr("Copy past the end of src", "", d.Copy(bd, 0, bs, 40, 16))
	h.expectErr("Copy past the end of dst", "", d.Copy(bd, 60, bs, 0, 12))
	h.expectErr("Copy at a negative offset", "", d.Copy(bd, -4, bs, 0, 4))
	h.expectErr("Copy of a negative size", "", d.Copy(bd, 0, bs, 0, -4))
	if !h.failed() {
		h.must("Sync after the refused copies", d.Sync())
	}
	h.expectExact("dst after the refused copies", h.read(bd, 17), want)
	return h.finish()
}

// fillCase fills n elements with an awkward value.
func fillCase(n int) Case {
	shape := fmt.Sprintf("n=%d", n)
	return Case{"Fill", shape, func(d device.Device) Result {
		h := newHarness(d, "Fill", shape)
		b := h.garbage(n)
		for _, v := range []float32{-3.25, 0} {
			h.run("Fill", func() error { return d.Fill(b, v) })
			want := make([]float32, n)
			for i := range want {
				want[i] = v
			}
			h.expectExact(fmt.Sprintf("after Fill(%g)", v), h.read(b, n), want)
		}
		return h.finish()
	}}
}

// freed checks that every use of a freed buffer fails with ErrFreed.
func freed(d device.Device) Result {
	h := newHarness(d, "Free", "")
	live := h.upload([]float32{1, 2, 3, 4})
	dead := h.upload([]float32{1, 2, 3, 4})
	if h.failed() {
		return h.finish()
	}
	if !h.must("Free", h.free(dead)) {
		return h.finish()
	}
	four := make([]byte, 4)
	uses := []struct {
		what string
		err  error
	}{
		{"Write", d.Write(dead, 0, four)},
		{"Read", d.Read(dead, 0, four)},
		{"Fill", d.Fill(dead, 1)},
		{"Copy from", d.Copy(live, 0, dead, 0, 4)},
		{"Copy to", d.Copy(dead, 0, live, 0, 4)},
		{"ReLUForward", d.ReLUForward(dead, live, 1)},
		{"second Free", d.Free(dead)},
	}
	for _, u := range uses {
		if !errors.Is(u.err, device.ErrFreed) {
			h.fail("%s of a freed buffer: got error %v, want one wrapping device.ErrFreed", u.what, u.err)
		}
	}
	if !h.failed() {
		h.must("Sync", d.Sync())
	}
	h.expectExact("live buffer", h.read(live, 4), []float32{1, 2, 3, 4})
	return h.finish()
}

// memStats checks InUse, Peak and Buffers across allocations and frees.
func memStats(d device.Device) Result {
	h := newHarness(d, "MemStats", "")
	s0 := d.MemStats()
	sizes := []int{4, 4097 * 4, 13}
	var bufs []device.Buffer
	var sum int64
	for _, n := range sizes {
		bufs = append(bufs, h.alloc(n))
		sum += int64(n)
	}
	if h.failed() {
		return h.finish()
	}
	s1 := d.MemStats()
	if s1.InUse != s0.InUse+sum || s1.Buffers != s0.Buffers+len(sizes) || s1.Peak < s1.InUse {
		h.fail("after allocating %v bytes: %+v, started from %+v", sizes, s1, s0)
	}
	h.must("Free", h.free(bufs[1]))
	s2 := d.MemStats()
	if s2.InUse != s1.InUse-int64(sizes[1]) || s2.Buffers != s1.Buffers-1 || s2.Peak < s1.InUse {
		h.fail("after freeing %d bytes: %+v, was %+v", sizes[1], s2, s1)
	}
	return h.finish() // checks that InUse and Buffers return to s0
}

// info checks that the device describes itself.
func info(d device.Device) Result {
	h := newHarness(d, "Info", "")
	in := d.Info()
	if in.ID == "" || in.Name == "" || in.Type == "" {
		h.fail("Info lacks an ID, Name or Type: %+v", in)
	}
	if in.GlobalMem < 0 || in.MaxAlloc < 0 {
		h.fail("Info has negative memory sizes: %+v", in)
	}
	return h.finish()
}

package opencl

import (
	"errors"
	"testing"

	"github.com/alexcl/alexcl/device"
)

// TestWriteAsync runs the training loop's pattern: the step on one buffer
// is queued, then the next batch is copied into the other buffer while it
// runs. Every step must see exactly its own batch, so a kernel that ran
// before its copy finished, or a copy that overwrote a buffer still in use,
// shows up as a wrong value.
func TestWriteAsync(t *testing.T) {
	d := openTest(t)
	const n, steps = 1 << 22, 12
	var slots [2]device.Buffer
	var hosts [2][]float32
	var xfers [2]device.Transfer
	for s := range slots {
		b, err := device.AllocFloat32(d, n)
		if err != nil {
			t.Fatal(err)
		}
		slots[s], hosts[s] = b, make([]float32, n)
	}
	out, err := device.AllocFloat32(d, n)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(step, i int) float32 { return float32((step*7919+i)%2003) - 1000 }
	upload := func(step int) {
		s := step % 2
		if xfers[s] != nil {
			if err := xfers[s].Wait(); err != nil { // its memory is about to change
				t.Fatal(err)
			}
		}
		for i := range hosts[s] {
			hosts[s][i] = batch(step, i)
		}
		tr, err := d.WriteAsync(slots[s], 0, device.Float32Bytes(hosts[s]))
		if err != nil {
			t.Fatal(err)
		}
		xfers[s] = tr
	}
	upload(0)
	got := make([]float32, n)
	for step := range steps {
		if err := d.ReLUForward(slots[step%2], out, n); err != nil {
			t.Fatal(err)
		}
		if step+1 < steps {
			upload(step + 1)
		}
		if err := d.Read(out, 0, device.Float32Bytes(got)); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if want := max(batch(step, i), 0); v != want {
				t.Fatalf("step %d: out[%d] = %v, want %v", step, i, v, want)
			}
		}
	}
	for _, tr := range xfers {
		if err := tr.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := tr.Wait(); err != nil { // a second Wait returns the same
			t.Fatal(err)
		}
	}

	// An offset copy, then Sync: it waits for the transfer queue too.
	part := []float32{1, 2, 3}
	tr, err := d.WriteAsync(slots[0], 4*10, device.Float32Bytes(part))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Wait(); err != nil {
		t.Fatal(err)
	}
	back, err := device.ReadFloat32(d, slots[0], 14)
	if err != nil {
		t.Fatal(err)
	}
	if back[9] != batch(steps-2, 9) || back[10] != 1 || back[12] != 3 || back[13] != batch(steps-2, 13) {
		t.Errorf("after an offset copy: %v", back[9:14])
	}

	// A Read of the buffer being copied into waits for the copy; a Read of
	// another buffer need not, and the next kernel still does.
	next := make([]float32, n)
	for i := range next {
		next[i] = float32(i%7) - 3
	}
	if _, err := d.WriteAsync(slots[1], 0, device.Float32Bytes(next)); err != nil {
		t.Fatal(err)
	}
	if err := d.Read(out, 0, device.Float32Bytes(got[:4])); err != nil {
		t.Fatal(err)
	}
	if head, err := device.ReadFloat32(d, slots[1], 8); err != nil || head[0] != -3 || head[7] != -3 || head[6] != 3 {
		t.Errorf("read of a buffer just copied into: %v, %v", head, err)
	}
	if _, err := d.WriteAsync(slots[0], 0, device.Float32Bytes(next)); err != nil {
		t.Fatal(err)
	}
	if err := d.ReLUForward(slots[0], out, n); err != nil {
		t.Fatal(err)
	}
	if err := d.Read(out, 0, device.Float32Bytes(got)); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if want := max(next[i], 0); v != want {
			t.Fatalf("kernel after a copy and an unrelated read: out[%d] = %v, want %v", i, v, want)
		}
	}

	// Nothing to copy: a finished Transfer.
	if tr, err := d.WriteAsync(slots[0], 0, nil); err != nil || tr.Wait() != nil {
		t.Errorf("empty copy: %v", err)
	}
	// Bad ranges and freed buffers are errors, as for Write.
	if _, err := d.WriteAsync(slots[0], 4*n-4, device.Float32Bytes(part)); err == nil {
		t.Error("copy past the end accepted")
	}
	if _, err := d.WriteAsync(slots[0], -4, device.Float32Bytes(part)); err == nil {
		t.Error("negative offset accepted")
	}
	d.Free(slots[1])
	if _, err := d.WriteAsync(slots[1], 0, device.Float32Bytes(part)); !errors.Is(err, device.ErrFreed) {
		t.Errorf("copy to a freed buffer: %v", err)
	}
}

// TestWriteAsyncClose closes a device with a copy in flight: Close waits
// for it, and the Transfer still answers afterwards.
func TestWriteAsyncClose(t *testing.T) {
	requireOpenCL(t)
	d, err := Open(0, testOptions(sharedCache, nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := device.AllocFloat32(d, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	src := make([]float32, 1<<20)
	tr, err := d.WriteAsync(b, 0, device.Float32Bytes(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Wait(); err != nil {
		t.Errorf("Wait after Close: %v", err)
	}
	if _, err := d.WriteAsync(b, 0, device.Float32Bytes(src[:4])); err == nil {
		t.Error("WriteAsync on a closed device accepted")
	}
}

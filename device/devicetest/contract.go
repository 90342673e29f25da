package devicetest

import (
	"fmt"

	"github.com/alexcl/alexcl/device"
)

// contractCases checks that ops refuse buffers too small for their shape
// and invalid parameters with an error naming the op (device/doc.go, Sizes).
func contractCases() []Case {
	return []Case{
		{"Sizes", "each op with one buffer too small", sizeErrors},
		{"Shapes", "invalid shapes and parameters", shapeErrors},
	}
}

// sizeErrors calls every op with correctly sized buffers except one, which
// holds a single element, and requires an error naming the op.
func sizeErrors(d device.Device) Result {
	h := newHarness(d, "Sizes", "")
	cs := device.ConvShape{N: 2, C: 4, H: 6, W: 5, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}
	ps := device.PoolShape{N: 2, C: 3, H: 7, W: 7, Size: 3, Stride: 2}
	ls := device.LRNShape{N: 2, C: 7, H: 3, W: 3, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 2}
	// buf allocates n elements of zeros (valid int32 labels and indices too).
	buf := func(n int) device.Buffer { return h.upload(make([]float32, n)) }
	tiny := buf(1)
	type call struct {
		op   string
		args []int // element count of each buffer argument, in order
		f    func(b []device.Buffer) error
	}
	convX, convW, convY := cs.N*cs.C*cs.H*cs.W, cs.K*cs.C/cs.Groups*cs.R*cs.S, cs.N*cs.K*cs.OH()*cs.OW()
	poolX, poolY := ps.N*ps.C*ps.H*ps.W, ps.N*ps.C*ps.OH()*ps.OW()
	lrnX := ls.N * ls.C * ls.H * ls.W
	key := device.DropoutKey{Seed: 1}
	calls := []call{
		{"Gemm", []int{7 * 5, 5 * 3, 7 * 3}, func(b []device.Buffer) error { return d.Gemm(false, false, 7, 3, 5, 1, b[0], b[1], 0, b[2]) }},
		{"Gemm", []int{7 * 5, 5 * 3, 7 * 3}, func(b []device.Buffer) error { return d.Gemm(true, true, 7, 3, 5, 1, b[0], b[1], 1, b[2]) }},
		{"AddBias", []int{6 * 5, 5}, func(b []device.Buffer) error { return d.AddBias(b[0], b[1], 6, 5) }},
		{"BiasGrad", []int{6 * 5, 5}, func(b []device.Buffer) error { return d.BiasGrad(b[0], b[1], 6, 5) }},
		{"Conv2DForward", []int{convX, convW, cs.K, convY}, func(b []device.Buffer) error { return d.Conv2DForward(b[0], b[1], b[2], b[3], cs) }},
		{"Conv2DBackwardData", []int{convY, convW, convX}, func(b []device.Buffer) error { return d.Conv2DBackwardData(b[0], b[1], b[2], cs) }},
		{"Conv2DBackwardFilter", []int{convX, convY, convW, cs.K}, func(b []device.Buffer) error { return d.Conv2DBackwardFilter(b[0], b[1], b[2], b[3], cs) }},
		{"ReLUForward", []int{10, 10}, func(b []device.Buffer) error { return d.ReLUForward(b[0], b[1], 10) }},
		{"ReLUBackward", []int{10, 10, 10}, func(b []device.Buffer) error { return d.ReLUBackward(b[0], b[1], b[2], 10) }},
		{"MaxPoolForward", []int{poolX, poolY, poolY}, func(b []device.Buffer) error { return d.MaxPoolForward(b[0], b[1], b[2], ps) }},
		{"MaxPoolBackward", []int{poolY, poolY, poolX}, func(b []device.Buffer) error { return d.MaxPoolBackward(b[0], b[1], b[2], ps) }},
		{"LRNForward", []int{lrnX, lrnX, lrnX}, func(b []device.Buffer) error { return d.LRNForward(b[0], b[1], b[2], ls) }},
		{"LRNBackward", []int{lrnX, lrnX, lrnX, lrnX, lrnX}, func(b []device.Buffer) error { return d.LRNBackward(b[0], b[1], b[2], b[3], b[4], ls) }},
		{"DropoutForward", []int{10, 10}, func(b []device.Buffer) error { return d.DropoutForward(b[0], b[1], 10, 0.5, key) }},
		{"DropoutBackward", []int{10, 10}, func(b []device.Buffer) error { return d.DropoutBackward(b[0], b[1], 10, 0.5, key) }},
		{"SoftmaxCrossEntropy", []int{4 * 10, 4, 4, 4, 4 * 10}, func(b []device.Buffer) error { return d.SoftmaxCrossEntropy(b[0], b[1], b[2], b[3], b[4], 4, 10) }},
		{"SGDUpdate", []int{10, 10, 10}, func(b []device.Buffer) error { return d.SGDUpdate(b[0], b[1], b[2], 10, device.SGDParams{LR: 0.01}) }},
	}
	for _, c := range calls {
		full := make([]device.Buffer, len(c.args))
		for i, n := range c.args {
			full[i] = buf(n)
		}
		if h.failed() {
			return h.finish()
		}
		// The correctly sized call must succeed: otherwise the errors below prove nothing.
		h.must(c.op+" with correct sizes", c.f(full))
		for i := range c.args {
			args := append([]device.Buffer(nil), full...)
			args[i] = tiny
			h.expectErr(fmt.Sprintf("%s with argument %d holding 1 element of %d", c.op, i, c.args[i]), c.op, c.f(args))
			if c.op == "SoftmaxCrossEntropy" && i == 4 {
				continue // dlogits may be nil
			}
			args[i] = nil
			h.expectErr(fmt.Sprintf("%s with argument %d nil", c.op, i), c.op, c.f(args))
		}
		for _, b := range full {
			h.must("Free", h.free(b))
		}
	}
	if !h.failed() {
		h.must("Sync", d.Sync())
	}
	return h.finish()
}

// shapeErrors checks that invalid shapes and parameters are refused.
func shapeErrors(d device.Device) Result {
	h := newHarness(d, "Shapes", "")
	big := h.upload(make([]float32, 4096))
	if h.failed() {
		return h.finish()
	}
	badConv := device.ConvShape{N: 1, C: 3, H: 5, W: 5, K: 4, R: 3, S: 3, Stride: 1, Pad: 0, Groups: 2} // C % Groups != 0
	h.expectErr("Conv2DForward with C=3, groups=2", "Conv2DForward", d.Conv2DForward(big, big, big, big, badConv))
	h.expectErr("Conv2DBackwardData with C=3, groups=2", "Conv2DBackwardData", d.Conv2DBackwardData(big, big, big, badConv))
	h.expectErr("Conv2DBackwardFilter with C=3, groups=2", "Conv2DBackwardFilter", d.Conv2DBackwardFilter(big, big, big, big, badConv))
	bigFilter := device.ConvShape{N: 1, C: 2, H: 3, W: 3, K: 2, R: 5, S: 5, Stride: 1, Pad: 0, Groups: 1}
	h.expectErr("Conv2DForward with a 5x5 filter on 3x3", "Conv2DForward", d.Conv2DForward(big, big, big, big, bigFilter))
	badPool := device.PoolShape{N: 1, C: 1, H: 2, W: 2, Size: 3, Stride: 2}
	h.expectErr("MaxPoolForward with a 3x3 window on 2x2", "MaxPoolForward", d.MaxPoolForward(big, big, big, badPool))
	h.expectErr("MaxPoolBackward with a 3x3 window on 2x2", "MaxPoolBackward", d.MaxPoolBackward(big, big, big, badPool))
	badLRN := device.LRNShape{N: 1, C: 4, H: 2, W: 2, Size: 5, Alpha: 1e-4, Beta: 0.75, K: 0}
	h.expectErr("LRNForward with k=0", "LRNForward", d.LRNForward(big, big, big, badLRN))
	h.expectErr("LRNBackward with k=0", "LRNBackward", d.LRNBackward(big, big, big, big, big, badLRN))
	key := device.DropoutKey{}
	h.expectErr("DropoutForward with p=1", "DropoutForward", d.DropoutForward(big, big, 8, 1, key))
	h.expectErr("DropoutForward with p=-0.1", "DropoutForward", d.DropoutForward(big, big, 8, -0.1, key))
	h.expectErr("DropoutBackward with p=1", "DropoutBackward", d.DropoutBackward(big, big, 8, 1, key))
	if !h.failed() {
		h.must("Sync after the refused ops", d.Sync())
	}
	// Labels outside [0, classes) are an error, raised by the op or, on a
	// device that only sees them while the kernel runs, by the next Sync.
	for _, label := range []int32{5, -1} {
		labels := h.uploadInt32([]int32{0, label})
		logits, loss, rank := h.upload(make([]float32, 2*5)), h.alloc(8), h.alloc(8)
		if h.failed() {
			break
		}
		err := d.SoftmaxCrossEntropy(logits, labels, loss, rank, nil, 2, 5)
		if err == nil {
			err = d.Sync()
		}
		h.expectErr(fmt.Sprintf("SoftmaxCrossEntropy with label %d of 5 classes", label), "", err)
		if !h.failed() {
			h.must("Sync after the refused labels (the error must be reported once)", d.Sync())
		}
	}
	return h.finish()
}

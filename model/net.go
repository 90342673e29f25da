package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/alexcl/alexcl/device"
)

// Param is one named parameter tensor on the device with its gradient and
// momentum. Names and shapes are PyTorch's (features.0.weight, conv
// [K, C/groups, R, S], linear [out, in]).
type Param struct {
	Name  string
	Shape []int
	// W is the value, G the gradient (accumulated by Backward), V the SGD
	// velocity in the device's form v ← μv − λ·lr·w − lr·g, which is −lr
	// times PyTorch's momentum_buffer.
	W, G, V device.Buffer
	// N is the number of float32 elements.
	N int
}

// layer is one layer of a built Net with its device buffers.
type layer struct {
	LayerInfo
	w, b *Param
	// y is the layer's own output (N, Out), nil when it works in place on
	// its input. aux is the LRN scale (N, Out) or the pool's int32 argmax
	// (N, Out); nil otherwise.
	y, aux  device.Buffer
	inplace bool

	// Set by the last Forward: the input and output buffers it used, and
	// whether dropout was applied.
	x, out  device.Buffer
	dropped bool
}

// Net is a network built on a Device for a maximum batch size. Every
// parameter, gradient, velocity, activation and scratch buffer is
// allocated once by New; Forward, Loss, Backward and Step allocate nothing.
//
// A training step is:
//
//	logits, _ := net.Forward(x, n, true, step)   // x is (n, C, H, W)
//	net.Loss(labels, n)                          // labels is (n) int32
//	net.Backward(n)
//	net.Step(device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4})
//	loss, top1, top5, _ := net.ReadLoss(n)       // the only read-back
type Net struct {
	d      device.Device
	cfg    Config
	batch  int
	layers []*layer
	params []*Param
	seed   uint64
	bufs   []device.Buffer // everything New allocated, for Close

	grad     [2]device.Buffer // activation-gradient ping-pong, batch × largest activation
	loss     device.Buffer    // loss is (N)
	rank     device.Buffer    // rank is (N) int32
	dlogits  device.Buffer    // dlogits is (N, classes)
	hostLoss []float32
	hostRank []int32

	logits                device.Buffer
	fwdN, lossN           int
	fwdStep               uint64
	haveForward, haveLoss bool
	closed                bool
}

// plan decides which layers work in place and returns the per-sample
// float32 elements of activation and scratch memory a Net needs in training.
//
// ReLU and dropout work in place when the layer before them is conv,
// linear or maxpool, whose backward passes do not read their own output.
// After LRN (whose backward reads its output) or on the net's input they
// get their own buffer.
func plan(layers []LayerInfo) (inplace []bool, perSample int) {
	inplace = make([]bool, len(layers))
	maxAct := 0
	for i, l := range layers {
		maxAct = max(maxAct, l.In.Len(), l.Out.Len())
		switch l.Layer.Type {
		case ReLU, Dropout:
			if i > 0 {
				switch layers[i-1].Layer.Type {
				case Conv, Linear, MaxPool:
					inplace[i] = true
				}
			}
			if !inplace[i] {
				perSample += l.Out.Len()
			}
		case LRN, MaxPool:
			perSample += 2 * l.Out.Len() // y and scale / argmax
		default:
			perSample += l.Out.Len()
		}
	}
	classes := layers[len(layers)-1].Out.Len()
	perSample += 2*maxAct + classes + 2 // gradient ping-pong, dlogits, loss, rank
	return inplace, perSample
}

// activationFloats is the per-sample float32 count of plan.
func activationFloats(layers []LayerInfo) int {
	_, n := plan(layers)
	return n
}

// DeviceBytes is the device memory a Net of c needs for the given batch:
// parameters, gradients and velocities plus activations and scratch.
func (c Config) DeviceBytes(batch int) (int64, error) {
	layers, err := c.Layers()
	if err != nil {
		return 0, err
	}
	if batch < 0 {
		return 0, fmt.Errorf("batch %d must not be negative", batch)
	}
	fixed, perImage := memoryOf(layers)
	need, ok := memoryNeed(fixed, perImage, batch)
	if !ok {
		return 0, fmt.Errorf("batch %d needs more than %d bytes of device memory (%d bytes per image)", batch, int64(math.MaxInt64), perImage)
	}
	return need, nil
}

// memoryOf is the device memory of a Net of layers in bytes: fixed
// (parameters, gradients and velocities) and perImage (activations and
// scratch per sample of the batch).
func memoryOf(layers []LayerInfo) (fixed, perImage int64) {
	params, _ := Totals(layers)
	_, per := plan(layers)
	return 4 * 3 * int64(params), 4 * int64(per)
}

// memoryNeed is fixed + batch·perImage, and false if that overflows int64.
func memoryNeed(fixed, perImage int64, batch int) (int64, bool) {
	if perImage > 0 && int64(batch) > (math.MaxInt64-fixed)/perImage {
		return 0, false
	}
	return fixed + int64(batch)*perImage, true
}

// New builds c on d for batches of up to batch samples. It checks first
// that everything fits in the device's memory and says which batch would.
// The parameters are uninitialised: call Init or Load.
func New(d device.Device, c Config, batch int) (*Net, error) {
	infos, err := c.Layers()
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", c.Name, err)
	}
	if batch < 1 {
		return nil, fmt.Errorf("network %s: batch %d must be positive", c.Name, batch)
	}
	if err := checkMemory(d, c, infos, batch); err != nil {
		return nil, err
	}
	inplace, _ := plan(infos)
	n := &Net{d: d, cfg: c.clone(), batch: batch}
	fail := func(err error) (*Net, error) {
		n.Close()
		return nil, err
	}
	maxAct := 0
	for i, li := range infos {
		l := &layer{LayerInfo: li, inplace: inplace[i]}
		n.layers = append(n.layers, l)
		maxAct = max(maxAct, li.In.Len(), li.Out.Len())
		out := batch * li.Out.Len()
		if li.WeightShape != nil {
			if l.w, err = n.newParam(li.Name+".weight", li.WeightShape); err != nil {
				return fail(err)
			}
			if l.b, err = n.newParam(li.Name+".bias", li.BiasShape); err != nil {
				return fail(err)
			}
		}
		if !l.inplace {
			if l.y, err = n.alloc(li.Name+" output", out); err != nil {
				return fail(err)
			}
		}
		if li.Layer.Type == LRN || li.Layer.Type == MaxPool {
			if l.aux, err = n.alloc(li.Name+" scratch", out); err != nil {
				return fail(err)
			}
		}
	}
	for i := range n.grad {
		if n.grad[i], err = n.alloc("activation gradient", batch*maxAct); err != nil {
			return fail(err)
		}
	}
	classes := infos[len(infos)-1].Out.Len()
	if n.loss, err = n.alloc("loss", batch); err != nil {
		return fail(err)
	}
	if n.rank, err = n.alloc("rank", batch); err != nil {
		return fail(err)
	}
	if n.dlogits, err = n.alloc("logit gradient", batch*classes); err != nil {
		return fail(err)
	}
	n.hostLoss = make([]float32, batch)
	n.hostRank = make([]int32, batch)
	return n, nil
}

// checkMemory says plainly when the net does not fit the device.
func checkMemory(d device.Device, c Config, infos []LayerInfo, batch int) error {
	info := d.Info()
	fixed, perImage := memoryOf(infos)
	need, ok := memoryNeed(fixed, perImage, batch)
	if !ok {
		return fmt.Errorf("network %s at batch %d: the memory it needs overflows a 64-bit count (%.2f MiB per image): use a smaller batch",
			c.Name, batch, float64(perImage)/(1<<20))
	}
	if info.GlobalMem > 0 && need > info.GlobalMem {
		fit := (info.GlobalMem - fixed) / perImage
		hint := fmt.Sprintf("use a batch of at most %d", fit)
		if fit < 1 {
			hint = "the parameters alone do not fit: use a smaller network or another device"
		}
		return fmt.Errorf("network %s at batch %d needs %.2f GiB of device memory (%.2f GiB of parameters, gradients and momentum + %.2f MiB per image), but %s (%s) has %.2f GiB: %s",
			c.Name, batch, gib(need), gib(fixed), float64(perImage)/(1<<20), info.ID, info.Name, gib(info.GlobalMem), hint)
	}
	if info.MaxAlloc > 0 {
		for _, l := range infos {
			if b := 4 * int64(l.Params); b > info.MaxAlloc {
				return fmt.Errorf("network %s: %s has %.2f GiB of parameters, more than the %.2f GiB a single buffer may hold on %s (%s)",
					c.Name, l.Name, gib(b), gib(info.MaxAlloc), info.ID, info.Name)
			}
			if b := 4 * int64(batch) * int64(max(l.In.Len(), l.Out.Len())); b > info.MaxAlloc {
				fit := info.MaxAlloc / (4 * int64(max(l.In.Len(), l.Out.Len())))
				return fmt.Errorf("network %s at batch %d: %s's activations need a %.2f GiB buffer, more than the %.2f GiB a single buffer may hold on %s (%s): use a batch of at most %d",
					c.Name, batch, l.Name, gib(b), gib(info.MaxAlloc), info.ID, info.Name, fit)
			}
		}
	}
	return nil
}

func gib(b int64) float64 { return float64(b) / (1 << 30) }

// alloc allocates a buffer of elems float32 (or int32) elements and
// remembers it for Close.
func (n *Net) alloc(what string, elems int) (device.Buffer, error) {
	b, err := device.AllocFloat32(n.d, elems)
	if err != nil {
		return nil, fmt.Errorf("network %s: allocate %s (%d floats): %w", n.cfg.Name, what, elems, err)
	}
	n.bufs = append(n.bufs, b)
	return b, nil
}

// newParam allocates a parameter with its gradient and velocity.
func (n *Net) newParam(name string, shape []int) (*Param, error) {
	p := &Param{Name: name, Shape: append([]int(nil), shape...), N: 1}
	for _, s := range shape {
		p.N *= s
	}
	var err error
	if p.W, err = n.alloc(name, p.N); err != nil {
		return nil, err
	}
	if p.G, err = n.alloc(name+" gradient", p.N); err != nil {
		return nil, err
	}
	if p.V, err = n.alloc(name+" velocity", p.N); err != nil {
		return nil, err
	}
	n.params = append(n.params, p)
	return p, nil
}

// Close frees every buffer of the net; the Device stays open. It is safe
// to call more than once.
func (n *Net) Close() error {
	if n == nil || n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	for _, b := range n.bufs {
		if err := n.d.Free(b); err != nil {
			errs = append(errs, err)
		}
	}
	n.bufs = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network %s: close: %w", n.cfg.Name, err)
	}
	return nil
}

// Config returns the configuration the net was built from.
func (n *Net) Config() Config { return n.cfg.clone() }

// Batch is the largest batch Forward accepts.
func (n *Net) Batch() int { return n.batch }

// Device is the device the net lives on.
func (n *Net) Device() device.Device { return n.d }

// Layers describes the net's layers.
func (n *Net) Layers() []LayerInfo {
	out := make([]LayerInfo, len(n.layers))
	for i, l := range n.layers {
		out[i] = l.LayerInfo
	}
	return out
}

// Params lists the parameters in PyTorch's order (features then
// classifier, weight before bias).
func (n *Net) Params() []*Param { return n.params }

// InputLen is the number of float32 elements of one input sample (C·H·W).
func (n *Net) InputLen() int { return n.layers[0].In.Len() }

// Classes is the number of logits per sample.
func (n *Net) Classes() int { return n.layers[len(n.layers)-1].Out.Len() }

// Seed is the dropout seed (set by Init and SetSeed).
func (n *Net) Seed() uint64 { return n.seed }

// SetSeed sets the dropout seed without touching the parameters (Init sets
// it too). Dropout masks are a function of (seed, step, layer Seq).
func (n *Net) SetSeed(seed uint64) { n.seed = seed }

func (n *Net) check(op string, nSamples int) error {
	if n.closed {
		return fmt.Errorf("network %s: %s: the net is closed", n.cfg.Name, op)
	}
	if nSamples < 1 || nSamples > n.batch {
		return fmt.Errorf("network %s: %s: %d samples, want 1 to %d (the batch the net was built for)", n.cfg.Name, op, nSamples, n.batch)
	}
	return nil
}

// Init sets the weights from N(0, std²), std = weight_std or, with init =
// "he", sqrt(2/fan_in), and each layer's biases to
// its bias_init, and zeroes gradients and velocities. The values are a
// function of seed alone (Philox4x32-10 keyed by seed, counter by
// parameter and element), the same on every device. seed also becomes the
// dropout seed.
func (n *Net) Init(seed uint64) error {
	if n.closed {
		return fmt.Errorf("network %s: init: the net is closed", n.cfg.Name)
	}
	n.seed = seed
	var host []float32
	pi := 0
	for _, l := range n.layers {
		if l.w == nil {
			continue
		}
		for _, p := range []*Param{l.w, l.b} {
			if cap(host) < p.N {
				host = make([]float32, p.N)
			}
			h := host[:p.N]
			if p == l.w {
				gaussian(h, seed, uint32(pi), n.cfg.weightStd(p.N/p.Shape[0]))
			} else {
				for i := range h {
					h[i] = float32(l.Layer.BiasInit)
				}
			}
			if err := n.d.Write(p.W, 0, device.Float32Bytes(h)); err != nil {
				return fmt.Errorf("network %s: init %s: %w", n.cfg.Name, p.Name, err)
			}
			if err := n.d.Fill(p.G, 0); err != nil {
				return fmt.Errorf("network %s: init %s: %w", n.cfg.Name, p.Name, err)
			}
			if err := n.d.Fill(p.V, 0); err != nil {
				return fmt.Errorf("network %s: init %s: %w", n.cfg.Name, p.Name, err)
			}
			pi++
		}
	}
	// Write returns once the host slice may be reused, but make sure
	// errors surface here rather than in the first step.
	if err := n.d.Sync(); err != nil {
		return fmt.Errorf("network %s: init: %w", n.cfg.Name, err)
	}
	return nil
}

// gaussian fills h with N(0, std²) values by Box–Muller over Philox4x32-10:
// counter (j, j>>32, param, "init"), key seed; each call gives four values.
func gaussian(h []float32, seed uint64, param uint32, std float64) {
	key := [2]uint32{uint32(seed), uint32(seed >> 32)}
	const tag = 0x696e6974 // "init"
	for j := 0; 4*j < len(h); j++ {
		r := device.Philox4x32([4]uint32{uint32(j), uint32(uint64(j) >> 32), param, tag}, key)
		for k := 0; k < 2; k++ {
			u1 := (float64(r[2*k]) + 1) / (1 << 32) // (0, 1]
			u2 := float64(r[2*k+1]) / (1 << 32)     // [0, 1)
			rad := std * math.Sqrt(-2*math.Log(u1))
			s, c := math.Sincos(2 * math.Pi * u2)
			if i := 4*j + 2*k; i < len(h) {
				h[i] = float32(rad * c)
			}
			if i := 4*j + 2*k + 1; i < len(h) {
				h[i] = float32(rad * s)
			}
		}
	}
}

// Forward runs the net on x, (nSamples, C, H, W) float32, and returns the
// logits buffer, (nSamples, classes), which the net owns and the next
// Forward overwrites. With train set, dropout layers drop with masks keyed
// by (seed, step, layer Seq); otherwise they pass their input through.
func (n *Net) Forward(x device.Buffer, nSamples int, train bool, step uint64) (device.Buffer, error) {
	if err := n.check("forward", nSamples); err != nil {
		return nil, err
	}
	if err := device.CheckBuf("forward", "input", x, nSamples*n.InputLen()); err != nil {
		return nil, fmt.Errorf("network %s: %w", n.cfg.Name, err)
	}
	n.haveForward, n.haveLoss = false, false
	cur := x
	for _, l := range n.layers {
		out := l.y
		if l.inplace {
			out = cur
		}
		l.x, l.dropped = cur, false
		in, o, ll := l.In, l.Out, l.Layer
		var err error
		switch ll.Type {
		case Conv:
			err = n.d.Conv2DForward(cur, l.w.W, l.b.W, out, l.convShape(nSamples))
		case ReLU:
			err = n.d.ReLUForward(cur, out, nSamples*o.Len())
		case LRN:
			err = n.d.LRNForward(cur, out, l.aux, l.lrnShape(nSamples))
		case MaxPool:
			err = n.d.MaxPoolForward(cur, out, l.aux, l.poolShape(nSamples))
		case Dropout:
			if !train || ll.P == 0 {
				out = cur
				break
			}
			l.dropped = true
			err = n.d.DropoutForward(cur, out, nSamples*o.Len(), float32(ll.P), n.dropoutKey(l, step))
		case Linear:
			// y (N, out) = x (N, in) · Wᵀ (in, out) + b
			err = n.d.Gemm(false, true, nSamples, o.C, in.Len(), 1, cur, l.w.W, 0, out)
			if err == nil {
				err = n.d.AddBias(out, l.b.W, nSamples, o.C)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("network %s: forward %s (%s, %s -> %s, batch %d): %w", n.cfg.Name, l.Name, l.Desc(), in, o, nSamples, err)
		}
		l.out = out
		cur = out
	}
	n.logits, n.fwdN, n.fwdStep, n.haveForward = cur, nSamples, step, true
	return cur, nil
}

func (n *Net) dropoutKey(l *layer, step uint64) device.DropoutKey {
	return device.DropoutKey{Seed: n.seed, Step: step, Layer: uint32(l.Seq)}
}

func (l *layer) convShape(nSamples int) device.ConvShape {
	return device.ConvShape{N: nSamples, C: l.In.C, H: l.In.H, W: l.In.W, K: l.Out.C, R: l.Layer.Kernel, S: l.Layer.Kernel,
		Stride: l.Layer.Stride, Pad: l.Layer.Pad, Groups: l.Layer.Groups}
}

func (l *layer) lrnShape(nSamples int) device.LRNShape {
	return device.LRNShape{N: nSamples, C: l.In.C, H: l.In.H, W: l.In.W, Size: l.Layer.Size,
		Alpha: float32(l.Layer.Alpha), Beta: float32(l.Layer.Beta), K: float32(l.Layer.K)}
}

func (l *layer) poolShape(nSamples int) device.PoolShape {
	return device.PoolShape{N: nSamples, C: l.In.C, H: l.In.H, W: l.In.W, Size: l.Layer.Size, Stride: l.Layer.Stride}
}

// Loss queues softmax cross-entropy of the last Forward's logits against
// labels, (nSamples) int32, into the net's loss, rank and logit-gradient
// buffers. The gradient is that of the batch mean loss. Nothing is read
// back: ReadLoss does that.
func (n *Net) Loss(labels device.Buffer, nSamples int) error {
	if err := n.check("loss", nSamples); err != nil {
		return err
	}
	if !n.haveForward || nSamples != n.fwdN {
		return fmt.Errorf("network %s: loss over %d samples needs a Forward of %d samples first", n.cfg.Name, nSamples, nSamples)
	}
	if err := n.d.SoftmaxCrossEntropy(n.logits, labels, n.loss, n.rank, n.dlogits, nSamples, n.Classes()); err != nil {
		return fmt.Errorf("network %s: loss: %w", n.cfg.Name, err)
	}
	n.lossN, n.haveLoss = nSamples, true
	return nil
}

// ReadLoss waits for the queued work and returns the summed cross-entropy
// of the last Loss's samples and how many were top-1 and top-5 hits. It
// reads only the small loss and rank buffers.
func (n *Net) ReadLoss(nSamples int) (lossSum float64, top1, top5 int, err error) {
	if err := n.check("read loss", nSamples); err != nil {
		return 0, 0, 0, err
	}
	if !n.haveLoss || nSamples != n.lossN {
		return 0, 0, 0, fmt.Errorf("network %s: read loss of %d samples needs a Loss of %d samples first", n.cfg.Name, nSamples, nSamples)
	}
	if err := n.d.Read(n.loss, 0, device.Float32Bytes(n.hostLoss[:nSamples])); err != nil {
		return 0, 0, 0, fmt.Errorf("network %s: read loss: %w", n.cfg.Name, err)
	}
	if err := n.d.Read(n.rank, 0, device.Int32Bytes(n.hostRank[:nSamples])); err != nil {
		return 0, 0, 0, fmt.Errorf("network %s: read rank: %w", n.cfg.Name, err)
	}
	for i := 0; i < nSamples; i++ {
		lossSum += float64(n.hostLoss[i])
		if n.hostRank[i] < 1 {
			top1++
		}
		// A rank of classes is no hit at any k (a NaN logit, a label out
		// of range), even where there are fewer than 5 classes.
		if n.hostRank[i] < min(5, int32(n.Classes())) {
			top5++
		}
	}
	return lossSum, top1, top5, nil
}

// ZeroGrad sets every parameter gradient to zero. Backward calls it first.
func (n *Net) ZeroGrad() error {
	for _, p := range n.params {
		if err := n.d.Fill(p.G, 0); err != nil {
			return fmt.Errorf("network %s: zero %s gradient: %w", n.cfg.Name, p.Name, err)
		}
	}
	return nil
}

// Backward zeroes the parameter gradients, then fills them with the
// gradient of the mean loss from the last Loss, back through the
// activations of the last Forward (which must have been over the same
// nSamples).
func (n *Net) Backward(nSamples int) error {
	if err := n.check("backward", nSamples); err != nil {
		return err
	}
	if !n.haveLoss || nSamples != n.lossN || nSamples != n.fwdN {
		return fmt.Errorf("network %s: backward over %d samples needs Forward and Loss over %d samples first", n.cfg.Name, nSamples, nSamples)
	}
	if err := n.ZeroGrad(); err != nil {
		return err
	}
	dy := n.dlogits
	next := 0 // n.grad[next] receives the next dx
	for i := len(n.layers) - 1; i >= 0; i-- {
		l := n.layers[i]
		if i == 0 && l.w == nil {
			break // nothing upstream needs a gradient
		}
		needDx := i > 0
		dx := n.grad[next]
		in, o, ll := l.In, l.Out, l.Layer
		swapped := true
		var err error
		switch ll.Type {
		case Conv:
			s := l.convShape(nSamples)
			err = n.d.Conv2DBackwardFilter(l.x, dy, l.w.G, l.b.G, s)
			if err == nil && needDx {
				err = n.d.Conv2DBackwardData(dy, l.w.W, dx, s)
			}
		case ReLU:
			err = n.d.ReLUBackward(l.out, dy, dy, nSamples*o.Len())
			swapped = false
		case LRN:
			err = n.d.LRNBackward(l.x, l.out, l.aux, dy, dx, l.lrnShape(nSamples))
		case MaxPool:
			err = n.d.MaxPoolBackward(l.aux, dy, dx, l.poolShape(nSamples))
		case Dropout:
			if !l.dropped {
				swapped = false
				break
			}
			err = n.d.DropoutBackward(dy, dx, nSamples*o.Len(), float32(ll.P), n.dropoutKey(l, n.fwdStep))
		case Linear:
			// db += Σ_n dy;  dW (out, in) += dyᵀ (out, N) · x (N, in);  dx (N, in) = dy (N, out) · W (out, in)
			err = n.d.BiasGrad(dy, l.b.G, nSamples, o.C)
			if err == nil {
				err = n.d.Gemm(true, false, o.C, in.Len(), nSamples, 1, dy, l.x, 1, l.w.G)
			}
			if err == nil && needDx {
				err = n.d.Gemm(false, false, nSamples, in.Len(), o.C, 1, dy, l.w.W, 0, dx)
			}
		}
		if err != nil {
			return fmt.Errorf("network %s: backward %s (%s, %s -> %s, batch %d): %w", n.cfg.Name, l.Name, l.Desc(), in, o, nSamples, err)
		}
		if swapped {
			dy = dx
			next = 1 - next
		}
	}
	return nil
}

// Step applies one SGD update (device.SGDParams) to every parameter from
// the gradients of the last Backward.
func (n *Net) Step(p device.SGDParams) error {
	if n.closed {
		return fmt.Errorf("network %s: step: the net is closed", n.cfg.Name)
	}
	for _, q := range n.params {
		if err := n.d.SGDUpdate(q.W, q.G, q.V, q.N, p); err != nil {
			return fmt.Errorf("network %s: SGD step on %s: %w", n.cfg.Name, q.Name, err)
		}
	}
	return nil
}

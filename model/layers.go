package model

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Shape is the shape of one sample's activation, channel-major. After the
// implicit flatten a classifier activation is Shape{C: features, H: 1, W: 1}.
type Shape struct{ C, H, W int }

// Len is the number of elements of one sample.
func (s Shape) Len() int { return s.C * s.H * s.W }

// String prints the shape Darknet-style as HxWxC.
func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C) }

// LayerInfo is one layer of a Config with every default resolved and its
// shapes, parameter count and cost worked out.
type LayerInfo struct {
	// Name is the PyTorch module path, "features.4"; the layer's
	// parameters are Name+".weight" and Name+".bias".
	Name string
	// Section is "features" or "classifier"; Index the position in it.
	Section string
	Index   int
	// Seq is the position over both lists (features first); it is the
	// Layer of the layer's dropout key.
	Seq int
	// Layer is the configured layer with defaults filled in: Stride,
	// Groups, LRN constants, a linear's Out, a dropout's effective P.
	Layer Layer
	// In and Out are the shapes of one sample.
	In, Out Shape
	// WeightShape and BiasShape are the PyTorch layouts of the parameters
	// (conv [K, C/groups, R, S], linear [out, in]); nil when none.
	WeightShape, BiasShape []int
	// Params is the number of parameters.
	Params int
	// FLOPs is the forward cost for one sample, counting a multiply-add as
	// 2 FLOPs. Only conv and linear layers are counted (as Darknet does);
	// ReLU, LRN, pooling and dropout are left out.
	FLOPs int64
}

// Desc is the layer's one-line description, as in Darknet: "conv 96 11x11/4".
func (li LayerInfo) Desc() string {
	l := li.Layer
	switch l.Type {
	case Conv:
		s := fmt.Sprintf("conv %d %dx%d/%d", l.Out, l.Kernel, l.Kernel, l.Stride)
		if l.Pad > 0 {
			s += fmt.Sprintf(" p%d", l.Pad)
		}
		if l.Groups > 1 {
			s += fmt.Sprintf(" g%d", l.Groups)
		}
		return s
	case LRN:
		return fmt.Sprintf("lrn %d a%g b%g k%g", l.Size, l.Alpha, l.Beta, l.K)
	case MaxPool:
		return fmt.Sprintf("max %dx%d/%d", l.Size, l.Size, l.Stride)
	case Dropout:
		return fmt.Sprintf("dropout %.2f", l.P)
	case Linear:
		return fmt.Sprintf("linear %d", l.Out)
	}
	return l.Type
}

// Limits on the sizes a Config may ask for. They are far above any network
// a device can hold, and they keep every count Layers and DeviceBytes work
// out well inside int64, so a config file can never make alexcl allocate
// without bound or overflow a size.
const (
	// MaxDim bounds every integer field: input sizes, classes, hidden,
	// and each layer's out, kernel, stride, pad, groups and size.
	MaxDim = 1 << 24
	// MaxTensor bounds the elements of one tensor: one sample's
	// activation of a layer, or a layer's weight (2^34 float32 = 64 GiB).
	MaxTensor = 1 << 34
	// MaxFLOPs bounds the forward FLOPs of one layer for one sample.
	MaxFLOPs = 1 << 50
)

// within reports whether the product of xs (each >= 1) is at most limit
// (> 0), without overflowing.
func within(limit int64, xs ...int) bool {
	p := int64(1)
	for _, x := range xs {
		if x < 1 || p > limit/int64(x) {
			return false
		}
		p *= int64(x)
	}
	return true
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Layers resolves c into per-layer shapes, parameter counts and FLOPs. It
// reports the first layer that cannot be built, naming it and its shapes.
func (c Config) Layers() ([]LayerInfo, error) {
	in := c.Input
	if in.Channels < 1 || in.Height < 1 || in.Width < 1 {
		return nil, fmt.Errorf("input %dx%dx%d (height x width x channels): every size must be positive", in.Height, in.Width, in.Channels)
	}
	if in.Channels > MaxDim || in.Height > MaxDim || in.Width > MaxDim {
		return nil, fmt.Errorf("input %dx%dx%d (height x width x channels): every size must be at most %d", in.Height, in.Width, in.Channels, MaxDim)
	}
	if !within(MaxTensor, in.Channels, in.Height, in.Width) {
		return nil, fmt.Errorf("input %dx%dx%d (height x width x channels): more than %d elements per image", in.Height, in.Width, in.Channels, int64(MaxTensor))
	}
	if c.Classes < 1 || c.Classes > MaxDim {
		return nil, fmt.Errorf("classes = %d: must be in [1, %d]", c.Classes, MaxDim)
	}
	if c.Hidden < 0 || c.Hidden > MaxDim {
		return nil, fmt.Errorf("hidden = %d: must be in [1, %d] (or left out)", c.Hidden, MaxDim)
	}
	if c.Dropout != nil && !(*c.Dropout >= 0 && *c.Dropout < 1) {
		return nil, fmt.Errorf("dropout = %g: must be in [0, 1)", *c.Dropout)
	}
	if c.Init != "" && c.Init != InitNormal && c.Init != InitHe {
		return nil, fmt.Errorf("init = %q: want %q (the paper's N(0, weight_std²)) or %q (N(0, 2/fan_in))", c.Init, InitNormal, InitHe)
	}
	if !(c.WeightStd >= 0) || !finite(c.WeightStd) {
		return nil, fmt.Errorf("weight_std = %g: must be a finite number >= 0", c.WeightStd)
	}
	if len(c.Classifier) == 0 || c.Classifier[len(c.Classifier)-1].Type != Linear {
		return nil, fmt.Errorf("classifier: the last layer must be linear (it produces the %d logits)", c.Classes)
	}
	last := c.lastLinear()
	cur := Shape{C: in.Channels, H: in.Height, W: in.Width}
	var out []LayerInfo
	for si, sec := range []struct {
		name   string
		layers []Layer
	}{{"features", c.Features}, {"classifier", c.Classifier}} {
		if si == 1 {
			cur = Shape{C: cur.Len(), H: 1, W: 1} // the implicit flatten
		}
		for i, l := range sec.layers {
			li := LayerInfo{Name: fmt.Sprintf("%s.%d", sec.name, i), Section: sec.name, Index: i, Seq: len(out), In: cur}
			if err := c.resolve(&li, l, si == 1 && i == last); err != nil {
				return nil, fmt.Errorf("%s %s: %w", li.Name, l.Type, err)
			}
			out = append(out, li)
			cur = li.Out
		}
	}
	return out, nil
}

// uses lists, per layer type, the Layer fields it may set.
var uses = map[string]string{
	Conv:    "out kernel stride pad groups bias_init",
	ReLU:    "",
	LRN:     "size alpha beta k",
	MaxPool: "size stride",
	Dropout: "p",
	Linear:  "out bias_init",
}

// resolve fills li.Layer, li.Out and the counts from l, or says why it can't.
func (c Config) resolve(li *LayerInfo, l Layer, lastLinear bool) error {
	allowed, ok := uses[l.Type]
	if !ok {
		return fmt.Errorf("unknown layer type %q (want conv, relu, lrn, maxpool, dropout or linear)", l.Type)
	}
	set := map[string]bool{
		"out": l.Out != 0, "kernel": l.Kernel != 0, "stride": l.Stride != 0, "pad": l.Pad != 0,
		"groups": l.Groups != 0, "size": l.Size != 0, "alpha": l.Alpha != 0, "beta": l.Beta != 0,
		"k": l.K != 0, "p": l.P != 0, "bias_init": l.BiasInit != 0,
	}
	for _, f := range []string{"out", "kernel", "stride", "pad", "groups", "size", "alpha", "beta", "k", "p", "bias_init"} {
		if set[f] && !strings.Contains(" "+allowed+" ", " "+f+" ") {
			return fmt.Errorf("key %q does not apply to a %s layer (it takes: %s)", f, l.Type, orNone(allowed))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"out", l.Out}, {"kernel", l.Kernel}, {"stride", l.Stride}, {"pad", l.Pad}, {"groups", l.Groups}, {"size", l.Size}} {
		if f.v > MaxDim {
			return fmt.Errorf("%s = %d: must be at most %d", f.name, f.v, MaxDim)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"alpha", l.Alpha}, {"beta", l.Beta}, {"k", l.K}, {"p", l.P}, {"bias_init", l.BiasInit}} {
		if !finite(f.v) {
			return fmt.Errorf("%s = %g: must be a finite number", f.name, f.v)
		}
	}
	if li.Section == "features" && l.Type == Linear {
		return fmt.Errorf("linear layers belong in the classifier (the flatten comes between the lists)")
	}
	if li.Section == "classifier" && (l.Type == Conv || l.Type == LRN || l.Type == MaxPool) {
		return fmt.Errorf("%s layers belong in features (the classifier sees flattened vectors)", l.Type)
	}
	in := li.In
	switch l.Type {
	case Conv:
		if l.Stride == 0 {
			l.Stride = 1
		}
		if l.Groups == 0 {
			l.Groups = 1
		}
		switch {
		case l.Out < 1 || l.Kernel < 1:
			return fmt.Errorf("out = %d, kernel = %d: both must be positive", l.Out, l.Kernel)
		case l.Stride < 1 || l.Pad < 0 || l.Groups < 1:
			return fmt.Errorf("stride = %d, pad = %d, groups = %d: stride and groups must be >= 1, pad >= 0", l.Stride, l.Pad, l.Groups)
		case in.C%l.Groups != 0 || l.Out%l.Groups != 0:
			return fmt.Errorf("input %s: %d input and %d output channels must both be divisible by groups = %d", in, in.C, l.Out, l.Groups)
		case in.H+2*l.Pad < l.Kernel || in.W+2*l.Pad < l.Kernel:
			return fmt.Errorf("input %s padded to %dx%d is smaller than the %dx%d kernel, output would be %s",
				in, in.H+2*l.Pad, in.W+2*l.Pad, l.Kernel, l.Kernel, Shape{l.Out, outSize(in.H, l.Kernel, l.Stride, l.Pad), outSize(in.W, l.Kernel, l.Stride, l.Pad)})
		}
		li.Out = Shape{C: l.Out, H: outSize(in.H, l.Kernel, l.Stride, l.Pad), W: outSize(in.W, l.Kernel, l.Stride, l.Pad)}
		li.WeightShape = []int{l.Out, in.C / l.Groups, l.Kernel, l.Kernel}
		li.BiasShape = []int{l.Out}
		if err := checkSizes(in, li.Out, li.WeightShape); err != nil {
			return err
		}
		li.Params = l.Out*in.C/l.Groups*l.Kernel*l.Kernel + l.Out
		li.FLOPs = 2 * int64(li.Out.Len()) * int64(in.C/l.Groups*l.Kernel*l.Kernel)
	case ReLU:
		li.Out = in
	case LRN:
		if l.Size == 0 {
			l.Size = DefaultLRNSize
		}
		if l.Alpha == 0 {
			l.Alpha = DefaultLRNAlpha
		}
		if l.Beta == 0 {
			l.Beta = DefaultLRNBeta
		}
		if l.K == 0 {
			l.K = DefaultLRNK
		}
		if l.Size < 1 || l.Alpha < 0 || l.K <= 0 {
			return fmt.Errorf("size = %d, alpha = %g, k = %g: size must be >= 1, alpha >= 0, k > 0", l.Size, l.Alpha, l.K)
		}
		li.Out = in
	case MaxPool:
		if l.Stride == 0 {
			l.Stride = l.Size
		}
		if l.Size < 1 || l.Stride < 1 {
			return fmt.Errorf("size = %d, stride = %d: both must be positive", l.Size, l.Stride)
		}
		if in.H < l.Size || in.W < l.Size {
			return fmt.Errorf("input %s is smaller than the %dx%d window, output would be %s",
				in, l.Size, l.Size, Shape{in.C, outSize(in.H, l.Size, l.Stride, 0), outSize(in.W, l.Size, l.Stride, 0)})
		}
		li.Out = Shape{C: in.C, H: outSize(in.H, l.Size, l.Stride, 0), W: outSize(in.W, l.Size, l.Stride, 0)}
	case Dropout:
		l.P = c.dropoutP(l)
		if l.P < 0 || l.P >= 1 {
			return fmt.Errorf("p = %g: must be in [0, 1)", l.P)
		}
		li.Out = in
	case Linear:
		switch {
		case lastLinear && l.Out == 0:
			l.Out = c.Classes
		case lastLinear && l.Out != c.Classes:
			return fmt.Errorf("out = %d: the last linear layer produces the logits, so out must equal classes = %d (or be left out)", l.Out, c.Classes)
		case l.Out == 0 && c.Hidden == 0:
			return fmt.Errorf("out is not set and the config has no hidden width: set `hidden` or this layer's `out`")
		case l.Out == 0:
			l.Out = c.Hidden
		case l.Out < 0:
			return fmt.Errorf("out = %d: must be positive", l.Out)
		}
		li.Out = Shape{C: l.Out, H: 1, W: 1}
		li.WeightShape = []int{l.Out, in.C}
		li.BiasShape = []int{l.Out}
		if err := checkSizes(in, li.Out, li.WeightShape); err != nil {
			return err
		}
		li.Params = l.Out*in.C + l.Out
		li.FLOPs = 2 * int64(l.Out) * int64(in.C)
	}
	li.Layer = l
	return nil
}

// checkSizes reports a layer whose output or weight is over MaxTensor
// elements, or whose forward pass is over MaxFLOPs per sample.
func checkSizes(in, out Shape, weight []int) error {
	if !within(MaxTensor, out.C, out.H, out.W) {
		return fmt.Errorf("input %s -> output %s: the output has more than %d elements per image", in, out, int64(MaxTensor))
	}
	if !within(MaxTensor, weight...) {
		return fmt.Errorf("input %s -> output %s: the weight %v has more than %d elements", in, out, weight, int64(MaxTensor))
	}
	if !within(MaxFLOPs/2, append([]int{out.C, out.H, out.W}, weight[1:]...)...) {
		return fmt.Errorf("input %s -> output %s: more than %d multiply-adds per image", in, out, int64(MaxFLOPs/2))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no keys"
	}
	return s
}

// outSize is the output length of a window of size k moved by stride over
// n inputs padded by pad on each side; it may be < 1 for impossible shapes.
func outSize(n, k, stride, pad int) int {
	if n+2*pad < k {
		return 0
	}
	return (n+2*pad-k)/stride + 1
}

// Totals sums the parameters and the forward FLOPs of one sample.
func Totals(layers []LayerInfo) (params int, flops int64) {
	for _, l := range layers {
		params += l.Params
		flops += l.FLOPs
	}
	return params, flops
}

// Summary prints one line per layer, Darknet style, and the totals:
//
//	features.0   conv 96 11x11/4   227x227x3 -> 55x55x96   34944 params  0.21 GFLOPs
//
// GFLOPs are forward, per image, counting a multiply-add as 2 FLOPs.
func (c Config) Summary(w io.Writer) error {
	layers, err := c.Layers()
	if err != nil {
		return err
	}
	name := c.Name
	if name == "" {
		name = "network"
	}
	if _, err := fmt.Fprintf(w, "%s: input %s, %d classes\n", name, Shape{c.Input.Channels, c.Input.Height, c.Input.Width}, c.Classes); err != nil {
		return err
	}
	type row struct{ name, desc, in, out, params, flops string }
	var rows []row
	shape := func(li LayerInfo, s Shape) string {
		if li.Section == "classifier" {
			return fmt.Sprint(s.C)
		}
		return s.String()
	}
	for i, li := range layers {
		if li.Section == "classifier" && li.Index == 0 {
			from := Shape{c.Input.Channels, c.Input.Height, c.Input.Width}
			if i > 0 {
				from = layers[i-1].Out
			}
			rows = append(rows, row{"", "flatten", from.String(), fmt.Sprint(from.Len()), "", ""})
		}
		r := row{li.Name, li.Desc(), shape(li, li.In), shape(li, li.Out), "", ""}
		if li.Params > 0 {
			r.params = fmt.Sprintf("%d params", li.Params)
		}
		if li.FLOPs > 0 {
			r.flops = fmt.Sprintf("%.3f GFLOPs", float64(li.FLOPs)/1e9)
		}
		rows = append(rows, r)
	}
	p, f := Totals(layers)
	total := row{"total", "", "", "", fmt.Sprintf("%d params", p), fmt.Sprintf("%.3f GFLOPs", float64(f)/1e9)}
	var wd [6]int
	for _, r := range append(rows, total) {
		for i, s := range []string{r.name, r.desc, r.in, r.out, r.params, r.flops} {
			wd[i] = max(wd[i], len(s))
		}
	}
	for _, r := range rows {
		arrow := "->"
		if r.in == "" {
			arrow = "  "
		}
		line := fmt.Sprintf("%-*s  %-*s  %*s %s %-*s  %*s  %*s", wd[0], r.name, wd[1], r.desc, wd[2], r.in, arrow, wd[3], r.out, wd[4], r.params, wd[5], r.flops)
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	pad := wd[0] + wd[1] + wd[2] + wd[3] + 8
	if _, err := fmt.Fprintf(w, "%-*s  %*s  %*s\n", pad, "total", wd[4], total.params, wd[5], total.flops); err != nil {
		return err
	}
	act := activationFloats(layers)
	_, err = fmt.Fprintf(w, "forward FLOPs per image count a multiply-add as 2 (conv and linear only)\n"+
		"memory: %.1f MiB of parameters (x3 with gradients and momentum), about %.2f MiB of activations per image in training\n",
		float64(4*p)/(1<<20), float64(4*act)/(1<<20))
	return err
}

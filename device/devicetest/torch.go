package devicetest

import (
	"embed"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
	"github.com/alexcl/alexcl/model/safetensors"
)

// The PyTorch fixtures written by ci/torch/layer_fixtures.py. They are
// embedded so that `alexcl selftest` can check a device against PyTorch
// without the source tree.
//
//go:embed testdata/torch/*.safetensors
var torchFiles embed.FS

// Fixture magic and version that layer_fixtures.py writes into each file.
const (
	torchMagic   = "alexcl-layer-fixture"
	torchVersion = "1"
)

// RunTorch runs every case of TorchCases on d as a subtest.
func RunTorch(t *testing.T, d device.Device) {
	t.Helper()
	cs := TorchCases()
	if len(cs) == 0 {
		t.Fatal("no PyTorch fixtures embedded; run /usr/bin/python3 ci/torch/layer_fixtures.py")
	}
	runCases(t, d, cs)
}

// TorchCases returns one case per embedded PyTorch fixture, comparing the
// device's ops with torch.nn.functional (outputs computed in float64 from
// the same float32 inputs). Tolerances are those of the reference cases.
func TorchCases() []Case {
	names, _ := torchFiles.ReadDir("testdata/torch")
	var cs []Case
	for _, e := range names {
		file := path.Join("testdata/torch", e.Name())
		fx, err := loadFixture(file)
		name := e.Name()[:len(e.Name())-len(".safetensors")]
		if err != nil {
			cs = append(cs, Case{"torch", name, func(device.Device) Result { return Result{BadIndex: -1, Err: err} }})
			continue
		}
		run, ok := torchRunners[fx.meta["op"]]
		if !ok {
			err := fmt.Errorf("%s: unknown op %q", file, fx.meta["op"])
			cs = append(cs, Case{"torch", name, func(device.Device) Result { return Result{BadIndex: -1, Err: err} }})
			continue
		}
		cs = append(cs, Case{"torch/" + fx.meta["op"], name + " " + fx.params(), func(d device.Device) Result {
			h := newHarness(d, "torch", name)
			run(h, fx)
			if fx.err != nil {
				h.fail("%s: %v", file, fx.err)
			}
			return h.finish()
		}})
	}
	return cs
}

// fixture is one decoded fixture file.
type fixture struct {
	meta map[string]string
	t    map[string]*safetensors.Tensor
	err  error // the first missing tensor or bad parameter
}

// loadFixture decodes an embedded fixture and checks its magic and version.
func loadFixture(file string) (*fixture, error) {
	raw, err := torchFiles.ReadFile(file)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if f.Meta["magic"] != torchMagic || f.Meta["version"] != torchVersion {
		return nil, fmt.Errorf("%s: magic %q version %q, want %q version %q; rerun ci/torch/layer_fixtures.py",
			file, f.Meta["magic"], f.Meta["version"], torchMagic, torchVersion)
	}
	fx := &fixture{meta: f.Meta, t: map[string]*safetensors.Tensor{}}
	for i := range f.Tensors {
		fx.t[f.Tensors[i].Name] = &f.Tensors[i]
	}
	return fx, nil
}

// params lists the shape parameters of the fixture for the case name.
func (fx *fixture) params() string {
	var keys []string
	for k := range fx.meta {
		switch k {
		case "magic", "version", "torch", "op":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	s := "torch=" + fx.meta["torch"]
	for _, k := range keys {
		s += " " + k + "=" + fx.meta[k]
	}
	return s
}

// f32 returns the float32 tensor called name.
func (fx *fixture) f32(name string) []float32 {
	t, ok := fx.t[name]
	if !ok || t.DType != safetensors.F32 {
		fx.setErr(fmt.Errorf("missing F32 tensor %q", name))
		return nil
	}
	return t.F32
}

// i32 returns the int32 tensor called name.
func (fx *fixture) i32(name string) []int32 {
	t, ok := fx.t[name]
	if !ok || t.DType != safetensors.I32 {
		fx.setErr(fmt.Errorf("missing I32 tensor %q", name))
		return nil
	}
	return t.I32
}

// int returns the integer parameter key.
func (fx *fixture) int(key string) int {
	v, err := strconv.Atoi(fx.meta[key])
	if err != nil {
		fx.setErr(fmt.Errorf("parameter %s: %w", key, err))
	}
	return v
}

// float returns the float parameter key.
func (fx *fixture) float(key string) float32 {
	v, err := strconv.ParseFloat(fx.meta[key], 32)
	if err != nil {
		fx.setErr(fmt.Errorf("parameter %s: %w", key, err))
	}
	return float32(v)
}

// setErr records the first error.
func (fx *fixture) setErr(err error) {
	if fx.err == nil {
		fx.err = err
	}
}

// ok reports whether every tensor and parameter was found and h has not failed.
func (fx *fixture) ok(h *harness) bool {
	if fx.err != nil {
		h.fail("%v", fx.err)
	}
	return !h.failed()
}

// torchRunners maps a fixture's op to the check that runs it.
var torchRunners = map[string]func(h *harness, fx *fixture){
	"conv2d":              torchConv,
	"max_pool2d":          torchPool,
	"local_response_norm": torchLRN,
	"relu":                torchReLU,
	"linear":              torchLinear,
	"cross_entropy":       torchCrossEntropy,
	"sgd":                 torchSGD,
}

// torchConv checks Conv2DForward, Conv2DBackwardData and Conv2DBackwardFilter
// (from zeroed dw and db) against torch.nn.functional.conv2d and autograd.
func torchConv(h *harness, fx *fixture) {
	s := device.ConvShape{N: fx.int("N"), C: fx.int("C"), H: fx.int("H"), W: fx.int("W"), K: fx.int("K"),
		R: fx.int("R"), S: fx.int("S"), Stride: fx.int("stride"), Pad: fx.int("pad"), Groups: fx.int("groups")}
	x, w, b, y, dy := fx.f32("x"), fx.f32("w"), fx.f32("b"), fx.f32("y"), fx.f32("dy")
	dx, dw, db := fx.f32("dx"), fx.f32("dw"), fx.f32("db")
	if !fx.ok(h) {
		return
	}
	d := h.d
	nx, nw, ny := len(x), len(w), len(y)
	X, W, B, Y := h.upload(x), h.upload(w), h.upload(b), h.garbage(ny)
	DY, DX, DW, DB := h.upload(dy), h.garbage(nx), h.upload(make([]float32, nw)), h.upload(make([]float32, s.K))
	h.run("Conv2DForward", func() error { return d.Conv2DForward(X, W, B, Y, s) })
	h.run("Conv2DBackwardData", func() error { return d.Conv2DBackwardData(DY, W, DX, s) })
	h.run("Conv2DBackwardFilter", func() error { return d.Conv2DBackwardFilter(X, DY, DW, DB, s) })
	by, bx, bw, bb := make([]float64, ny), make([]float64, nx), make([]float64, nw), make([]float64, s.K)
	ref.Conv2DForward(abs64(x), abs64(w), abs64(b), by, s)
	ref.Conv2DBackwardData(abs64(dy), abs64(w), bx, s)
	ref.Conv2DBackwardFilter(abs64(x), abs64(dy), bw, bb, s)
	// The fixture is rounded to float32: one more rounding on top of the sum bound.
	h.expect("y", h.read(Y, ny), f64(y), by, SumTol(s.C/s.Groups*s.R*s.S+1), 3*eps)
	h.expect("dx", h.read(DX, nx), f64(dx), bx, SumTol(s.K/s.Groups*s.R*s.S), 3*eps)
	h.expect("dw", h.read(DW, nw), f64(dw), bw, SumTol(s.N*s.OH()*s.OW()), 3*eps)
	h.expect("db", h.read(DB, s.K), f64(db), bb, SumTol(s.N*s.OH()*s.OW()), 3*eps)
}

// torchPool checks max pooling on distinct values: y, idx and dx exactly
// as PyTorch (indices are h*W+w within the plane in both).
func torchPool(h *harness, fx *fixture) {
	s := device.PoolShape{N: fx.int("N"), C: fx.int("C"), H: fx.int("H"), W: fx.int("W"), Size: fx.int("size"), Stride: fx.int("stride")}
	x, y, idx, dy, dx := fx.f32("x"), fx.f32("y"), fx.i32("idx"), fx.f32("dy"), fx.f32("dx")
	if !fx.ok(h) {
		return
	}
	d := h.d
	X, Y, IDX, DY, DX := h.upload(x), h.garbage(len(y)), h.garbage(len(y)), h.upload(dy), h.garbage(len(x))
	h.run("MaxPoolForward", func() error { return d.MaxPoolForward(X, Y, IDX, s) })
	h.expectExact("y", h.read(Y, len(y)), y)
	h.expectInt32("idx", h.readInt32(IDX, len(idx)), idx)
	h.run("MaxPoolBackward", func() error { return d.MaxPoolBackward(IDX, DY, DX, s) })
	bound := make([]float64, len(x))
	ref.MaxPoolBackward(idx, abs64(dy), bound, s)
	per := (s.Size + s.Stride - 1) / s.Stride
	h.expect("dx", h.read(DX, len(x)), f64(dx), bound, SumTol(per*per), 3*eps)
}

// torchLRN checks LRNForward and LRNBackward against local_response_norm.
// The backward pass is given the device's own y and scale, as in training.
func torchLRN(h *harness, fx *fixture) {
	s := device.LRNShape{N: fx.int("N"), C: fx.int("C"), H: fx.int("H"), W: fx.int("W"), Size: fx.int("size"),
		Alpha: fx.float("alpha"), Beta: fx.float("beta"), K: fx.float("k")}
	x, y, dy, dx := fx.f32("x"), fx.f32("y"), fx.f32("dy"), fx.f32("dx")
	if !fx.ok(h) {
		return
	}
	d, n := h.d, len(x)
	X, Y, SC, DY, DX := h.upload(x), h.garbage(n), h.garbage(n), h.upload(dy), h.garbage(n)
	h.run("LRNForward", func() error { return d.LRNForward(X, Y, SC, s) })
	h.expect("y", h.read(Y, n), f64(y), nil, 0, lrnTol)
	h.run("LRNBackward", func() error { return d.LRNBackward(X, Y, SC, DY, DX, s) })
	y64, sc64 := make([]float64, n), make([]float64, n)
	ref.LRNForward(f64(x), y64, sc64, s)
	negAbsX := abs64(x)
	for i := range negAbsX {
		negAbsX[i] = -negAbsX[i]
	}
	for i := range y64 {
		y64[i] = math.Abs(y64[i])
	}
	bound := make([]float64, n)
	ref.LRNBackward(negAbsX, y64, sc64, abs64(dy), bound, s)
	h.expect("dx", h.read(DX, n), f64(dx), bound, lrnTol, 3*eps)
}

// torchReLU checks ReLU forward and backward exactly, zeros included.
func torchReLU(h *harness, fx *fixture) {
	x, y, dy, dx := fx.f32("x"), fx.f32("y"), fx.f32("dy"), fx.f32("dx")
	if !fx.ok(h) {
		return
	}
	d, n := h.d, len(x)
	X, Y, DY, DX := h.upload(x), h.garbage(n), h.upload(dy), h.garbage(n)
	h.run("ReLUForward", func() error { return d.ReLUForward(X, Y, n) })
	h.expectExact("y", h.read(Y, n), y)
	h.run("ReLUBackward", func() error { return d.ReLUBackward(Y, DY, DX, n) })
	h.expectExact("dx", h.read(DX, n), dx)
}

// torchLinear checks a fully connected layer built from Gemm, AddBias and
// BiasGrad against torch.nn.functional.linear and its gradients:
//
//	y  = x·Wᵀ + b    Gemm(tB) then AddBias
//	dx = dy·W        Gemm
//	dW = dyᵀ·x       Gemm(tA)
//	db = Σ_N dy      BiasGrad into zeros
func torchLinear(h *harness, fx *fixture) {
	N, IN, OUT := fx.int("N"), fx.int("IN"), fx.int("OUT")
	x, w, b, y, dy := fx.f32("x"), fx.f32("w"), fx.f32("b"), fx.f32("y"), fx.f32("dy") // (N, IN) (OUT, IN) (OUT) (N, OUT) (N, OUT)
	dx, dw, db := fx.f32("dx"), fx.f32("dw"), fx.f32("db")                             // (N, IN) (OUT, IN) (OUT)
	if !fx.ok(h) {
		return
	}
	d := h.d
	X, W, B, Y := h.upload(x), h.upload(w), h.upload(b), h.garbage(N*OUT)
	DY, DX, DW, DB := h.upload(dy), h.garbage(N*IN), h.garbage(OUT*IN), h.upload(make([]float32, OUT))
	h.run("Gemm", func() error { return d.Gemm(false, true, N, OUT, IN, 1, X, W, 0, Y) })
	h.run("AddBias", func() error { return d.AddBias(Y, B, N, OUT) })
	h.run("Gemm", func() error { return d.Gemm(false, false, N, IN, OUT, 1, DY, W, 0, DX) })
	h.run("Gemm", func() error { return d.Gemm(true, false, OUT, IN, N, 1, DY, X, 0, DW) })
	h.run("BiasGrad", func() error { return d.BiasGrad(DY, DB, N, OUT) })
	by, bx, bw, bb := make([]float64, N*OUT), make([]float64, N*IN), make([]float64, OUT*IN), make([]float64, OUT)
	ref.Gemm(false, true, N, OUT, IN, 1, abs64(x), abs64(w), 0, by)
	ref.AddBias(by, abs64(b), N, OUT)
	ref.Gemm(false, false, N, IN, OUT, 1, abs64(dy), abs64(w), 0, bx)
	ref.Gemm(true, false, OUT, IN, N, 1, abs64(dy), abs64(x), 0, bw)
	ref.BiasGrad(abs64(dy), bb, N, OUT)
	h.expect("y", h.read(Y, N*OUT), f64(y), by, SumTol(IN+2), 3*eps)
	h.expect("dx", h.read(DX, N*IN), f64(dx), bx, SumTol(OUT), 3*eps)
	h.expect("dw", h.read(DW, OUT*IN), f64(dw), bw, SumTol(N), 3*eps)
	h.expect("db", h.read(DB, OUT), f64(db), bb, SumTol(N), 3*eps)
}

// torchCrossEntropy checks per-sample loss, their mean (F.cross_entropy's
// default reduction), dlogits of the mean, and the top-1/top-5 ranks.
func torchCrossEntropy(h *harness, fx *fixture) {
	n, classes := fx.int("N"), fx.int("classes")
	logits, labels, loss, mean := fx.f32("logits"), fx.i32("labels"), fx.f32("loss"), fx.f32("mean")
	dlogits, rank, top1, top5 := fx.f32("dlogits"), fx.i32("rank"), fx.i32("top1"), fx.i32("top5")
	if !fx.ok(h) {
		return
	}
	d := h.d
	L, LAB, LOSS, RANK, DL := h.upload(logits), h.uploadInt32(labels), h.garbage(n), h.garbage(n), h.garbage(n*classes)
	h.run("SoftmaxCrossEntropy", func() error { return d.SoftmaxCrossEntropy(L, LAB, LOSS, RANK, DL, n, classes) })
	sumErr := 2 * float64(classes+8) * eps
	got := h.read(LOSS, n)
	h.expect("loss", got, f64(loss), nil, sumErr, 8*eps)
	if !h.failed() {
		var m float64
		for _, v := range got {
			m += float64(v)
		}
		h.expect("mean loss", []float32{float32(m / float64(n))}, f64(mean), nil, sumErr, 8*eps)
	}
	gotRank := h.readInt32(RANK, n)
	h.expectInt32("rank", gotRank, rank)
	if !h.failed() {
		hit1, hit5 := make([]int32, n), make([]int32, n)
		for i, r := range gotRank {
			if r < 1 {
				hit1[i] = 1
			}
			if r < 5 {
				hit5[i] = 1
			}
		}
		h.expectInt32("top-1 hit", hit1, top1)
		h.expectInt32("top-5 hit", hit5, top5)
	}
	h.expect("dlogits", h.read(DL, n*classes), f64(dlogits), nil, sumErr/float64(n), 4*eps)
}

// torchSGD checks two SGDUpdate steps against torch.optim.SGD with momentum
// and weight decay, converted to the paper's velocity v = −lr·b (see
// ci/torch/layer_fixtures.py).
func torchSGD(h *harness, fx *fixture) {
	p := device.SGDParams{LR: fx.float("lr"), Momentum: fx.float("momentum"), WeightDecay: fx.float("weight_decay")}
	w0, g1, g2 := fx.f32("w0"), fx.f32("g1"), fx.f32("g2")
	steps := [][3][]float32{{g1, fx.f32("w1"), fx.f32("v1")}, {g2, fx.f32("w2"), fx.f32("v2")}}
	if !fx.ok(h) {
		return
	}
	d, n := h.d, len(w0)
	W, V := h.upload(w0), h.upload(make([]float32, n))
	m, wdlr, lr := float64(p.Momentum), float64(p.WeightDecay)*float64(p.LR), float64(p.LR)
	w, v := f64(w0), make([]float64, n) // the fixture's state before each step
	ew, ev := make([]float64, n), make([]float64, n)
	for k, st := range steps {
		G := h.upload(st[0])
		h.run("SGDUpdate", func() error { return d.SGDUpdate(W, G, V, n, p) })
		// Per-element error bounds: 4ε of the magnitude of each step's terms,
		// plus the device's error from the previous step carried forward.
		for i := range ev {
			bv := math.Abs(m*v[i]) + math.Abs(wdlr*w[i]) + math.Abs(lr*float64(st[0][i]))
			ev[i] = m*ev[i] + wdlr*ew[i] + 4*eps*bv
			ew[i] = ew[i] + ev[i] + 4*eps*(math.Abs(w[i])+bv)
		}
		h.expect(fmt.Sprintf("v after step %d", k+1), h.read(V, n), f64(st[2]), ev, 1, 2*eps)
		h.expect(fmt.Sprintf("w after step %d", k+1), h.read(W, n), f64(st[1]), ew, 1, 2*eps)
		w, v = f64(st[1]), f64(st[2])
	}
}

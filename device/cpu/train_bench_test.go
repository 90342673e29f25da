package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/model"
)

// Full training steps (upload, forward, loss, backward, SGD update, loss
// read-back) on the CPU device, the work PyTorch's
// shared/anchors/torch_train_bench.py times. Run with:
//
//	go test -run '^$' -bench Train -benchtime 5x ./device/cpu/
//
// ALEXCL_BLAS=off measures the pure-Go GEMM instead of the BLAS library.

func benchTrain(b *testing.B, preset string, batch int) {
	cfg, err := model.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	dev := cpu.New()
	defer dev.Close()
	var d device.Device = dev
	var prof *opTimer
	if os.Getenv("ALEXCL_BENCH_OPS") != "" {
		prof = &opTimer{Device: dev, wall: map[string]time.Duration{}, cpu: map[string]time.Duration{}}
		d = prof
	}
	net, err := model.New(d, cfg, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	if err := net.Init(1); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	xs := make([]float32, batch*net.InputLen())
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	ls := make([]int32, batch)
	for i := range ls {
		ls[i] = int32(rng.IntN(net.Classes()))
	}
	x, err := device.Upload(d, xs)
	if err != nil {
		b.Fatal(err)
	}
	labels, err := d.Alloc(4 * batch)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Write(labels, 0, device.Int32Bytes(ls)); err != nil {
		b.Fatal(err)
	}
	step := uint64(0)
	train := func() {
		step++
		if err := d.Write(x, 0, device.Float32Bytes(xs)); err != nil {
			b.Fatal(err)
		}
		if _, err := net.Forward(x, batch, true, step); err != nil {
			b.Fatal(err)
		}
		if err := net.Loss(labels, batch); err != nil {
			b.Fatal(err)
		}
		if err := net.Backward(batch); err != nil {
			b.Fatal(err)
		}
		if err := net.Step(device.SGDParams{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}); err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := net.ReadLoss(batch); err != nil {
			b.Fatal(err)
		}
	}
	train() // warm-up: scratch buffers and the BLAS library's own
	b.Logf("gemm backend: %s", dev.BLAS())
	if prof != nil {
		clear(prof.wall)
		clear(prof.cpu)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		train()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	if prof != nil {
		fmt.Fprintf(os.Stderr, "%s %s", b.Name(), prof.report(b.N))
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// opTimer times the heavy ops of a device (ALEXCL_BENCH_OPS=1): wall and
// process CPU time per op and conv shape.
type opTimer struct {
	*cpu.Device
	wall, cpu map[string]time.Duration
}

func (o *opTimer) time(name string, f func() error) error {
	t0, c0 := time.Now(), cpuTime()
	err := f()
	o.wall[name] += time.Since(t0)
	o.cpu[name] += cpuTime() - c0
	return err
}

func (o *opTimer) report(steps int) string {
	var names []string
	var total time.Duration
	for k, v := range o.wall {
		names = append(names, k)
		total += v
	}
	sort.Slice(names, func(i, j int) bool { return o.wall[names[i]] > o.wall[names[j]] })
	var sb strings.Builder
	fmt.Fprintf(&sb, "per step: %.1f ms in timed ops\n", total.Seconds()*1e3/float64(steps))
	for _, k := range names {
		fmt.Fprintf(&sb, "%8.1f ms wall %8.1f ms cpu  %s\n", o.wall[k].Seconds()*1e3/float64(steps), o.cpu[k].Seconds()*1e3/float64(steps), k)
	}
	return sb.String()
}

func cs(s device.ConvShape) string {
	return fmt.Sprintf("C%d %dx%d K%d %dx%d/%d g%d", s.C, s.H, s.W, s.K, s.R, s.S, s.Stride, s.Groups)
}

func (o *opTimer) Conv2DForward(x, w, b, y device.Buffer, s device.ConvShape) error {
	return o.time("conv fwd "+cs(s), func() error { return o.Device.Conv2DForward(x, w, b, y, s) })
}

func (o *opTimer) Conv2DBackwardData(dy, w, dx device.Buffer, s device.ConvShape) error {
	return o.time("conv bwd data "+cs(s), func() error { return o.Device.Conv2DBackwardData(dy, w, dx, s) })
}

func (o *opTimer) Conv2DBackwardFilter(x, dy, dw, db device.Buffer, s device.ConvShape) error {
	return o.time("conv bwd filter "+cs(s), func() error { return o.Device.Conv2DBackwardFilter(x, dy, dw, db, s) })
}

func (o *opTimer) Gemm(tA, tB bool, M, N, K int, alpha float32, A, B device.Buffer, beta float32, C device.Buffer) error {
	return o.time(fmt.Sprintf("gemm %v%v %dx%dx%d", tA, tB, M, N, K), func() error { return o.Device.Gemm(tA, tB, M, N, K, alpha, A, B, beta, C) })
}

func (o *opTimer) LRNForward(x, y, scale device.Buffer, s device.LRNShape) error {
	return o.time("lrn fwd", func() error { return o.Device.LRNForward(x, y, scale, s) })
}

func (o *opTimer) LRNBackward(x, y, scale, dy, dx device.Buffer, s device.LRNShape) error {
	return o.time("lrn bwd", func() error { return o.Device.LRNBackward(x, y, scale, dy, dx, s) })
}

func (o *opTimer) MaxPoolForward(x, y, idx device.Buffer, s device.PoolShape) error {
	return o.time("pool fwd", func() error { return o.Device.MaxPoolForward(x, y, idx, s) })
}

func (o *opTimer) MaxPoolBackward(idx, dy, dx device.Buffer, s device.PoolShape) error {
	return o.time("pool bwd", func() error { return o.Device.MaxPoolBackward(idx, dy, dx, s) })
}

func (o *opTimer) ReLUForward(x, y device.Buffer, n int) error {
	return o.time("relu fwd", func() error { return o.Device.ReLUForward(x, y, n) })
}

func (o *opTimer) ReLUBackward(y, dy, dx device.Buffer, n int) error {
	return o.time("relu bwd", func() error { return o.Device.ReLUBackward(y, dy, dx, n) })
}

func (o *opTimer) Fill(b device.Buffer, v float32) error {
	return o.time("fill", func() error { return o.Device.Fill(b, v) })
}

func (o *opTimer) SGDUpdate(w, g, v device.Buffer, n int, p device.SGDParams) error {
	return o.time("sgd", func() error { return o.Device.SGDUpdate(w, g, v, n, p) })
}

func (o *opTimer) DropoutForward(x, y device.Buffer, n int, p float32, key device.DropoutKey) error {
	return o.time("dropout fwd", func() error { return o.Device.DropoutForward(x, y, n, p, key) })
}

func (o *opTimer) DropoutBackward(dy, dx device.Buffer, n int, p float32, key device.DropoutKey) error {
	return o.time("dropout bwd", func() error { return o.Device.DropoutBackward(dy, dx, n, p, key) })
}

// BenchmarkTrainPaper32 is a training step of paper AlexNet at batch 32.
func BenchmarkTrainPaper32(b *testing.B) { benchTrain(b, "paper", 32) }

// BenchmarkTrainMini128 is a training step of the mini net at batch 128.
func BenchmarkTrainMini128(b *testing.B) { benchTrain(b, "mini", 128) }

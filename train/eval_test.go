package train

import (
	"context"
	"math"
	"testing"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/device/cpu"
	"github.com/alexcl/alexcl/model"
)

// tenViews presents every sample of a dataset as 10 identical views, so a
// ten-crop evaluation must score exactly what a one-view evaluation does.
type tenViews struct{ data.Dataset }

func (tenViews) Views() int { return 10 }

func (v tenViews) Sample(i int, key uint64, x []float32) (int32, error) {
	n := len(x) / 10
	y, err := v.Dataset.Sample(i, key, x[:n])
	for k := 1; k < 10; k++ {
		copy(x[k*n:(k+1)*n], x[:n])
	}
	return y, err
}

func TestEvaluateTenCropAveraging(t *testing.T) {
	dir := writeSmallMNIST(t, 40, 70)
	ds, err := data.Open(data.Spec{Kind: data.MNIST, Dir: dir}, "test", data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := cpu.New()
	defer d.Close()
	net, err := model.New(d, *narrowMini(t, 0.5), 40)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if err := net.Init(3); err != nil {
		t.Fatal(err)
	}
	one, err := Evaluate(context.Background(), net, ds, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ten, err := Evaluate(context.Background(), net, tenViews{ds}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if one.Samples != 70 || ten.Samples != 70 || ten.Views != 10 {
		t.Fatalf("samples %d / %d, views %d", one.Samples, ten.Samples, ten.Views)
	}
	if one.Top1 != ten.Top1 || one.Top5 != ten.Top5 || math.Abs(one.Loss-ten.Loss) > 1e-4*one.Loss {
		t.Errorf("one view %+v, ten identical views %+v: want the same scores", one, ten)
	}
	if _, err := Evaluate(context.Background(), net, tenViews{ds}, EvalOptions{Batch: 9}); err == nil {
		t.Error("a batch of 9 images accepted for 10 views")
	}
}

func TestLossAndRank(t *testing.T) {
	p := []float64{0.1, 0.4, 0.1, 0.4}
	if l, r := lossAndRank(p, 3); r != 1 || math.Abs(l+math.Log(0.4)) > 1e-12 {
		t.Errorf("label 3: loss %v rank %d, want -log 0.4 and 1 (tie goes to class 1)", l, r)
	}
	if _, r := lossAndRank(p, 1); r != 0 {
		t.Errorf("label 1: rank %d, want 0", r)
	}
	// NaN (ten-crop of weights gone to NaN): never a hit.
	nan := []float64{0.5, math.NaN(), 0.5}
	if _, r := lossAndRank(nan, 0); r != 1 {
		t.Errorf("a NaN beside the label: rank %d, want 1", r)
	}
	if l, r := lossAndRank(nan, 1); r != 3 || !math.IsNaN(l) {
		t.Errorf("a NaN label probability: loss %v rank %d, want NaN and 3 (every class)", l, r)
	}
	avg := AverageSoftmax([]float32{0, 0, 10, -10}, 2, 2)
	if math.Abs(avg[0]+avg[1]-1) > 1e-12 || math.Abs(avg[0]-0.75) > 1e-8 {
		t.Errorf("average of softmax(0,0) and softmax(10,-10) = %v", avg)
	}
}

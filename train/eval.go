package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/alexcl/alexcl/data"
	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/model"
)

// EvalResult is the loss and accuracy of a network over a dataset split.
type EvalResult struct {
	Loss    float64 // mean cross-entropy
	Top1    float64 // fraction of samples whose label is the top logit
	Top5    float64 // fraction whose label is among the five top logits
	Samples int
	Views   int // images averaged per sample: 10 with ten-crop, else 1
}

// EvalOptions tune Evaluate.
type EvalOptions struct {
	// Batch is the number of images per forward pass; 0: the net's batch.
	// With ten-crop it must be at least 10 (10 views of each sample).
	Batch int
	// Limit evaluates only the first Limit samples (0: all).
	Limit int
	// Progress, when set, is called after every batch with the samples done.
	Progress func(done, total int)
}

// Evaluate runs net over every sample of ds in file order, without dropout,
// and returns the mean loss and top-1/top-5 accuracy. When ds has several
// views per sample (data.Options.TenCrop) the softmax of the views is
// averaged and the loss and ranks are taken from the average, as the paper
// does. It returns ctx's error if ctx is cancelled.
func Evaluate(ctx context.Context, net *model.Net, ds data.Dataset, opts EvalOptions) (EvalResult, error) {
	d := net.Device()
	views := ds.Views()
	if views < 1 {
		return EvalResult{}, fmt.Errorf("evaluate: dataset has %d views per sample", views)
	}
	imgs := opts.Batch
	if imgs <= 0 || imgs > net.Batch() {
		imgs = net.Batch()
	}
	per := imgs / views // samples per forward pass
	if per < 1 {
		return EvalResult{}, fmt.Errorf("evaluate: a batch of %d images cannot hold the %d views of one sample: use --batch %d or more", imgs, views, views)
	}
	total := ds.Len()
	if opts.Limit > 0 && opts.Limit < total {
		total = opts.Limit
	}
	per = min(per, ds.Len())
	if ds.Len() < 1 {
		return EvalResult{}, errors.New("evaluate: the dataset has no samples")
	}
	if in := ds.Options(); in.Channels*in.Height*in.Width != net.InputLen() {
		return EvalResult{}, fmt.Errorf("evaluate: dataset images are %dx%dx%d, the network takes %d values per image", in.Height, in.Width, in.Channels, net.InputLen())
	}
	loader, err := data.NewLoader(ds, per, false, false, 0, 0, 0)
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	defer loader.Close()

	x, err := device.AllocFloat32(d, per*views*net.InputLen())
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: input buffer: %w", err)
	}
	defer d.Free(x)
	labels, err := d.Alloc(4 * per)
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: label buffer: %w", err)
	}
	defer d.Free(labels)

	classes := net.Classes()
	var logits []float32
	if views > 1 {
		logits = make([]float32, per*views*classes)
	}
	var (
		lossSum    float64
		top1, top5 int
		done       int
	)
	for done < total {
		if err := ctx.Err(); err != nil {
			return EvalResult{}, err
		}
		b, err := loader.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return EvalResult{}, fmt.Errorf("evaluate: %w", err)
		}
		n := min(b.N, total-done)
		if err := d.Write(x, 0, device.Float32Bytes(b.X[:n*views*net.InputLen()])); err != nil {
			return EvalResult{}, fmt.Errorf("evaluate: upload batch: %w", err)
		}
		out, err := net.Forward(x, n*views, false, 0)
		if err != nil {
			return EvalResult{}, fmt.Errorf("evaluate: %w", err)
		}
		if views == 1 {
			if err := d.Write(labels, 0, device.Int32Bytes(b.Y[:n])); err != nil {
				return EvalResult{}, fmt.Errorf("evaluate: upload labels: %w", err)
			}
			if err := net.Loss(labels, n); err != nil {
				return EvalResult{}, fmt.Errorf("evaluate: %w", err)
			}
			l, t1, t5, err := net.ReadLoss(n)
			if err != nil {
				return EvalResult{}, fmt.Errorf("evaluate: %w", err)
			}
			lossSum += l
			top1 += t1
			top5 += t5
		} else {
			lg := logits[:n*views*classes]
			if err := d.Read(out, 0, device.Float32Bytes(lg)); err != nil {
				return EvalResult{}, fmt.Errorf("evaluate: read logits: %w", err)
			}
			for i := 0; i < n; i++ {
				p := AverageSoftmax(lg[i*views*classes:(i+1)*views*classes], views, classes)
				l, r := lossAndRank(p, int(b.Y[i]))
				lossSum += l
				if r < 1 {
					top1++
				}
				if r < min(5, classes) { // rank = classes: no hit (a NaN, a bad label)
					top5++
				}
			}
		}
		loader.Release(b)
		done += n
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if done == 0 {
		return EvalResult{}, errors.New("evaluate: no samples were evaluated")
	}
	return EvalResult{Loss: lossSum / float64(done), Top1: float64(top1) / float64(done),
		Top5: float64(top5) / float64(done), Samples: done, Views: views}, nil
}

// Softmax returns the softmax of logits, computed in float64 with the
// maximum subtracted for stability.
func Softmax(logits []float32) []float64 {
	p := make([]float64, len(logits))
	if len(logits) == 0 {
		return p
	}
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	var s float64
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// AverageSoftmax returns the mean of the softmax of views rows of classes
// logits each (the paper's ten-crop prediction).
func AverageSoftmax(logits []float32, views, classes int) []float64 {
	avg := make([]float64, classes)
	for v := 0; v < views; v++ {
		for c, p := range Softmax(logits[v*classes : (v+1)*classes]) {
			avg[c] += p / float64(views)
		}
	}
	return avg
}

// lossAndRank returns −log p[label] and the number of classes ranked above
// label (ties go to the lower class index, as the device's kernel does).
func lossAndRank(p []float64, label int) (float64, int) {
	if label < 0 || label >= len(p) {
		return math.Inf(1), len(p)
	}
	rank := 0
	for c, q := range p {
		// As device.SoftmaxCrossEntropy ranks (ref.rankedAbove): a NaN
		// ranks above the label, and a NaN label every class.
		if !(q < p[label]) && !(q == p[label] && c >= label) {
			rank++
		}
	}
	return -math.Log(math.Max(p[label], 1e-45)), rank // NaN for a NaN p[label]
}

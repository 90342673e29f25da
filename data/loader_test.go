package data

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"
)

// fakeDataset writes (index, low and high halves of key) into each sample, and fails on
// index failAt.
type fakeDataset struct {
	n, workers, failAt int
}

func (d *fakeDataset) Len() int             { return d.n }
func (d *fakeDataset) Classes() int         { return 7 }
func (d *fakeDataset) ClassNames() []string { return nil }
func (d *fakeDataset) Skipped() int         { return 0 }
func (d *fakeDataset) Views() int           { return 1 }
func (d *fakeDataset) Options() Options {
	return Options{Channels: 1, Height: 1, Width: 3, Workers: d.workers}
}
func (d *fakeDataset) Sample(i int, key uint64, x []float32) (int32, error) {
	if i == d.failAt {
		return 0, fmt.Errorf("bad sample %d", i)
	}
	if i%5 == 0 {
		time.Sleep(50 * time.Microsecond) // shuffle the workers' finishing order
	}
	x[0], x[1], x[2] = float32(i), float32(key&0xffff), float32(key>>48)
	return int32(i % 7), nil
}

// collect reads epochs epochs of batches (io.EOF ends each one).
func collect(t *testing.T, l *Loader, epochs int) [][]*Batch {
	t.Helper()
	var out [][]*Batch
	var cur []*Batch
	for len(out) < epochs {
		b, err := l.Next()
		if err == io.EOF {
			out = append(out, cur)
			cur = nil
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		cur = append(cur, b)
	}
	return out
}

func TestLoaderOrder(t *testing.T) {
	ds := &fakeDataset{n: 23, workers: 4, failAt: -1}
	for _, dropLast := range []bool{false, true} {
		l, err := NewLoader(ds, 5, false, dropLast, 1, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := 5
		if dropLast {
			want = 4
		}
		if l.BatchesPerEpoch() != want {
			t.Fatalf("dropLast %v: %d batches per epoch, want %d", dropLast, l.BatchesPerEpoch(), want)
		}
		epochs := collect(t, l, 2)
		l.Close()
		for e, bs := range epochs {
			if len(bs) != want {
				t.Fatalf("epoch %d: %d batches", e, len(bs))
			}
			var idx []int
			for k, b := range bs {
				if b.Epoch != e || b.Index != k || b.Views != 1 || len(b.X) != 3*b.N || len(b.Y) != b.N {
					t.Fatalf("batch %d of epoch %d: %+v", k, e, b)
				}
				for j := 0; j < b.N; j++ {
					if int(b.X[3*j]) != b.Indices[j] || b.Y[j] != int32(b.Indices[j]%7) {
						t.Fatalf("sample %d of batch %d holds %v label %d, index %d", j, k, b.X[3*j:3*j+3], b.Y[j], b.Indices[j])
					}
				}
				idx = append(idx, b.Indices...)
			}
			n := 23
			if dropLast {
				n = 20
			}
			for i, v := range idx {
				if i != v || len(idx) != n {
					t.Fatalf("epoch %d: file order broken: %v", e, idx)
				}
			}
		}
	}
}

func TestLoaderShuffle(t *testing.T) {
	ds := &fakeDataset{n: 50, workers: 3, failAt: -1}
	l, err := NewLoader(ds, 10, true, true, 42, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	epochs := collect(t, l, 2)
	var orders [][]int
	for e, bs := range epochs {
		var idx []int
		for _, b := range bs {
			idx = append(idx, b.Indices...)
		}
		if !slices.Equal(idx, Permutation(42, e, 50)) {
			t.Fatalf("epoch %d order %v is not Permutation(42, %d, 50)", e, idx, e)
		}
		sorted := slices.Sorted(slices.Values(idx))
		for i, v := range sorted {
			if i != v {
				t.Fatalf("epoch %d is not a permutation: %v", e, idx)
			}
		}
		orders = append(orders, idx)
	}
	if slices.Equal(orders[0], orders[1]) {
		t.Fatal("epochs 0 and 1 have the same order")
	}
}

// TestLoaderDeterminism: the same seed gives the same batches whatever the number of
// workers, on a real dataset with augmentation.
func TestLoaderDeterminism(t *testing.T) {
	dir := makeCIFAR(t)
	run := func(workers int, seed uint64) [][]*Batch {
		ds, err := Open(Spec{Kind: CIFAR10, Dir: dir}, "train", Options{Augment: true, Workers: workers, Height: 24})
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLoader(ds, 4, true, false, seed, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return collect(t, l, 3)
	}
	a, b, c := run(1, 7), run(5, 7), run(3, 8)
	same := func(x, y [][]*Batch) bool {
		for e := range x {
			for k := range x[e] {
				if !slices.Equal(x[e][k].X, y[e][k].X) || !slices.Equal(x[e][k].Y, y[e][k].Y) {
					return false
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("1 and 5 workers give different batches")
	}
	if same(a, c) {
		t.Fatal("seeds 7 and 8 give the same batches")
	}
}

func TestLoaderResume(t *testing.T) {
	ds := &fakeDataset{n: 37, workers: 4, failAt: -1}
	full, err := NewLoader(ds, 6, true, false, 9, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := collect(t, full, 3)
	full.Close()

	l, err := NewLoader(ds, 6, true, false, 9, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := collect(t, l, 2) // the rest of epoch 1, then epoch 2
	want := [][]*Batch{all[1][3:], all[2]}
	for e := range want {
		if len(got[e]) != len(want[e]) {
			t.Fatalf("resumed epoch %d: %d batches, want %d", e+1, len(got[e]), len(want[e]))
		}
		for k := range want[e] {
			g, w := got[e][k], want[e][k]
			if g.Epoch != w.Epoch || g.Index != w.Index || !slices.Equal(g.X, w.X) || !slices.Equal(g.Y, w.Y) || !slices.Equal(g.Indices, w.Indices) {
				t.Fatalf("resumed batch (%d, %d) differs from (%d, %d) of the uninterrupted run", g.Epoch, g.Index, w.Epoch, w.Index)
			}
		}
	}

	// Starting at the end of an epoch gives its io.EOF first.
	end, err := NewLoader(ds, 6, true, false, 9, 0, end0(full))
	if err != nil {
		t.Fatal(err)
	}
	defer end.Close()
	if _, err := end.Next(); err != io.EOF {
		t.Fatalf("start at the end of epoch 0: %v, want io.EOF", err)
	}
	if b, err := end.Next(); err != nil || b.Epoch != 1 || b.Index != 0 || !slices.Equal(b.X, all[1][0].X) {
		t.Fatalf("after io.EOF: %+v %v", b, err)
	}
}

func end0(l *Loader) int { return l.BatchesPerEpoch() }

func TestLoaderErrors(t *testing.T) {
	ds := &fakeDataset{n: 10, workers: 2, failAt: 7}
	for _, tc := range []struct {
		batch, epoch, index int
		want                string
	}{
		{11, 0, 0, "data: batch size 11 is larger than the dataset (10 samples): lower the batch size"},
		{0, 0, 0, "data: batch size 0: must be at least 1"},
		{3, 0, 5, "data: cannot start at epoch 0 batch 5: an epoch has batches 0..3"},
		{3, -1, 0, "data: cannot start at epoch -1 batch 0"},
	} {
		_, err := NewLoader(ds, tc.batch, false, false, 0, tc.epoch, tc.index)
		if err == nil || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("NewLoader(batch %d, start %d/%d): %v, want %q", tc.batch, tc.epoch, tc.index, err, tc.want)
		}
	}

	l, err := NewLoader(ds, 3, false, false, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 2; k++ {
		if _, err := l.Next(); err != nil {
			t.Fatal(err)
		}
	}
	const want = "epoch 0 batch 2 sample 7: bad sample 7"
	for k := 0; k < 2; k++ { // the error is sticky
		if _, err := l.Next(); err == nil || err.Error() != want {
			t.Fatalf("call %d: %v, want %q", k, err, want)
		}
	}
	l.Close()
	l.Close()

	// Close with batches in flight and a consumer that stopped early.
	l, err = NewLoader(&fakeDataset{n: 1000, workers: 4, failAt: -1}, 2, true, true, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Next(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// TestLoaderRelease checks that batches given back with Release are refilled
// with exactly what fresh batches would hold, the short last batch of each
// epoch (15 samples in batches of 4) included.
func TestLoaderRelease(t *testing.T) {
	dir := makeCIFAR(t)
	run := func(release bool) [][]float32 {
		ds, err := Open(Spec{Kind: CIFAR10, Dir: dir}, "train", Options{Augment: true, Workers: 3, Height: 24})
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLoader(ds, 4, true, false, 5, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var out [][]float32
		for e := 0; e < 3; e++ {
			for {
				b, err := l.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, slices.Clone(b.X), float32sOf(b.Y))
				if release {
					l.Release(b)
				}
			}
		}
		return out
	}
	fresh, reused := run(false), run(true)
	if len(fresh) != len(reused) {
		t.Fatalf("%d batches with Release, %d without", len(reused)/2, len(fresh)/2)
	}
	for i := range fresh {
		if !slices.Equal(fresh[i], reused[i]) {
			t.Fatalf("batch %d differs when batches are released and reused", i/2)
		}
	}
}

func float32sOf(y []int32) []float32 {
	out := make([]float32, len(y))
	for i, v := range y {
		out[i] = float32(v)
	}
	return out
}

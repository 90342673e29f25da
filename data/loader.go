package data

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Batch is one batch of samples. It belongs to the caller: the loader never touches it
// again.
type Batch struct {
	X       []float32 // X is (N·Views, C, H, W): the Views images of sample 0, then of sample 1, ...
	Y       []int32   // Y is (N): labels
	N       int       // number of samples; less than the batch size only for a kept last partial batch
	Views   int       // images per sample (10 with TenCrop, else 1)
	Epoch   int       // epoch this batch belongs to
	Index   int       // batch index within the epoch, from 0
	Indices []int     // Indices is (N): the dataset index of every sample
}

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("data: loader closed")

// Loader produces batches of a Dataset in parallel, ahead of the consumer, epoch after
// epoch. Next and Close must be called from one goroutine.
type Loader struct {
	ds       Dataset
	batch    int
	shuffle  bool
	dropLast bool
	seed     uint64
	augSeed  uint64 // Options().Seed of the dataset
	n        int    // ds.Len()
	nb       int    // batches per epoch
	views    int
	sample   int // floats per sample: views·C·H·W

	free  chan *Batch   // batches given back by Release, reused by produce
	order chan *pending // batches (and epoch ends) in the order Next returns them
	slots chan struct{} // one token per batch in flight
	jobs  chan job
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	err   error // sticky: the first error Next returned
}

// pending is a batch being filled by the workers.
type pending struct {
	b         *Batch
	perm      []int // the epoch's order; nil: file order
	eof       bool  // marks the end of an epoch instead of a batch
	remaining atomic.Int32
	done      chan struct{} // closed when every sample is written
	mu        sync.Mutex
	err       error // first sample error
}

type job struct {
	p *pending
	j int // position in the batch
}

// NewLoader returns a loader of batches of size batch over ds, starting at batch startBatch
// of epoch startEpoch (0, 0 for a fresh run). With shuffle, each epoch's order is a
// permutation seeded by (seed, epoch); otherwise it is the dataset's file order. With
// dropLast, a last partial batch is dropped; otherwise it is kept (N < batch).
// startBatch may equal BatchesPerEpoch: the first Next then returns that epoch's io.EOF.
func NewLoader(ds Dataset, batch int, shuffle, dropLast bool, seed uint64, startEpoch, startBatch int) (*Loader, error) {
	n := ds.Len()
	if batch < 1 {
		return nil, fmt.Errorf("data: batch size %d: must be at least 1", batch)
	}
	if batch > n {
		return nil, fmt.Errorf("data: batch size %d is larger than the dataset (%d samples): lower the batch size", batch, n)
	}
	nb := BatchesPerEpoch(n, batch, dropLast)
	if startEpoch < 0 || startBatch < 0 || startBatch > nb {
		return nil, fmt.Errorf("data: cannot start at epoch %d batch %d: an epoch has batches 0..%d", startEpoch, startBatch, nb-1)
	}
	o := ds.Options()
	l := &Loader{
		ds: ds, batch: batch, shuffle: shuffle, dropLast: dropLast, seed: seed,
		augSeed: o.Seed, n: n, nb: nb, views: ds.Views(),
		sample: ds.Views() * o.Channels * o.Height * o.Width,
		quit:   make(chan struct{}),
	}
	workers := max(o.Workers, 1)
	inflight := 2 + (workers+batch-1)/batch
	l.order = make(chan *pending, inflight+1)
	l.slots = make(chan struct{}, inflight)
	l.free = make(chan *Batch, inflight+1)
	l.jobs = make(chan job, 2*workers)
	l.wg.Add(1 + workers)
	go l.produce(startEpoch, startBatch)
	for range workers {
		go l.work()
	}
	return l, nil
}

// BatchesPerEpoch is the number of batches Next returns in each epoch.
func (l *Loader) BatchesPerEpoch() int { return l.nb }

// BatchesPerEpoch is the number of batches a Loader of n samples gives an
// epoch: n/batch, and one more for the rest unless dropLast.
func BatchesPerEpoch(n, batch int, dropLast bool) int {
	nb := n / max(batch, 1)
	if !dropLast && n%max(batch, 1) != 0 {
		nb++
	}
	return nb
}

// Next returns the next batch, or io.EOF at the end of an epoch (the call after that starts
// the next epoch). A sample error (a corrupt image with Strict) stops the loader: Next
// returns it, and returns it again on every later call.
func (l *Loader) Next() (*Batch, error) {
	if l.err != nil {
		return nil, l.err
	}
	select {
	case <-l.quit:
		return nil, ErrClosed
	default:
	}
	var p *pending
	select {
	case p = <-l.order:
	case <-l.quit:
		return nil, ErrClosed
	}
	if p.eof {
		return nil, io.EOF
	}
	select {
	case <-p.done:
	case <-l.quit:
		return nil, ErrClosed
	}
	<-l.slots
	if p.err != nil {
		l.err = p.err
		return nil, p.err
	}
	return p.b, nil
}

// Release gives b back to the loader, which fills it again for a later batch
// instead of allocating a new one (a paper-sized batch of 128 is 79 MB). The
// caller must not use b after Release. Releasing is optional.
func (l *Loader) Release(b *Batch) {
	if b == nil {
		return
	}
	select {
	case l.free <- b:
	default: // enough spares already; let the garbage collector have it
	}
}

// reuse returns a released batch with room for n samples of floats each,
// or a new one.
func (l *Loader) reuse(n, floats int) *Batch {
	select {
	case b := <-l.free:
		if cap(b.X) >= n*floats && cap(b.Y) >= n && cap(b.Indices) >= n {
			b.X, b.Y, b.Indices = b.X[:n*floats], b.Y[:n], b.Indices[:n]
			return b
		}
	default:
	}
	return &Batch{X: make([]float32, n*floats), Y: make([]int32, n), Indices: make([]int, n)}
}

// Close stops the loader's goroutines and waits for them. It is safe to call twice.
func (l *Loader) Close() {
	l.once.Do(func() {
		close(l.quit)
		l.wg.Wait()
	})
}

// Permutation returns the order of samples in an epoch: Permutation(seed, epoch, n)[pos]
// is the dataset index at position pos. It is what a shuffling Loader uses.
func Permutation(seed uint64, epoch, n int) []int {
	return rand.New(rand.NewPCG(seed, uint64(epoch))).Perm(n)
}

// SampleKey is the augmentation key of the sample at position pos of an epoch: a hash of
// (seed, augSeed, epoch, pos). It is what the Loader passes to Dataset.Sample.
func SampleKey(seed, augSeed uint64, epoch, pos int) uint64 {
	h := mix64(seed ^ 0x9e3779b97f4a7c15)
	h = mix64(h ^ augSeed)
	h = mix64(h ^ uint64(epoch))
	return mix64(h ^ uint64(pos))
}

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// produce queues batches in order, epoch after epoch, until quit.
func (l *Loader) produce(epoch, index int) {
	defer l.wg.Done()
	defer close(l.jobs)
	floatsPerSample := l.sample
	for ; ; epoch, index = epoch+1, 0 {
		var perm []int
		if l.shuffle {
			perm = Permutation(l.seed, epoch, l.n)
		}
		for ; index < l.nb; index++ {
			select {
			case l.slots <- struct{}{}:
			case <-l.quit:
				return
			}
			n := min(l.batch, l.n-index*l.batch)
			b := l.reuse(n, floatsPerSample)
			b.N, b.Views, b.Epoch, b.Index = n, l.views, epoch, index
			p := &pending{b: b, perm: perm, done: make(chan struct{})}
			p.remaining.Store(int32(n))
			select {
			case l.order <- p:
			case <-l.quit:
				return
			}
			for j := range n {
				select {
				case l.jobs <- job{p, j}:
				case <-l.quit:
					return
				}
			}
		}
		select {
		case l.order <- &pending{eof: true}:
		case <-l.quit:
			return
		}
	}
}

// work fills samples until the job queue closes.
func (l *Loader) work() {
	defer l.wg.Done()
	for jb := range l.jobs {
		p, b := jb.p, jb.p.b
		pos := b.Index*l.batch + jb.j
		idx := pos
		if p.perm != nil {
			idx = p.perm[pos]
		}
		b.Indices[jb.j] = idx
		x := b.X[jb.j*l.sample : (jb.j+1)*l.sample]
		clear(x) // a reused batch holds an older sample here
		y, err := l.ds.Sample(idx, SampleKey(l.seed, l.augSeed, b.Epoch, pos), x)
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = fmt.Errorf("epoch %d batch %d sample %d: %w", b.Epoch, b.Index, idx, err)
			}
			p.mu.Unlock()
		}
		b.Y[jb.j] = y
		if p.remaining.Add(-1) == 0 {
			close(p.done)
		}
	}
}

package sgemm

import (
	"testing"
)

func BenchmarkKernel(b *testing.B) {
	if !hasAVX512 {
		b.Skip("no AVX-512")
	}
	const kc = 256
	a := make([]float32, kc*12)
	bb := make([]float32, kc*32)
	c := make([]float32, 12*32)
	for i := range a {
		a[i] = float32(i%7) * 0.1
	}
	for i := range bb {
		bb[i] = float32(i%5) * 0.1
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		kernelAVX512(kc, &a[0], &bb[0], &c[0], 32, 1, 0)
	}
	b.ReportMetric(float64(2*12*32*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func TestKernelSmall(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	for _, kc := range []int{1, 2, 7, 64} {
		a := make([]float32, kc*12)
		bb := make([]float32, kc*32)
		for i := range a {
			a[i] = float32(i%7) - 3
		}
		for i := range bb {
			bb[i] = float32(i%5) - 2
		}
		c := make([]float32, 12*40)
		for i := range c {
			c[i] = float32(i % 3)
		}
		want := make([]float32, len(c))
		copy(want, c)
		for i := 0; i < 12; i++ {
			for j := 0; j < 32; j++ {
				var s float32
				for k := 0; k < kc; k++ {
					s += a[k*12+i] * bb[k*32+j]
				}
				want[i*40+j] = 2*s + 0.5*c[i*40+j]
			}
		}
		kernelAVX512(kc, &a[0], &bb[0], &c[0], 40, 2, 0.5)
		for i := range c {
			if c[i] != want[i] {
				t.Fatalf("kc %d: c[%d] = %v, want %v", kc, i, c[i], want[i])
			}
		}
	}
}

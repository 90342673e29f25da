package sgemm

import (
	"fmt"
	"testing"
)

func BenchmarkPack(b *testing.B) {
	const k, m, n = kc, mc, nc
	src := make([]float32, 4096*1024)
	dst := make([]float32, kc*nc)
	for _, tr := range []bool{false, true} {
		b.Run(fmt.Sprintf("A_t%v", tr), func(b *testing.B) {
			for b.Loop() {
				AVX512.packA(dst, tr, src, 1024, 0, 0, m, k)
			}
			b.ReportMetric(float64(m*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
		b.Run(fmt.Sprintf("B_t%v", tr), func(b *testing.B) {
			for b.Loop() {
				AVX512.packB(dst, tr, src, 1024, 0, 0, k, 1024)
			}
			b.ReportMetric(float64(1024*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
	_ = n
}

package cpu

import "testing"

// BenchmarkWinoInput times the input transform of one mini conv4 sample
// group (384 channels of 6×6: 9 tiles each).
func BenchmarkWinoInput(b *testing.B) {
	p := planWino(128, 384, 256, 6, 6)
	x := make([]float32, p.Ci*p.H*p.W)
	for i := range x {
		x[i] = float32(i%13) - 6
	}
	ld := p.Q * p.tiles
	v := make([]float32, 16*p.Ci*ld)
	pad := make([]float32, p.padSize())
	for b.Loop() {
		for i := 0; i < p.Q; i++ {
			p.winoInput(x, v, pad, ld, i*p.tiles)
		}
	}
	b.ReportMetric(float64(p.Ci*p.tiles*p.Q)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtiles/s")
}

// BenchmarkWinoOutput times the output transform of the same shape.
func BenchmarkWinoOutput(b *testing.B) {
	p := planWino(128, 384, 256, 6, 6)
	ld := p.Q * p.tiles
	m := make([]float32, 16*p.Co*ld)
	for i := range m {
		m[i] = float32(i%7) - 3
	}
	y := make([]float32, p.Co*p.H*p.W)
	bias := make([]float32, p.Co)
	for b.Loop() {
		for i := 0; i < p.Q; i++ {
			p.winoOutput(m, ld, i*p.tiles, y, bias)
		}
	}
	b.ReportMetric(float64(p.Co*p.tiles*p.Q)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtiles/s")
}

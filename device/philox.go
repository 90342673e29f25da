package device

import "math"

// Philox4x32 is the Philox4x32-10 counter-based generator (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC'11): ten rounds over a
// 128-bit counter with a 64-bit key. clkernels/dropout.cl holds the same
// function; both are checked against the paper's known-answer vectors.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	const (
		m0, m1 = 0xD2511F53, 0xCD9E8D57
		w0, w1 = 0x9E3779B9, 0xBB67AE85
	)
	for round := 0; round < 10; round++ {
		p0 := uint64(m0) * uint64(ctr[0])
		p1 := uint64(m1) * uint64(ctr[2])
		ctr = [4]uint32{
			uint32(p1>>32) ^ ctr[1] ^ key[0], uint32(p1),
			uint32(p0>>32) ^ ctr[3] ^ key[1], uint32(p0),
		}
		key[0] += w0
		key[1] += w1
	}
	return ctr
}

// DropoutThreshold is the integer form of drop probability p: an element is
// kept when the top 24 bits of its random word are >= the threshold, which
// makes the keep decision exact on every device.
func DropoutThreshold(p float32) uint32 {
	return uint32(math.Ceil(float64(p) * (1 << 24)))
}

// DropoutKeep reports whether element i survives dropout with probability p
// under key. Counter (i, Layer, Step low, Step high), key (Seed low, Seed high);
// the first output word decides.
func DropoutKeep(key DropoutKey, i uint32, threshold uint32) bool {
	r := Philox4x32(
		[4]uint32{i, key.Layer, uint32(key.Step), uint32(key.Step >> 32)},
		[2]uint32{uint32(key.Seed), uint32(key.Seed >> 32)})
	return r[0]>>8 >= threshold
}

// DropoutScale is the factor 1/(1−p) kept elements are multiplied by,
// computed once on the host so every device uses the same float32.
func DropoutScale(p float32) float32 { return 1 / (1 - p) }

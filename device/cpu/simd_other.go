//go:build !amd64 || purego

package cpu

const (
	useAVX512 = false
	useAVX2   = false
)

func im2colRows(dst, src *float32, off, oh0, oh1, oh, w, ow int, lmask, smask uint32) {
	panic("cpu: im2colRows needs AVX-512")
}

func winoIn(plane *float32, h, w, th, tw int, out *float32, es int) {
	panic("cpu: winoIn needs AVX-512")
}

func winoOut(m *float32, es, th, tw int, y *float32, h, w int, b float32) {
	panic("cpu: winoOut needs AVX-512")
}

func col2imAcc(dx *float32, rows, w int, src *float32, ld, ow, s, pad int, masks *[32]uint32) {
	panic("cpu: col2imAcc needs AVX-512")
}

func winoDyT(plane *float32, h, w, th, tw int, out *float32, es int) {
	panic("cpu: winoDyT needs AVX-512")
}

func lrnFwd5AVX2(n int, xc, xo, yo, so *float32, ring *[5]*float32, k, aos float32) {
	panic("cpu: lrnFwd5AVX2 needs AVX2")
}

func lrnBwd5AVX2(n int, dyc, yc, sc, dxc, xj, dxj *float32, ring *[5]*float32, coef float32) {
	panic("cpu: lrnBwd5AVX2 needs AVX2")
}

func winoInAVX2(plane *float32, h, w, th, tw int, out *float32, es int, masks *[2][8]int32) {
	panic("cpu: winoInAVX2 needs AVX2")
}

func winoOutAVX2(m *float32, es, th, tw int, y *float32, h, w int, b float32, masks *[2][8]int32) {
	panic("cpu: winoOutAVX2 needs AVX2")
}

func gatherStrided(dst, src *float32, n, stride int) {
	panic("cpu: gatherStrided needs AVX-512")
}

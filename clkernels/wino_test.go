package clkernels

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestWinoMatrices checks the transform matrices of wino.cl as written in
// the kernel source: for F(m, r) = F(2, 3), F(2, 5), F(4, 3) and F(3, 5),
// At [(G g) ⊙ (Bt d)] must be the correlation y_i = Σ_k g_k d_(i+k) for
// every unit g and d, in
// float64 from the source's float32 constants (ci/wino_matrices.py
// derives them exactly).
func TestWinoMatrices(t *testing.T) {
	src := strings.Join(Sources(), "\n")
	re := regexp.MustCompile(`(?s)__constant float (wino\d+)_(bt|g|at)\[(\d+)\]\[(\d+)\] = \{(.*?)\};`)
	mats := map[string][][]float64{}
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		rows, _ := strconv.Atoi(m[3])
		cols, _ := strconv.Atoi(m[4])
		var vals []float64
		for _, e := range strings.Split(strings.NewReplacer("{", "", "}", "", "\n", " ").Replace(m[5]), ",") {
			vals = append(vals, constant(t, e))
		}
		if len(vals) != rows*cols {
			t.Fatalf("%s_%s: %d values, want %dx%d", m[1], m[2], len(vals), rows, cols)
		}
		mat := make([][]float64, rows)
		for i := range mat {
			mat[i] = vals[i*cols : (i+1)*cols]
		}
		mats[m[1]+"_"+m[2]] = mat
	}
	for _, f := range []struct {
		prefix string
		m, r   int
	}{{"wino3", 2, 3}, {"wino5", 2, 5}, {"wino43", 4, 3}, {"wino35", 3, 5}} {
		p, m, r := f.prefix, f.m, f.r
		at, g, bt := mats[p+"_at"], mats[p+"_g"], mats[p+"_bt"]
		n := m + r - 1
		if len(at) != m || len(g) != n || len(bt) != n || len(g[0]) != r || len(bt[0]) != n || len(at[0]) != n {
			t.Fatalf("%s: matrices missing or of the wrong sizes: At %d, G %d, Bt %d rows", p, len(at), len(g), len(bt))
		}
		for i := range m {
			for k := range r {
				for l := range n {
					sum := 0.0
					for j := range n {
						sum += at[i][j] * g[j][k] * bt[j][l]
					}
					want := 0.0
					if l == i+k {
						want = 1
					}
					if math.Abs(sum-want) > 1e-6 {
						t.Errorf("%s: output %d, tap %d, input %d: %v, want %v", p, i, k, l, sum, want)
					}
				}
			}
		}
	}
}

// constant evaluates one entry of a __constant table: an integer, a float
// literal with an f suffix, or a quotient of two such.
func constant(t *testing.T, e string) float64 {
	t.Helper()
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "f"), 64)
		if err != nil {
			t.Fatalf("entry %q: %v", e, err)
		}
		return float64(float32(v))
	}
	if a, b, ok := strings.Cut(e, "/"); ok {
		return float64(float32(num(a) / num(b)))
	}
	return num(e)
}

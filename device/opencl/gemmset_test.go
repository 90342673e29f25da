package opencl

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
)

// smallSetDefines is a blocked main set of 32x32 tiles (K steps of 8)
// with a tiled small set of 16x16 (K steps of 12): the two kinds, and K
// steps neither of which divides the other, so that split K's runs must
// follow the set that runs them.
var smallSetDefines = map[string]string{
	"GEMM_KIND": "blocked", "GEMM_TSM": "32", "GEMM_TSN": "32", "GEMM_TSK": "8", "GEMM_WPTM": "4", "GEMM_WPTN": "4",
	"GEMMS_KIND": "tiled", "GEMMS_TSM": "16", "GEMMS_TSN": "16", "GEMMS_TSK": "12", "GEMMS_WPTM": "2", "GEMMS_WPTN": "2",
}

// TestGemmSmallSet checks the rule that sends a product to the small set,
// and that products on either set, split K included, and the
// convolutions (the usual paths and Winograd, whose batched products take
// both sets) match device/ref, with the profiler showing both kernels
// ran.
func TestGemmSmallSet(t *testing.T) {
	var log logLines
	d := openTestDevice(t, Options{Version: "test", Defines: smallSetDefines, Logf: log.logf})
	if d.small == nil || d.small.kernel != "gemm"+smallSuffix || d.small.tsk != 12 || d.small.t != (tiling{16, 16, 2, 2}) {
		t.Fatalf("small set %+v, want tiled 16x16x12/2x2\n%s", d.small, log.String())
	}
	if !strings.Contains(log.String(), "small GEMM tiles GEMM_KIND=tiled GEMM_TSK=12 GEMM_TSM=16 GEMM_TSN=16 GEMM_WPTM=2 GEMM_WPTN=2 built in") {
		t.Errorf("log:\n%s\nwant the small set's build", log.String())
	}
	for _, c := range []struct {
		M, N, K int
		small   bool
	}{
		{32, 32, 64, false}, // K padded to 64 against 72
		{64, 96, 36, false}, // K padded to 40 against 36: 11% more
		{32, 32, 9, true},   // M×N the same, K padded to 16 against 12: 33% more
		{32, 32, 30, false}, // K padded to 32 against 36
		{16, 32, 64, true},  // 32x32 tiles pad M twice over
		{33, 32, 64, true},  // 64x32x64 against 48x32x72: 18.5% more
		{96, 32, 64, false}, // 96x32 either way
		{32, 32, 1, false},  // K padded to 8 against 12
	} {
		got := d.gemmFor(c.M, c.N, c.K)
		if (got.kernel == d.small.kernel) != c.small {
			t.Errorf("gemmFor(%d, %d, %d) = %s, want small %v", c.M, c.N, c.K, got.kernel, c.small)
		}
	}

	rng := rand.New(rand.NewPCG(7, 1))
	me := maxErr{}
	d.StartProfiling()
	// Shapes on each set; the last ones have few tiles and a long K, so
	// Gemm splits K (on a device of 2 compute units, 8 work-groups are
	// wanted).
	for _, sh := range [][3]int{{32, 32, 64}, {64, 96, 40}, {16, 32, 64}, {33, 70, 9}, {32, 32, 1024}, {16, 16, 2048}} {
		M, N, K := sh[0], sh[1], sh[2]
		for tt := 0; tt < 4; tt++ {
			tA, tB := tt&1 != 0, tt&2 != 0
			shape := fmt.Sprintf("M=%d N=%d K=%d tA=%v tB=%v set %s splits %d", M, N, K, tA, tB, d.gemmFor(M, N, K).kernel, d.gemmSplits(M, N, K, 1))
			A, B, C := randF32(rng, M*K, -1, 1), randF32(rng, K*N, -1, 1), randF32(rng, M*N, -1, 1)
			bA, bB, bC := up(t, d, A), up(t, d, B), up(t, d, C)
			want := append([]float32(nil), C...)
			ref.Gemm(tA, tB, M, N, K, 0.5, A, B, -1.5, want)
			if err := d.Gemm(tA, tB, M, N, K, 0.5, bA, bB, -1.5, bC); err != nil {
				t.Fatalf("Gemm %s: %v", shape, err)
			}
			compare(t, me, "Gemm", shape, down(t, d, bC, M*N), want, 1e-6*float64(K), 1e-4)
			// Split runs are whole K steps of the set that runs them.
			if s := d.gemmSplits(M, N, K, 1); s > 1 {
				kc, ks := d.splitRuns(gemmCall{M: M, N: N, K: K}, s)
				if set := d.gemmFor(M, N, K); kc%set.tsk != 0 || ks < 2 || (ks-1)*kc >= K {
					t.Errorf("%s: runs of %d, %d of them, on K steps of %d", shape, kc, ks, set.tsk)
				}
			}
			for _, b := range []device.Buffer{bA, bB, bC} {
				d.Free(b)
			}
		}
	}
	testConv(t, d, convShapes[1:9])
	times, err := d.StopProfiling()
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	for _, kt := range times {
		ran[kt.Kernel]++
	}
	if ran["gemm_blk"] == 0 || ran["gemm"+smallSuffix] == 0 || ran["gemm_sum_splits"] == 0 {
		t.Errorf("kernels run: %v; want gemm_blk, gemm%s and gemm_sum_splits", ran, smallSuffix)
	}
	me.log(t)

	// Winograd's batched products on the two sets.
	w := openTestDevice(t, Options{Version: "test", Defines: mergeDefines(smallSetDefines,
		map[string]string{"CONV_WINO": "on", "CONV_WINO5": "on", "CONV_WINO_MINCH": "1"})})
	w.StartProfiling()
	testConv(t, w, []device.ConvShape{
		{N: 2, C: 8, H: 13, W: 13, K: 6, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2}, // small
		{N: 4, C: 64, H: 8, W: 8, K: 64, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}, // 64x64x64 products: main
	})
	if times, err = w.StopProfiling(); err != nil {
		t.Fatal(err)
	}
	ran = map[string]int{}
	for _, kt := range times {
		ran[kt.Kernel]++
	}
	if ran["gemm_blk"] == 0 || ran["gemm"+smallSuffix] == 0 || ran["wino3_input"] == 0 || ran["wino5_input"] == 0 {
		t.Errorf("Winograd: kernels run: %v; want gemm_blk, gemm%s and both Winograd sizes", ran, smallSuffix)
	}
}

// mergeDefines returns a's defines with b's added.
func mergeDefines(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// TestGemmSmallSetOff: ALEXCL_CL_LEGACY=small and GEMMS_KIND=off build
// no small set, and products take the main one; bad small sets are
// refused by Open.
func TestGemmSmallSetOff(t *testing.T) {
	t.Setenv("ALEXCL_CL_LEGACY", "small")
	d := openTestDevice(t, Options{Version: "test", Defines: smallSetDefines})
	if d.small != nil || d.gemmFor(16, 16, 4).kernel != "gemm_blk" {
		t.Errorf("ALEXCL_CL_LEGACY=small: small set %+v, gemmFor %s", d.small, d.gemmFor(16, 16, 4).kernel)
	}
	if _, ok := d.Tunables()["GEMMS_KIND"]; ok {
		t.Errorf("ALEXCL_CL_LEGACY=small: Tunables lists the small set that was not built: %v", d.Tunables())
	}
	t.Setenv("ALEXCL_CL_LEGACY", "")
	off := mergeDefines(smallSetDefines, map[string]string{"GEMMS_KIND": "off"})
	if d := openTestDevice(t, Options{Version: "test", Defines: off}); d.small != nil {
		t.Errorf("GEMMS_KIND=off: small set %+v", d.small)
	}
	for _, c := range []struct {
		defs map[string]string
		want string
	}{
		{map[string]string{"GEMMS_TSM": "128", "GEMMS_TSN": "64", "GEMMS_WPTM": "8"}, "must be at most 64x64"},
		{map[string]string{"GEMMS_KIND": "vector"}, `GEMMS_KIND="vector"`},
		{map[string]string{"GEMMS_TSK": "x"}, `GEMMS_TSK="x": not an integer`},
		{map[string]string{"GEMMS_WPTM": "3"}, "small gemm tiled 16x16x12/3x2"},
		// The main set's user tiles are checked too.
		{map[string]string{"GEMM_WPTM": "3"}, "GEMM tiles 32x32x8, register blocks 3x4: tile 32x32 is not a multiple"},
		{map[string]string{"CONV_TSM": "256", "CONV_TSN": "256", "CONV_WPTM": "1", "CONV_WPTN": "1"}, "CONV tiles 256x256x16, register blocks 1x1: work-group of 65536"},
		{map[string]string{"GEMMS_KIND": "off", "GEMMS_TSM": "32"}, ""}, // off: the rest is not read
	} {
		if c.want == "" {
			d := openTestDevice(t, Options{Version: "test", Defines: mergeDefines(smallSetDefines, c.defs)})
			if d.small != nil {
				t.Errorf("%v: small set %+v", c.defs, d.small)
			}
			continue
		}
		_, err := Open(0, Options{Version: "test", Defines: mergeDefines(smallSetDefines, c.defs)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.defs, err, c.want)
		}
	}
}

// TestSmallAlternative: the tuner records the best-scoring measured set
// of at most 64x64 beside a larger choice, and none beside a small one.
func TestSmallAlternative(t *testing.T) {
	big := blocked(128, 128, 16, 8, 8)
	cands := []candidate{tiled(64, 64, 16, 4, 4), tiled(64, 64, 32, 4, 4), blocked(64, 64, 16, 4, 4), big, tiled(128, 64, 16, 8, 4), vector(8, 4, 8)}
	res := []tuneResult{
		{Family: "gemm", Candidate: cands[0].String(), Score: 16800},
		{Family: "gemm", Candidate: cands[1].String(), Score: 17700},
		{Family: "gemm", Candidate: cands[2].String(), Score: 18000, Dropped: "wrong result"},
		{Family: "gemm", Candidate: big.String(), Score: 17800, Chosen: true},
		{Family: "gemm", Candidate: cands[4].String(), Score: 17750},
		{Family: "gemm", Candidate: cands[5].String(), Score: 19000},
		{Family: "conv", Candidate: cands[2].String(), Score: 30000},
	}
	if got, ok := smallAlternative(big, cands, res); !ok || got != cands[1] {
		t.Errorf("smallAlternative = %v, %v; want %v", got, ok, cands[1])
	}
	if got, ok := smallAlternative(cands[1], cands, res); ok {
		t.Errorf("beside a 64x64 choice: %v, want none", got)
	}
	if got, ok := smallAlternative(big, cands, nil); ok {
		t.Errorf("nothing measured: %v, want none", got)
	}
}

// TestGemmSmallSetCache: the small set goes through the kernel cache, as
// the program does: a second Open loads both.
func TestGemmSmallSetCache(t *testing.T) {
	dir := t.TempDir()
	for i, want := range []string{"kernel cache miss", "kernel cache hit"} {
		var log logLines
		d := openTestDevice(t, Options{Version: "test", CacheDir: dir, Defines: smallSetDefines, Logf: log.logf})
		if d.small == nil || strings.Count(log.String(), want) != 2 {
			t.Errorf("Open %d: small set %+v; want %q twice (the program, the small set) in\n%s", i+1, d.small, want, log.String())
		}
	}
}

// TestSmallSetTuning: the small set's defines, set by the user, leave
// tuning on and replace the tuned set as a whole; other tuned names turn
// tuning off; GEMMS_* without GEMMS_KIND is an error.
func TestSmallSetTuning(t *testing.T) {
	for _, c := range []struct {
		defs map[string]string
		off  bool
	}{
		{map[string]string{"GEMMS_KIND": "off"}, false},
		{map[string]string{"GEMMS_KIND": "tiled", "GEMMS_TSM": "32"}, false},
		{map[string]string{"CONV_WINO": "on"}, false},
		{map[string]string{"GEMM_TSM": "32"}, true},
		{map[string]string{"GEMMS_KIND": "off", "CONV_KIND": "tiled"}, true},
	} {
		if n, off := userTuned(c.defs); off != c.off {
			t.Errorf("%v: tuning off %v (%s), want %v", c.defs, off, n, c.off)
		}
	}
	tuned := mergeDefines(blocked(128, 128, 16, 8, 8).defines("GEMM"), blocked(64, 64, 32, 4, 4).defines("GEMMS"))
	d := &Device{opts: Options{Defines: map[string]string{"GEMMS_KIND": "off"}}}
	d.setTunables(tuned)
	if d.opts.Defines["GEMMS_KIND"] != "off" || d.opts.Defines["GEMMS_TSM"] != "" || d.opts.Defines["GEMM_TSM"] != "128" {
		t.Errorf("GEMMS_KIND=off set, the tuned set recorded: %v", d.opts.Defines)
	}
	d = &Device{}
	d.setTunables(tuned)
	if d.opts.Defines["GEMMS_KIND"] != "blocked" || d.opts.Defines["GEMMS_TSK"] != "32" {
		t.Errorf("nothing set: %v, want the tuned small set", d.opts.Defines)
	}
	if _, err := smallDefines(map[string]string{"GEMMS_TSM": "32"}); err == nil || !strings.Contains(err.Error(), "without GEMMS_KIND") {
		t.Errorf("GEMMS_TSM without GEMMS_KIND: %v", err)
	}
}

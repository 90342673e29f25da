package opencl

// Tests of the autotuner (tune.go). The device tests use tiny shapes and
// one to three candidates, so they add seconds, not the tens of seconds a
// real tuning takes; none runs in parallel (they set package hooks).

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexcl/alexcl/device"
)

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// smallSpec is a tuning spec of tiny shapes.
func smallSpec(gemm, conv []candidate) tuneSpec {
	return tuneSpec{
		gemm: gemm, conv: conv,
		gemmShapes: []gemmShape{{tB: true, M: 16, N: 64, K: 96}, {tA: true, M: 40, N: 72, K: 50}},
		convShapes: []device.ConvShape{{N: 2, C: 6, H: 9, W: 9, K: 10, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}},
		runs:       2,
		budget:     time.Minute,
	}
}

// withSpec makes the tuner use spec for the rest of the test.
func withSpec(t *testing.T, spec tuneSpec) {
	old := tuneSpecFor
	tuneSpecFor = func(device.Info) tuneSpec { return spec }
	t.Cleanup(func() { tuneSpecFor = old })
}

// tiles returns defs without the convolutions' paths (CONV_WINO,
// CONV_BWDATA), which the tuner times last and TestTunePaths checks.
func tiles(defs map[string]string) map[string]string {
	out := maps.Clone(defs)
	delete(out, "CONV_WINO")
	delete(out, "CONV_BWDATA")
	return out
}

// withCheckHook sets tuneCheckHook for the rest of the test.
func withCheckHook(t *testing.T, hook func(family string, c candidate, out []float32)) {
	tuneCheckHook = hook
	t.Cleanup(func() { tuneCheckHook = nil })
}

func TestTuneCandidateFits(t *testing.T) {
	gpu := limits{maxWG: 1024, maxItems: []int{1024, 1024, 64}, localMem: 48 << 10}
	small := limits{maxWG: 128, maxItems: []int{128, 128, 128}, localMem: 16 << 10}
	narrow := limits{maxWG: 1024, maxItems: []int{8, 1024, 64}, localMem: 48 << 10}
	for _, tc := range []struct {
		c    candidate
		l    limits
		want string // "" when it fits
	}{
		{tiled(64, 64, 16, 4, 4), gpu, ""},
		{tiled(64, 64, 16, 4, 4), small, "work-group of 256 work items"},
		{tiled(32, 32, 16, 4, 4), small, ""},
		{tiled(128, 128, 16, 16, 16), small, "local memory"}, // 64 work items, 16.5 KiB of tiles
		{tiled(128, 128, 64, 8, 8), gpu, "local memory"},     // 66 KiB of tiles
		{tiled(64, 64, 16, 4, 4), narrow, "work-item sizes"},
		{tiled(64, 60, 16, 4, 8), gpu, "not a multiple"},
		{tiled(0, 64, 16, 4, 4), gpu, "1 to 256"},
		{vector(16, 6, 8), gpu, ""},
		{vector(12, 6, 8), gpu, "vector width 12"},
		{vector(16, 9, 8), gpu, "9 rows"},
		{vector(16, 6, 256), small, "work-group height 256"},
		{candidate{Kind: "cuda"}, gpu, "kernel family"},
		{blocked(64, 64, 16, 4, 4), gpu, ""},
		{blocked(64, 64, 16, 2, 4), gpu, "multiples of 4"},
		{blocked(64, 64, 16, 4, 4).ku(2), gpu, ""},
		{blocked(64, 64, 16, 4, 4).ku(16), gpu, ""},
		{blocked(64, 64, 16, 4, 4).ku(0), gpu, ""}, // the kernel's default runs
		{blocked(64, 64, 16, 4, 4).ku(3), gpu, "must divide the K step 16"},
		{blocked(64, 64, 16, 4, 4).ku(-2), gpu, "must divide"},
		{tiled(64, 64, 16, 4, 4).ku(2), gpu, "only the blocked kernel"},
		{blocked(128, 128, 16, 8, 8), small, "work-group of 256"},
		{tiled(128, 128, 32, 8, 8), gpu, ""},
		{blocked(128, 128, 32, 8, 8), gpu, "local memory"}, // two buffers: 66 KiB
	} {
		err := tc.c.fits(tc.l)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v fits %+v: %v, want %q", tc.c, tc.l, err, tc.want)
		}
	}

	// Every default candidate fits a common GPU and reads back from its
	// defines unchanged.
	for _, typ := range []string{"CPU", "GPU"} {
		spec := defaultTuneSpec(device.Info{Type: typ})
		for _, fam := range []struct {
			prefix string
			cands  []candidate
		}{{"GEMM", spec.gemm}, {"CONV", spec.conv}} {
			for _, c := range fam.cands {
				if err := c.fits(gpu); err != nil {
					t.Errorf("%s default %s candidate %v: %v", typ, fam.prefix, c, err)
				}
				if fam.prefix == "CONV" && c.Kind != gemmTiled {
					t.Errorf("conv candidate %v is not tiled", c)
				}
				back, err := parseCandidate(c.defines(fam.prefix), fam.prefix)
				if err != nil || back != c {
					t.Errorf("%v → %v → %v, %v", c, c.defines(fam.prefix), back, err)
				}
			}
		}
		if spec.gemm[0] != (map[string]candidate{"CPU": vector(16, 6, 8), "GPU": tiled(64, 64, 16, 4, 4)})[typ] {
			t.Errorf("%s: first candidate %v is not the vendor default", typ, spec.gemm[0])
		}
	}
}

func TestTuneMode(t *testing.T) {
	for _, tc := range []struct {
		env  string
		tune bool
		want tuneMode
	}{
		{"", false, tuneOff}, {"", true, tuneOn},
		{"off", true, tuneOff}, {"0", true, tuneOff},
		{"on", false, tuneOn}, {"force", false, tuneForce}, {"FORCE", true, tuneForce},
		{"sometimes", true, tuneOn}, {"sometimes", false, tuneOff},
	} {
		t.Setenv("ALEXCL_TUNE", tc.env)
		var log logLines
		o := Options{Tune: tc.tune, Logf: log.logf}
		if got := tuneModeOf(&o); got != tc.want {
			t.Errorf("ALEXCL_TUNE=%q Tune=%v: mode %d, want %d", tc.env, tc.tune, got, tc.want)
		}
		if tc.env == "sometimes" && !strings.Contains(log.String(), "ignored") {
			t.Errorf("ALEXCL_TUNE=%q: logged %q, want it named as ignored", tc.env, log.String())
		}
	}
}

// TestTuneOffKeepsDefaults: with ALEXCL_TUNE=off, or Defines that choose
// a tuned name, Open keeps the Defines as given (applyTuning returns
// before it looks at the platform or the device).
func TestTuneOffKeepsDefaults(t *testing.T) {
	for _, tc := range []struct {
		env  string
		defs map[string]string
		want string
	}{
		{"off", nil, ""},
		{"force", map[string]string{"GEMMV_MR": "4"}, "ALEXCL_CL_DEFINES sets GEMMV_MR"},
		{"", map[string]string{"GEMM_KIND": "tiled", "LOSS_WG": "32"}, "ALEXCL_CL_DEFINES sets GEMM_KIND"},
	} {
		t.Setenv("ALEXCL_TUNE", tc.env)
		var log logLines
		d := &Device{info: device.Info{Name: "test device"}, opts: Options{Tune: true, Defines: maps.Clone(tc.defs), Logf: log.logf}}
		d.applyTuning(nil)
		if !maps.Equal(d.opts.Defines, tc.defs) {
			t.Errorf("ALEXCL_TUNE=%q Defines %v: became %v", tc.env, tc.defs, d.opts.Defines)
		}
		if got := log.String(); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("ALEXCL_TUNE=%q Defines %v: logged %q, want %q", tc.env, tc.defs, got, tc.want)
		}
	}
}

func TestTuneRecordValidate(t *testing.T) {
	lim := limits{maxWG: 256, maxItems: []int{256, 256, 256}, localMem: 32 << 10}
	good := func() *tuneRecord {
		defs := tiled(64, 64, 16, 4, 4).defines("GEMM")
		maps.Copy(defs, tiled(32, 64, 16, 2, 4).defines("CONV"))
		return &tuneRecord{Format: tuneFormat, Key: "k", Defines: defs}
	}
	if err := good().validate("k", lim); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	for _, v := range []string{"off", "on", "filter", "forward+data+filter", "data+forward"} {
		r := good()
		r.Defines["CONV_WINO"] = v
		if err := r.validate("k", lim); err != nil {
			t.Errorf("CONV_WINO=%s: %v", v, err)
		}
	}
	// A record with a small GEMM set beside larger tiles (gemmset.go).
	withSmall := func() *tuneRecord {
		r := good()
		maps.Copy(r.Defines, tiled(128, 64, 16, 8, 4).defines("GEMM"))
		maps.Copy(r.Defines, tiled(64, 64, 32, 4, 4).defines("GEMMS"))
		return r
	}
	if err := withSmall().validate("k", lim); err != nil {
		t.Errorf("a small GEMM set: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(r *tuneRecord)
		want string
	}{
		"small too big": {func(r *tuneRecord) {
			*r = *withSmall()
			maps.Copy(r.Defines, tiled(128, 64, 16, 8, 4).defines("GEMMS"))
		}, "at most 64x64"},
		"small no fit": {func(r *tuneRecord) {
			*r = *withSmall()
			maps.Copy(r.Defines, tiled(64, 64, 16, 2, 2).defines("GEMMS"))
		}, "small gemm tiled 64x64x16/2x2"},
		"format":       {func(r *tuneRecord) { r.Format = "alexcl-tune-v0" }, "format"},
		"key":          {func(r *tuneRecord) { r.Key = "other" }, "key"},
		"foreign name": {func(r *tuneRecord) { r.Defines["LOSS_WG"] = "64" }, "LOSS_WG"},
		"no kind":      {func(r *tuneRecord) { delete(r.Defines, "GEMM_KIND") }, "GEMM_KIND"},
		"not a number": {func(r *tuneRecord) { r.Defines["GEMM_TSK"] = "16;" }, "not an integer"},
		"illegal":      {func(r *tuneRecord) { r.Defines["GEMM_WPTM"] = "3" }, "not a multiple"},
		"too big":      {func(r *tuneRecord) { r.Defines["CONV_WPTM"] = "1" }, "work-group of 512"},
		"missing conv": {func(r *tuneRecord) { delete(r.Defines, "CONV_TSN") }, "CONV_TSN"},
		"blocked 2x4":  {func(r *tuneRecord) { r.Defines["GEMM_KIND"], r.Defines["GEMM_WPTM"] = gemmBlocked, "2" }, "multiples of 4"},
		"tiled ku":     {func(r *tuneRecord) { r.Defines["GEMM_KU"] = "2" }, "only the blocked kernel"},
		"blocked ku5": {func(r *tuneRecord) {
			maps.Copy(r.Defines, blocked(64, 64, 16, 4, 4).ku(5).defines("GEMM"))
		}, "GEMM_KU=5: must be at least 1 and divide GEMM_TSK=16"},
		"blocked ku0": {func(r *tuneRecord) {
			maps.Copy(r.Defines, blocked(64, 64, 16, 4, 4).defines("GEMM"))
			r.Defines["GEMM_KU"] = "0"
		}, "GEMM_KU=0"},
		// conv.cl checks CONV_KU in every build, so a tiled conv with a
		// bad one is refused too.
		"tiled conv ku3": {func(r *tuneRecord) { r.Defines["CONV_KU"] = "3" }, "CONV_KU=3"},
		"conv ku alone": {func(r *tuneRecord) {
			for _, n := range []string{"CONV_TSM", "CONV_TSN", "CONV_TSK", "CONV_WPTM", "CONV_WPTN"} {
				delete(r.Defines, n)
			}
			r.Defines["CONV_KU"] = "2"
		}, "CONV_TSM"},
		// 64x64x32/4x4 conv tiles fit 32 KiB as conv2d_forward (16.6 KiB)
		// but not double-buffered as conv2d_forward_blk (34 KiB).
		"blocked conv": {func(r *tuneRecord) {
			maps.Copy(r.Defines, blocked(64, 64, 32, 4, 4).defines("CONV"))
		}, "conv blocked 64x64x32/4x4: needs 34816 bytes of local memory"},
		// Without CONV_KIND the convolution follows GEMM_KIND.
		"conv kind from gemm": {func(r *tuneRecord) {
			maps.Copy(r.Defines, blocked(64, 64, 16, 4, 4).defines("GEMM"))
			maps.Copy(r.Defines, tiled(64, 64, 32, 4, 4).defines("CONV"))
			delete(r.Defines, "CONV_KIND")
		}, "conv blocked 64x64x32/4x4: needs 34816 bytes of local memory"},
		"conv kind":      {func(r *tuneRecord) { r.Defines["CONV_KIND"] = "vector" }, `CONV_KIND="vector"`},
		"winograd":       {func(r *tuneRecord) { r.Defines["CONV_WINO"] = "forward+sideways" }, `CONV_WINO="forward+sideways"`},
		"winograd5":      {func(r *tuneRecord) { r.Defines["CONV_WINO5"] = "filter+up" }, `CONV_WINO5="filter+up"`},
		"winograd43":     {func(r *tuneRecord) { r.Defines["CONV_WINO43"] = "4x4" }, `CONV_WINO43="4x4"`},
		"winograd35":     {func(r *tuneRecord) { r.Defines["CONV_WINO35"] = "forward+" }, `CONV_WINO35="forward+"`},
		"bwdata":         {func(r *tuneRecord) { r.Defines["CONV_BWDATA"] = "gemm" }, `CONV_BWDATA="gemm"`},
		"winograd twice": {func(r *tuneRecord) { r.Defines["CONV_WINO"] = "data+data" }, "names data twice"},
		"conv kind alone": {func(r *tuneRecord) {
			for _, n := range []string{"CONV_TSM", "CONV_TSN", "CONV_TSK", "CONV_WPTM", "CONV_WPTN", "CONV_KIND"} {
				delete(r.Defines, n)
			}
			r.Defines["CONV_KIND"] = "blk"
		}, `CONV_KIND="blk"`},
	} {
		r := good()
		tc.edit(r)
		if err := r.validate("k", lim); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
		}
	}
}

// TestTuneOpen tunes on Open, saves the record, reads it back on the next
// Open, re-tunes over a corrupt or stale record and with
// ALEXCL_TUNE=force, and skips candidates the device cannot run.
func TestTuneOpen(t *testing.T) {
	requireOpenCL(t)
	t.Setenv("ALEXCL_TUNE", "")
	// One candidate that runs (the tuned set of TestVectorRetuned) and one
	// no device allows (65536 work items per group).
	want := vector(4, 3, 2)
	withSpec(t, smallSpec([]candidate{tiled(256, 256, 8, 1, 1), want}, nil))
	dir := t.TempDir()
	open := func() (*Device, string) {
		t.Helper()
		var log logLines
		d, err := Open(0, Options{Version: "test", CacheDir: dir, Tune: true, Logf: log.logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d, log.String()
	}
	checkTuned := func(d *Device) {
		t.Helper()
		got := d.Tunables()
		for n, v := range want.defines("GEMM") {
			if got[n] != v {
				t.Fatalf("Tunables() = %v, want %v", got, want.defines("GEMM"))
			}
		}
		if d.gemmKind() != gemmVector || d.tunable("GEMMV_MR", 0) != 3 {
			t.Fatalf("the device launches as %s with GEMMV_MR %d", d.gemmKind(), d.tunable("GEMMV_MR", 0))
		}
		// The program was built with the tuned values: a product is right.
		a, b := []float32{1, 2, 3, 4, 5, 6}, []float32{1, 0, 2, 1, 0, 3}
		A, B, C := up(t, d, a), up(t, d, b), up(t, d, make([]float32, 4))
		if err := d.Gemm(false, false, 2, 2, 3, 1, A, B, 0, C); err != nil {
			t.Fatal(err)
		}
		if got := down(t, d, C, 4); got[0] != 5 || got[1] != 11 || got[2] != 14 || got[3] != 23 {
			t.Fatalf("Gemm on the tuned device = %v, want [5 11 14 23]", got)
		}
	}

	d, log := open()
	for _, s := range []string{
		"tuning gemm on " + d.info.Name + ": candidate tiled 256x256x8/1x1 skipped: does not fit the device: work-group of 65536",
		"tuning gemm on " + d.info.Name + ": candidate vector vw4 mr3 lm2: ",
		"GFLOP/s",
		"tuned " + d.info.Name,
		"saved " + dir,
	} {
		if !strings.Contains(log, s) {
			t.Fatalf("first open logged:\n%s\nwant %q", log, s)
		}
	}
	checkTuned(d)
	records, _ := filepath.Glob(filepath.Join(dir, "tune-*.json"))
	if len(records) != 1 {
		t.Fatalf("records %v, want one", records)
	}
	path := records[0]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec tuneRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("record: %v", err)
	}
	if err := rec.validate(rec.Key, limitsOf(d.dev)); err != nil || len(rec.Results) != 2 ||
		!rec.Results[1].Chosen || rec.Results[1].Score <= 0 || len(rec.Results[1].GFLOPS) != 2 || rec.Results[0].Dropped == "" {
		t.Fatalf("record %s (%v)", data, err)
	}
	t.Logf("record:\n%s", data)

	_, log = open()
	if !strings.Contains(log, "tuning record hit "+path) || strings.Contains(log, "tuning gemm") {
		t.Fatalf("second open logged:\n%s\nwant a record hit", log)
	}

	// A corrupt record, a stale one (another key) and one of illegal
	// tiles are each re-tuned and replaced.
	stale := strings.Replace(string(data), rec.Key, strings.Repeat("0", len(rec.Key)), 1)
	illegal := strings.Replace(string(data), `"GEMMV_VW": "4"`, `"GEMMV_VW": "5"`, 1)
	for name, bad := range map[string]string{"corrupt": `{"format": "alexcl-tune-v1", "key`, "stale": stale, "illegal": illegal} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		d, log := open()
		if !strings.Contains(log, "tuning record "+path+" unusable, re-tuning") || !strings.Contains(log, "saved "+path) {
			t.Fatalf("open over a %s record logged:\n%s", name, log)
		}
		checkTuned(d)
		if _, err := loadTuneRecord(path, rec.Key, limitsOf(d.dev)); err != nil {
			t.Fatalf("after the %s record: %v", name, err)
		}
	}

	t.Setenv("ALEXCL_TUNE", "force")
	if _, log := open(); !strings.Contains(log, "tuning gemm on") || strings.Contains(log, "record hit") {
		t.Fatalf("ALEXCL_TUNE=force logged:\n%s\nwant a new tuning", log)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// TestTuneRejectsWrongResults: candidates whose results are wrong (on the
// small checks, or only on a timed shape, or a never-written entry) are
// dropped whatever their speed, and when every candidate is wrong tuning
// fails, which leaves the vendor defaults.
func TestTuneRejectsWrongResults(t *testing.T) {
	t.Setenv("ALEXCL_TUNE", "")
	d := openTestDevice(t)
	var log logLines
	d.opts.Logf = log.logf
	cands := []candidate{vector(4, 3, 2), vector(8, 2, 2), vector(16, 1, 4)}
	spec := smallSpec(cands, nil)
	withSpec(t, spec)
	big := spec.gemmShapes[0].M * spec.gemmShapes[0].N
	withCheckHook(t, func(_ string, c candidate, out []float32) {
		switch c {
		case cands[0]: // off by a little in one entry of every output
			out[len(out)/2] += 0.01
		case cands[2]: // one entry of the first timed shape never written
			if len(out) == big {
				out[3] = float32(math.NaN())
			}
		}
	})
	rec, err := d.tune(limitsOf(d.dev))
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, log.String())
	}
	if !maps.Equal(rec.Defines, cands[1].defines("GEMM")) {
		t.Fatalf("chose %v, want %v (the only right one)\n%s", rec.Defines, cands[1].defines("GEMM"), log.String())
	}
	for i, r := range rec.Results {
		if wrong := i != 1; wrong != strings.Contains(r.Dropped, "wrong result") || r.Chosen == wrong {
			t.Errorf("result %+v", r)
		}
	}
	if !strings.Contains(rec.Results[2].Dropped, "16x64x96 A·Bᵀ: wrong result: index 3 is NaN") {
		t.Errorf("the never-written entry was reported as %q", rec.Results[2].Dropped)
	}

	withCheckHook(t, func(_ string, _ candidate, out []float32) { out[0] = -out[0] + 1 })
	if rec, err := d.tune(limitsOf(d.dev)); err == nil || !strings.Contains(err.Error(), "none of 3 candidates passed") {
		t.Fatalf("every candidate wrong: %+v, %v", rec, err)
	}
}

// TestTuneConv runs the tiled family's tuning (a GPU's) on this device:
// after the GEMM, conv2d_forward's tiles are chosen the same way, and a
// wrong conv candidate is dropped.
func TestTuneConv(t *testing.T) {
	t.Setenv("ALEXCL_TUNE", "")
	d := openTestDevice(t)
	var log logLines
	d.opts.Logf = log.logf
	gemm := tiled(16, 16, 8, 2, 2)
	conv := []candidate{tiled(8, 16, 8, 2, 2), tiled(16, 8, 4, 4, 2)}
	withSpec(t, smallSpec([]candidate{gemm}, conv))
	withCheckHook(t, func(family string, c candidate, out []float32) {
		if family == "conv" && c == conv[0] {
			out[len(out)-1] *= 2
		}
	})
	rec, err := d.tune(limitsOf(d.dev))
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, log.String())
	}
	want := gemm.defines("GEMM")
	maps.Copy(want, conv[1].defines("CONV"))
	if !maps.Equal(tiles(rec.Defines), want) {
		t.Fatalf("chose %v, want %v\n%s", rec.Defines, want, log.String())
	}
	if !strings.Contains(log.String(), "tuning conv on "+d.info.Name+": candidate tiled 8x16x8/2x2 dropped: wrong result: Conv2DForward") {
		t.Errorf("log:\n%s\nwant the wrong conv candidate dropped", log.String())
	}
	t.Logf("%s", log.String())
}

// TestTuneBlocked tunes the blocked family (gemm_blk) on this device: a
// wrong candidate is dropped, the right one is chosen and its record reads
// back, the forward convolution's tiles are tuned after it (on
// conv2d_forward_blk), and the device built from the record launches the
// blocked kernels and computes right.
func TestTuneBlocked(t *testing.T) {
	t.Setenv("ALEXCL_TUNE", "")
	d := openTestDevice(t)
	var log logLines
	d.opts.Logf = log.logf
	// The winner unrolls its K steps whole, and so do the blocked conv
	// candidates then (convFamily). The conv tiles are tried on both
	// kernels; the tiled one is made wrong, so conv2d_forward_blk wins.
	bad, good := blocked(16, 16, 8, 4, 4), blocked(32, 16, 8, 8, 4).ku(8)
	conv := tiled(16, 16, 8, 4, 4) // conv2d_forward_blk's 4 x 4 pieces
	withSpec(t, smallSpec([]candidate{bad, good}, []candidate{conv}))
	withCheckHook(t, func(family string, c candidate, out []float32) {
		if family == "gemm" && c == bad || family == "conv" && c == conv {
			out[0] += 1
		}
	})
	rec, err := d.tune(limitsOf(d.dev))
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, log.String())
	}
	want := good.defines("GEMM")
	blk := conv
	blk.Kind = gemmBlocked
	maps.Copy(want, blk.ku(8).defines("CONV"))
	if !maps.Equal(tiles(rec.Defines), want) {
		t.Fatalf("chose %v, want %v\n%s", rec.Defines, want, log.String())
	}
	if !strings.Contains(log.String(), "candidate blocked 16x16x8/4x4 dropped: wrong result") {
		t.Errorf("log:\n%s\nwant the wrong candidate dropped", log.String())
	}
	rec.Key = "k"
	if err := rec.validate("k", limitsOf(d.dev)); err != nil {
		t.Fatalf("record of the blocked family: %v", err)
	}
	if c, err := parseCandidate(rec.Defines, "GEMM"); err != nil || c != good {
		t.Fatalf("record reads back as %v (%v), want %v", c, err, good)
	}
	if c, err := parseCandidate(rec.Defines, "CONV"); err != nil || c != blk.ku(8) {
		t.Fatalf("record's conv reads back as %v (%v), want %v", c, err, blk.ku(8))
	}
	if !strings.Contains(log.String(), "tuning conv on "+d.info.Name+": candidate tiled 16x16x8/4x4 dropped: wrong result") {
		t.Errorf("log:\n%s\nwant the tiled conv candidate dropped", log.String())
	}

	tuned := openTestDevice(t, Options{Version: "test", Defines: rec.Defines})
	if tuned.gemmKind() != gemmBlocked || tuned.convForwardKernel() != "conv2d_forward_blk" {
		t.Fatalf("device built from the record uses %s and %s", tuned.gemmKind(), tuned.convForwardKernel())
	}
	testGemm(t, tuned)
	testConv(t, tuned, convShapes[:len(convShapes)-1])
}

// TestTuneGemmShare gives the matrix products a vanishing share of a long
// budget: they stop after their first candidate and one timed round, and
// the forward convolution still tries all of its candidates.
func TestTuneGemmShare(t *testing.T) {
	t.Setenv("ALEXCL_TUNE", "")
	d := openTestDevice(t)
	var log logLines
	d.opts.Logf = log.logf
	gemm := []candidate{tiled(16, 16, 8, 2, 2), tiled(16, 16, 4, 2, 2)}
	conv := []candidate{tiled(8, 16, 8, 2, 2), tiled(16, 8, 4, 4, 2)}
	spec := smallSpec(gemm, conv)
	spec.gemmShare = 1e-12
	withSpec(t, spec)
	rec, err := d.tune(limitsOf(d.dev))
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "tuning gemm on "+d.info.Name+": its share of the 1m0s budget is spent, 1 candidates not tried") {
		t.Errorf("log:\n%s\nwant the second GEMM candidate left out", log.String())
	}
	tried := 0
	for _, r := range rec.Results {
		if r.Family == "conv" && r.Score > 0 {
			tried++
		}
	}
	if tried != len(conv) || strings.Contains(log.String(), "tuning conv on "+d.info.Name+": its share") {
		t.Errorf("%d of %d conv candidates timed\n%s", tried, len(conv), log.String())
	}
	if _, ok := rec.Defines["CONV_TSM"]; !ok {
		t.Errorf("no conv tiles chosen: %v", rec.Defines)
	}
}

// TestTuneConvFails: when every conv candidate fails after a blocked GEMM
// won, the record says CONV_KIND=tiled, so the device runs conv2d_forward
// with its default tiles, as the log says, not the unchecked
// conv2d_forward_blk; such a record is valid.
func TestTuneConvFails(t *testing.T) {
	t.Setenv("ALEXCL_TUNE", "")
	d := openTestDevice(t)
	var log logLines
	d.opts.Logf = log.logf
	gemm := blocked(32, 16, 8, 8, 4)
	withSpec(t, smallSpec([]candidate{gemm}, []candidate{tiled(16, 16, 8, 4, 4)}))
	withCheckHook(t, func(family string, c candidate, out []float32) {
		if family == "conv" {
			out[0] += 1
		}
	})
	rec, err := d.tune(limitsOf(d.dev))
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, log.String())
	}
	want := gemm.defines("GEMM")
	want["CONV_KIND"] = gemmTiled
	if !maps.Equal(tiles(rec.Defines), want) {
		t.Fatalf("chose %v, want %v\n%s", rec.Defines, want, log.String())
	}
	if !strings.Contains(log.String(), "conv2d_forward keeps its default tiles") {
		t.Errorf("log:\n%s\nwant the conv fallback named", log.String())
	}
	rec.Key = "k"
	if err := rec.validate("k", limitsOf(d.dev)); err != nil {
		t.Fatalf("record: %v", err)
	}
	tuned := openTestDevice(t, Options{Version: "test", Defines: rec.Defines})
	if tuned.convForwardKernel() != "conv2d_forward" || tuned.kernels["conv2d_forward_blk"] != nil {
		t.Errorf("device from the record runs %s (conv2d_forward_blk built: %v)", tuned.convForwardKernel(), tuned.kernels["conv2d_forward_blk"] != nil)
	}
}

// TestTunePaths runs the tuner's last step after a tiled and after a
// vector GEMM: each op is timed with and without Winograd and one of the
// two is chosen, the record names exactly the ops whose Winograd time won,
// the implicit data gradient is timed and chosen on the GPU family only,
// and the record is valid;
// then with Winograd's outputs made wrong, on the small checks for
// forward and on the timed shape for the filter gradient, those ops keep
// their usual paths, with the reason in the log. (Each timed comparison
// also fails unless the two paths launched different kernels, so the
// first half fails if CONV_WINO steers nothing.)
func TestTunePaths(t *testing.T) {
	t.Setenv("ALEXCL_TUNE", "")
	spec := smallSpec(nil, []candidate{tiled(16, 16, 8, 2, 2)})
	spec.winoShapes = []device.ConvShape{
		{N: 2, C: 8, H: 13, W: 13, K: 12, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},
		{N: 2, C: 4, H: 11, W: 9, K: 6, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 1},
	}
	for _, gemm := range []candidate{tiled(16, 16, 8, 2, 2), vector(16, 6, 8)} {
		d := openTestDevice(t)
		var log logLines
		d.opts.Logf = log.logf
		spec.gemm = []candidate{gemm}
		withSpec(t, spec)
		rec, err := d.tune(limitsOf(d.dev))
		if err != nil {
			t.Fatalf("tune: %v\n%s", err, log.String())
		}
		// pair returns the results of family's two paths of op, named
		// usual and alt, checking that both were timed and at most one
		// chosen.
		pair := func(family, op, usual, alt string) (u, a *tuneResult) {
			t.Helper()
			for i, r := range rec.Results {
				switch {
				case r.Family == family && r.Candidate == op+" "+usual:
					u = &rec.Results[i]
				case r.Family == family && r.Candidate == op+" "+alt:
					a = &rec.Results[i]
				}
			}
			if u == nil || a == nil || len(u.GFLOPS) != 1 || len(a.GFLOPS) != 1 || u.Chosen && a.Chosen {
				t.Fatalf("%v: %s %s: results %+v and %+v, want both timed and at most one chosen\n%s", gemm, family, op, u, a, log.String())
			}
			return u, a
		}
		for _, R := range []int{3, 5} {
			family, define := fmt.Sprintf("winograd%d", R), winoDefines[R]
			large := winoLarge[R]
			largeFamily := fmt.Sprintf("winograd%d%d", large.M, R)
			var won, wonLarge []string
			for _, op := range []string{winoOpForward, winoOpData, winoOpFilter} {
				direct, wino := pair(family, op, "direct", "winograd")
				// The larger tile was timed against the first pair's winner,
				// which the results name.
				incumbent := "direct"
				if slices.ContainsFunc(rec.Results, func(r tuneResult) bool { return r.Family == largeFamily && r.Candidate == op+" winograd" }) {
					incumbent = "winograd"
				}
				_, wl := pair(largeFamily, op, incumbent, large.name)
				// Exactly one of the three paths runs the op.
				if n := btoi(direct.Chosen) + btoi(wino.Chosen) + btoi(wl.Chosen); n != 1 {
					t.Errorf("%v: %s %s: %d paths chosen (direct %v, winograd %v, %s %v)", gemm, family, op, n, direct.Chosen, wino.Chosen, large.name, wl.Chosen)
				}
				if !wl.Chosen && (incumbent == "winograd") != wino.Chosen {
					t.Errorf("%v: %s %s: the larger tile lost to %s, but winograd chosen %v", gemm, family, op, incumbent, wino.Chosen)
				}
				switch {
				case wl.Chosen:
					wonLarge = append(wonLarge, op)
				case wino.Chosen:
					won = append(won, op)
				}
			}
			for name, want := range map[string]string{define: joinOps(won), large.define: joinOps(wonLarge)} {
				if rec.Defines[name] != want {
					t.Errorf("%v: %s=%q, want %q from the results", gemm, name, rec.Defines[name], want)
				}
			}
		}
		// The implicit data gradient: timed on GPU families only.
		bw, ok := rec.Defines["CONV_BWDATA"]
		timed := slices.ContainsFunc(rec.Results, func(r tuneResult) bool { return r.Family == "bwdata" && len(r.GFLOPS) > 0 })
		if gpu := gemm.Kind != gemmVector; timed != gpu || gpu != ok || ok && bw != "col" && bw != "implicit" {
			t.Errorf("%v: CONV_BWDATA=%q (set: %v, timed: %v)", gemm, bw, ok, timed)
		}
		rec.Key = "k"
		if err := rec.validate("k", limitsOf(d.dev)); err != nil {
			t.Fatalf("%v: record: %v", gemm, err)
		}
		if _, err := json.Marshal(rec); err != nil {
			t.Fatalf("%v: record: %v", gemm, err)
		}
		t.Logf("%v: %s\n%s", gemm, describeDefines(rec.Defines), log.String())
	}

	d := openTestDevice(t)
	var log logLines
	d.opts.Logf = log.logf
	spec.gemm = []candidate{tiled(16, 16, 8, 2, 2)}
	withSpec(t, spec)
	withCheckHook(t, func(family string, c candidate, out []float32) {
		// Forward's small checks; the filter gradient's timed shape (the
		// small checks' outputs are shorter).
		if family == "winograd3" && (c.Kind == winoOpForward || c.Kind == winoOpFilter && len(out) == 12*4*9) {
			out[len(out)/2] += 1
		}
	})
	rec, err := d.tune(limitsOf(d.dev))
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, log.String())
	}
	ops, _ := winoOps("CONV_WINO", rec.Defines["CONV_WINO"])
	if slices.Contains(ops, winoOpForward) || slices.Contains(ops, winoOpFilter) {
		t.Errorf("CONV_WINO=%s takes a wrong op", rec.Defines["CONV_WINO"])
	}
	if _, ok := rec.Defines["CONV_WINO5"]; !ok { // the 5x5 choice is made apart
		t.Errorf("no CONV_WINO5 in %v", rec.Defines)
	}
	if _, err := json.Marshal(rec); err != nil { // a dropped op's results are finite
		t.Errorf("record with dropped ops: %v", err)
	}
	for _, want := range []string{"tuning winograd3 on " + d.info.Name + ": forward winograd dropped: wrong result: forward",
		"tuning winograd3 on " + d.info.Name + ": filter winograd dropped: wrong result: filter 12 3x3/1 p1 g2"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log:\n%s\nwant %q", log.String(), want)
		}
	}
}

// TestTunePathsBudget runs the paths step with the tuning budget long
// spent: with no time of its own it tries nothing, records every op as
// not tried and keeps the usual paths; with pathsMin after its build it
// times them all.
func TestTunePathsBudget(t *testing.T) {
	d := openTestDevice(t)
	spec := smallSpec([]candidate{tiled(16, 16, 8, 2, 2)}, nil)
	spec.winoShapes = []device.ConvShape{{N: 2, C: 8, H: 13, W: 13, K: 12, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}}
	withSpec(t, spec)
	old := pathsMin
	t.Cleanup(func() { pathsMin = old })
	defs := tiled(16, 16, 8, 2, 2).defines("GEMM")
	for _, min := range []time.Duration{0, time.Minute} {
		pathsMin = min
		tu := d.newTuner(limitsOf(d.dev))
		tu.start = time.Now().Add(-time.Hour)
		out, res, err := tu.pickPaths(defs, true)
		tu.release()
		if err != nil {
			t.Fatal(err)
		}
		notTried, timed := 0, 0
		for _, r := range res {
			switch {
			case strings.HasPrefix(r.Dropped, "not tried"):
				notTried++
			case len(r.GFLOPS) > 0:
				timed++
			}
		}
		// bwdata on the spec's conv shape, then the three 3x3 ops, each
		// by F(2x2, 3x3) and by F(4x4, 3x3).
		if min == 0 && (notTried != 7 || timed != 0 || out["CONV_WINO"] != "off" || out["CONV_WINO43"] != "off") {
			t.Errorf("budget spent: %d not tried, %d timed, %v; want 7, 0, CONV_WINO=off, CONV_WINO43=off\n%+v", notTried, timed, out, res)
		}
		if min > 0 && (notTried != 0 || timed != 14) {
			t.Errorf("with %v after the build: %d not tried, %d timed, want 0 and 14 (both paths of 7 choices)\n%+v", min, notTried, timed, res)
		}
	}
}

// TestTunePathOverride: a convolution path set by the user
// (ALEXCL_CL_DEFINES) overrides the tuner's choice of that path only:
// tuning still runs, the tiles and the other paths stay tuned, and the log
// says which tuned value was set aside. The other define of the same
// filter size (CONV_WINO43 beside CONV_WINO) is then off unless set too,
// so that the larger tile cannot take back an op the user gave another
// path.
func TestTunePathOverride(t *testing.T) {
	requireOpenCL(t)
	t.Setenv("ALEXCL_TUNE", "")
	spec := smallSpec([]candidate{vector(4, 3, 2)}, nil)
	spec.winoShapes = []device.ConvShape{{N: 2, C: 8, H: 13, W: 13, K: 12, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}}
	withSpec(t, spec)
	dir := t.TempDir()
	var first logLines
	d, err := Open(0, Options{Version: "test", CacheDir: dir, Tune: true, Logf: first.logf})
	if err != nil {
		t.Fatal(err)
	}
	// The defines, paths included: with tuning on, the paths go per shape
	// (shapes.go) and Tunables leaves the defines of paths out.
	tuned := maps.Clone(d.opts.Defines)
	d.Close()
	if tuned["CONV_WINO"] == "" || tuned["GEMMV_MR"] != "3" {
		t.Fatalf("first Open tuned %v\n%s", tuned, first.String())
	}
	// The opposite of the tuned choice for forward.
	set := "forward"
	if ops, _ := winoOps("CONV_WINO", tuned["CONV_WINO"]); slices.Contains(ops, winoOpForward) {
		set = "off"
	}
	t.Setenv("ALEXCL_CL_DEFINES", "CONV_WINO="+set)
	var log logLines
	d, err = Open(0, Options{Version: "test", CacheDir: dir, Tune: true, Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := maps.Clone(tuned)
	want["CONV_WINO"], want["CONV_WINO43"] = set, "off"
	if got := d.Tunables(); !maps.Equal(got, want) {
		t.Errorf("Tunables() = %v, want %v\n%s", got, want, log.String())
	}
	if !strings.Contains(log.String(), "tuning record hit") || strings.Contains(log.String(), "tuning skipped") ||
		(set != tuned["CONV_WINO"] && !strings.Contains(log.String(), "CONV_WINO="+set+" as set, not the tuned "+tuned["CONV_WINO"])) {
		t.Errorf("log:\n%s\nwant the record read and the override named", log.String())
	}

	// Each size's pair, whatever the tuner chose: CONV_WINO=off is no 3x3
	// Winograd at all; CONV_WINO35 set leaves CONV_WINO5 off.
	var log2 logLines
	u := &Device{opts: Options{Defines: map[string]string{"CONV_WINO": "off", "CONV_WINO35": "data"}, Logf: log2.logf}}
	u.setTunables(map[string]string{"CONV_WINO": "on", "CONV_WINO43": "forward", "CONV_WINO5": "forward+data", "CONV_WINO35": "forward"})
	if want := map[string]string{"CONV_WINO": "off", "CONV_WINO43": "off", "CONV_WINO5": "off", "CONV_WINO35": "data"}; !maps.Equal(u.opts.Defines, want) {
		t.Errorf("setTunables: %v, want %v", u.opts.Defines, want)
	}
	s3 := device.ConvShape{N: 2, C: 16, H: 13, W: 13, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	s5 := device.ConvShape{N: 2, C: 16, H: 13, W: 13, K: 16, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 1}
	if u.winograd(s3, winoOpForward) || u.winograd(s5, winoOpForward) || !u.winograd(s5, winoOpData) {
		t.Errorf("winograd: 3x3 forward %v, 5x5 forward %v, 5x5 data %v; want false, false, true",
			u.winograd(s3, winoOpForward), u.winograd(s5, winoOpForward), u.winograd(s5, winoOpData))
	}
	if !strings.Contains(log2.String(), "CONV_WINO43=off, as CONV_WINO is set, not the tuned forward") {
		t.Errorf("log:\n%s", log2.String())
	}
}

// TestWinoBuildFallback: when the driver's compiler rejects wino.cl
// (optionalSources), Open still succeeds without it: the tuner times the
// data gradient's paths but not Winograd, the program is built without
// wino.cl, the log says why, and no convolution takes Winograd, not even
// one a tuning record would send there. A Winograd path the user set is
// an error instead, and a fault outside wino.cl still fails Open with the
// whole program's build log (TestBuildErrors).
func TestWinoBuildFallback(t *testing.T) {
	requireOpenCL(t)
	t.Setenv("ALEXCL_TUNE", "")
	t.Setenv("ALEXCL_CL_DEFINES", "")
	spec := smallSpec([]candidate{tiled(16, 16, 8, 2, 2)}, nil)
	spec.winoShapes = []device.ConvShape{{N: 2, C: 8, H: 13, W: 13, K: 12, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}}
	withSpec(t, spec)
	broken := func(name, text string) string {
		if name == "wino.cl" {
			return text + "\n#error wino.cl broken on purpose\n"
		}
		return text
	}
	var log logLines
	dir := t.TempDir()
	d, err := Open(0, Options{Version: "test", CacheDir: dir, Tune: true, Logf: log.logf, editSource: broken})
	if err != nil {
		t.Fatalf("Open with wino.cl broken: %v", err)
	}
	defer d.Close()
	defs := maps.Clone(d.opts.Defines) // paths included (Tunables leaves them out: shapes.go)
	if d.noWino == nil || d.kernels["wino3_input"] != nil || d.kernels["conv2d_forward"] == nil {
		t.Errorf("noWino = %v, wino3_input built %v, conv2d_forward built %v", d.noWino, d.kernels["wino3_input"] != nil, d.kernels["conv2d_forward"] != nil)
	}
	if defs["CONV_WINO"] != "off" || defs["CONV_WINO43"] != "off" || defs["CONV_WINO5"] != "" || defs["CONV_BWDATA"] == "" || defs["GEMM_TSM"] != "16" {
		t.Errorf("Tunables() = %v, want CONV_WINO=off, CONV_WINO43=off, no CONV_WINO5, CONV_BWDATA tuned, the tiles tuned", defs)
	}
	for _, want := range []string{"tuning the convolutions' paths on " + d.info.Name + ": wino.cl does not build, Winograd stays off",
		"warning: the Winograd convolutions are off on " + d.info.Name + ": wino.cl does not build", "wino.cl broken on purpose"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log:\n%s\nwant %q", log.String(), want)
		}
	}
	// What a record from before the driver broke wino.cl would say.
	s := device.ConvShape{N: 2, C: 4, H: 7, W: 6, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2}
	d.opts.Defines = maps.Clone(defs)
	d.opts.Defines["CONV_WINO"], d.opts.Defines["CONV_WINO_MINCH"] = "on", "1"
	testConv(t, d, []device.ConvShape{s})
	if got := winoKernelsOf(t, d, s); len(got) != 0 {
		t.Errorf("Winograd ran for %v without wino.cl", got)
	}
	// A rebuild from such defines turns them off, so Tunables says what runs.
	d.dropProgram()
	devs, err := enumerate()
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range winoAllDefines {
		d.opts.Defines[name] = []string{"forward", "on", "data", "filter+data"}[i]
	}
	var relog logLines
	d.opts.Logf = relog.logf
	if err := d.buildProgram(devs[0].platform); err != nil {
		t.Fatal(err)
	}
	for _, name := range winoAllDefines {
		if got := d.opts.Defines[name]; got != "off" {
			t.Errorf("after the rebuild: %s=%s, want off", name, got)
		}
	}
	// The rebuild went straight to the program without wino.cl: the first
	// build's failure is kept beside the binaries.
	if kept, _ := filepath.Glob(filepath.Join(dir, "*.failed")); len(kept) != 1 || !strings.Contains(relog.String(), "the build failure kept in "+kept[0]) ||
		!strings.Contains(relog.String(), "kernel cache hit") {
		t.Errorf("kept failures %v; rebuild log:\n%s", kept, relog.String())
	}

	// Set by the user, Winograd is not dropped quietly.
	t.Setenv("ALEXCL_CL_DEFINES", "CONV_WINO5=forward")
	_, err = Open(0, Options{Version: "test", NoCache: true, editSource: broken})
	if err == nil || !strings.Contains(err.Error(), "CONV_WINO5=forward is set, but wino.cl") ||
		!strings.Contains(err.Error(), "wino.cl broken on purpose") {
		t.Errorf("Open with CONV_WINO5=forward and wino.cl broken: %v", err)
	}
}

// TestTuneBudgetLeavesBuildsOut: the time spent building candidates does
// not count against the budget, nor against the deadline of the family
// being picked.
func TestTuneBudgetLeavesBuildsOut(t *testing.T) {
	start := time.Now().Add(-3 * time.Second)
	tu := &tuner{spec: tuneSpec{budget: time.Second}, start: start}
	tu.deadline = tu.by(0.5)
	if !tu.spent() || !tu.deadline.Equal(start.Add(500*time.Millisecond)) {
		t.Fatalf("3 s after the start of a 1 s budget: spent %v, deadline %v after the start", tu.spent(), tu.deadline.Sub(start))
	}
	tu.building(time.Now().Add(-2500 * time.Millisecond)) // 2.5 s of builds
	if tu.spent() {
		t.Errorf("after 2.5 s of builds in 3 s: spent, want 0.5 s of the budget used")
	}
	if d := tu.deadline.Sub(start); d < 3*time.Second || d > 3100*time.Millisecond {
		t.Errorf("deadline %v after the start, want about 3 s (0.5 s of budget + 2.5 s of builds)", d)
	}
	if d := tu.by(1).Sub(start); d < 3500*time.Millisecond || d > 3600*time.Millisecond {
		t.Errorf("budget's end %v after the start, want about 3.5 s", d)
	}
}

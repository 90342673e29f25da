package opencl

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexcl/alexcl/device"
	"github.com/alexcl/alexcl/device/ref"
)

// openShapes opens device 0 with defs and the paths chosen per shape
// (shapes.go) as a tuned Open turns them on, its record in dir; without
// the tuner, which the choice does not need.
func openShapes(t *testing.T, dir string, defs map[string]string, log *logLines) *Device {
	t.Helper()
	d := openTestDevice(t, Options{Version: "test", CacheDir: dir, Defines: defs, Logf: log.logf})
	d.setupShapePaths(tuneOn, "testkey")
	if !d.shapes.on {
		t.Fatal("the choice per shape is off")
	}
	return d
}

// shapeOps runs the three ops of s once on random data, each output
// starting from garbage (dw and db from values it adds to), and checks
// them against device/ref: a choice made inside an op must leave that
// op's own result right.
func shapeOps(t *testing.T, d *Device, s device.ConvShape, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C/s.Groups*s.R*s.S, s.N*s.K*s.OH()*s.OW()
	x, w, b, dy := randF32(rng, nx, -1, 1), randF32(rng, nw, -1, 1), randF32(rng, s.K, -1, 1), randF32(rng, ny, -1, 1)
	dw, db := randF32(rng, nw, -1, 1), randF32(rng, s.K, -1, 1)
	bx, bw, bb, bdy := up(t, d, x), up(t, d, w), up(t, d, b), up(t, d, dy)
	by, bdx := up(t, d, filled(ny, float32(math.NaN()))), up(t, d, filled(nx, float32(math.NaN())))
	bdw, bdb := up(t, d, dw), up(t, d, db)
	defer func() {
		for _, buf := range []device.Buffer{bx, bw, bb, bdy, by, bdx, bdw, bdb} {
			d.Free(buf)
		}
	}()
	if err := d.Conv2DForward(bx, bw, bb, by, s); err != nil {
		t.Fatal(err)
	}
	if err := d.Conv2DBackwardData(bdy, bw, bdx, s); err != nil {
		t.Fatal(err)
	}
	if err := d.Conv2DBackwardFilter(bx, bdy, bdw, bdb, s); err != nil {
		t.Fatal(err)
	}
	y, dx := make([]float32, ny), make([]float32, nx)
	ref.Conv2DForward(x, w, b, y, s)
	ref.Conv2DBackwardData(dy, w, dx, s)
	ref.Conv2DBackwardFilter(x, dy, dw, db, s)
	me, shape := maxErr{}, shapeName(s)
	taps, reduce := float64(s.C/s.Groups*s.R*s.S), float64(s.N*s.OH()*s.OW())
	compare(t, me, "Conv2DForward", shape, down(t, d, by, ny), y, 1e-5*taps, 1e-4)
	compare(t, me, "Conv2DBackwardData", shape, down(t, d, bdx, nx), dx, 1e-5*float64(s.K*s.R*s.S), 1e-4)
	compare(t, me, "Conv2DBackwardFilter dw", shape, down(t, d, bdw, nw), dw, 1e-5*reduce, 1e-4)
	compare(t, me, "Conv2DBackwardFilter db", shape, down(t, d, bdb, s.K), db, 1e-5*reduce, 1e-4)
}

// readPaths reads the one record in dir.
func readPaths(t *testing.T, dir string) pathRecord {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "paths-testkey-*.json"))
	if len(files) != 1 {
		t.Fatalf("records %v, want one", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec pathRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestShapePaths: the first use of a shape times its paths (every
// candidate, each checked), keeps the choice in memory and on disk, and
// leaves the op's result right; the next Open reads the record and times
// nothing; a shape no other path takes is not timed.
func TestShapePaths(t *testing.T) {
	// A 3x3 and a 5x5 shape Winograd takes (16 channels per group), on
	// the vector family and on the GPUs' (which adds the implicit data
	// gradient).
	s3 := device.ConvShape{N: 2, C: 16, H: 7, W: 6, K: 32, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	s5 := device.ConvShape{N: 3, C: 32, H: 9, W: 9, K: 32, R: 5, S: 5, Stride: 1, Pad: 2, Groups: 2}
	strided := device.ConvShape{N: 2, C: 3, H: 15, W: 15, K: 8, R: 5, S: 5, Stride: 2, Pad: 1, Groups: 1}
	for _, kind := range []string{gemmVector, gemmTiled} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			defs := map[string]string{"GEMM_KIND": kind}
			var log logLines
			d := openShapes(t, dir, defs, &log)
			for i, s := range []device.ConvShape{s3, s5, strided} {
				shapeOps(t, d, s, uint64(i))
			}
			tuned := strings.Count(log.String(), "tuned the ")
			if tuned != 6 {
				t.Fatalf("%d shapes timed, want 6 (3 ops of 2 shapes):\n%s", tuned, log.String())
			}
			rec := readPaths(t, dir)
			if len(rec.Paths) != 6 || rec.Context != d.pathContext() {
				t.Fatalf("record of %d paths under %q, want 6 under %q", len(rec.Paths), rec.Context, d.pathContext())
			}
			for _, e := range rec.Paths {
				var names []string
				for _, p := range d.pathCandidates(e.Shape, e.Op) {
					names = append(names, p.name(e.Op))
				}
				// Every candidate timed, none dropped, the chosen one among them.
				if len(e.MS) != len(names) || len(e.Dropped) != 0 || !slices.Contains(names, e.Path) {
					t.Errorf("%s %s: path %s, timed %v, dropped %v; candidates %v", e.Op, shapeName(e.Shape), e.Path, e.MS, e.Dropped, names)
				}
				if want := kind == gemmTiled && e.Op == winoOpData; slices.Contains(names, "implicit") != want {
					t.Errorf("%s %s on %s: candidates %v", e.Op, shapeName(e.Shape), kind, names)
				}
				if got := d.convPath(e.Shape, e.Op, nil, nil, nil).name(e.Op); got != e.Path {
					t.Errorf("%s %s: the device takes %s, the record says %s", e.Op, shapeName(e.Shape), got, e.Path)
				}
			}
			if got := d.ConvPaths(); len(got) != 6 || !strings.Contains(strings.Join(got, "\n"), "forward 32 3x3/1 p1 g1 on 2x16x7x6: ") {
				t.Errorf("ConvPaths() = %q", got)
			}
			if _, ok := d.Tunables()["CONV_WINO"]; ok {
				t.Errorf("Tunables() names a path define, which decides nothing here: %v", d.Tunables())
			}
			// Known shapes are looked up without allocating.
			if n := testing.AllocsPerRun(100, func() { d.convPath(s3, winoOpData, nil, nil, nil) }); n != 0 {
				t.Errorf("convPath: %v allocations per call", n)
			}

			var log2 logLines
			d2 := openShapes(t, dir, defs, &log2)
			if !strings.Contains(log2.String(), "paths record hit") || !strings.Contains(log2.String(), "6 of 6 shapes") {
				t.Errorf("second Open logged:\n%s", log2.String())
			}
			shapeOps(t, d2, s5, 7)
			shapeOps(t, d2, s3, 8)
			if strings.Contains(log2.String(), "tuned the ") {
				t.Errorf("second Open timed again:\n%s", log2.String())
			}
			if !slices.Equal(d2.ConvPaths(), d.ConvPaths()) {
				t.Errorf("second Open takes %q, the first %q", d2.ConvPaths(), d.ConvPaths())
			}
			// ConvPaths lists the shapes this device met, not the whole
			// record: a run of one network does not list another's.
			var log3 logLines
			d3 := openShapes(t, dir, defs, &log3)
			if got := d3.ConvPaths(); len(got) != 0 {
				t.Errorf("ConvPaths() before any op = %q, want none", got)
			}
			shapeOps(t, d3, s3, 9)
			if got := d3.ConvPaths(); len(got) != 3 || !strings.Contains(strings.Join(got, "\n"), "forward 32 3x3/1 p1 g1 on 2x16x7x6: ") {
				t.Errorf("ConvPaths() after one shape's ops = %q, want its 3", got)
			}
		})
	}
}

// TestShapePathsChecked: a path whose output differs from the usual
// path's is dropped, named in the record; a usual path whose output is
// not finite (a diverged run) leaves the shape on the defines' path,
// unrecorded, with a warning.
func TestShapePathsChecked(t *testing.T) {
	s3 := device.ConvShape{N: 2, C: 16, H: 7, W: 6, K: 32, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	dir := t.TempDir()
	var log logLines
	d := openShapes(t, dir, nil, &log)
	pathCheckHook = func(op, path string, check int, out []float32) {
		if path == "winograd" {
			out[len(out)/2] += 1
		}
	}
	t.Cleanup(func() { pathCheckHook = nil })
	shapeOps(t, d, s3, 1)
	rec := readPaths(t, dir)
	if len(rec.Paths) != 3 {
		t.Fatalf("record of %d paths, want 3", len(rec.Paths))
	}
	for _, e := range rec.Paths {
		if e.Path == "winograd" || !strings.Contains(e.Dropped["winograd"], "wrong result") || e.MS["winograd"] != 0 || e.MS["winograd4x4"] == 0 {
			t.Errorf("%s: path %s, timed %v, dropped %v: want winograd dropped, winograd4x4 timed", e.Op, e.Path, e.MS, e.Dropped)
		}
	}
	pathCheckHook = nil

	// NaN in x: the forward's usual output is not finite.
	s := device.ConvShape{N: 1, C: 16, H: 5, W: 5, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	x := filled(s.N*s.C*s.H*s.W, 1)
	x[3] = float32(math.NaN())
	bx, bw, bb := up(t, d, x), up(t, d, filled(s.K*s.C*9, 1)), up(t, d, filled(s.K, 0))
	by := up(t, d, filled(s.N*s.K*25, 0))
	if err := d.Conv2DForward(bx, bw, bb, by, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "warning: choosing the forward path of 16 3x3/1 p1 g1 on 1x16x5x5") || !strings.Contains(log.String(), "not finite") {
		t.Errorf("log:\n%s", log.String())
	}
	if got := d.convPath(s, winoOpForward, nil, nil, nil); got != d.definedPath(s, winoOpForward) {
		t.Errorf("after a failed choice the device takes %s", got.name(winoOpForward))
	}
	// The failure holds for the run: the next call neither times nor warns.
	if err := d.Conv2DForward(bx, bw, bb, by, s); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "warning: choosing"); n != 1 {
		t.Errorf("%d warnings after two calls, want 1:\n%s", n, log.String())
	}
	if rec := readPaths(t, dir); len(rec.Paths) != 3 {
		t.Errorf("a failed choice was recorded: %d paths", len(rec.Paths))
	}
}

// TestShapePathsOneWrong: the filter gradient's check on the batch's
// first image alone, where the bound for a float32 sum is tight, drops a
// path that gets one output wrong there (on a long batch the bound of the
// sum over the batch grows to the size of the values: a review saw a
// zeroed output pass the whole-batch check 8 times in 30 at batch 256).
func TestShapePathsOneWrong(t *testing.T) {
	s := device.ConvShape{N: 64, C: 16, H: 12, W: 12, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	dir := t.TempDir()
	d := openShapes(t, dir, nil, &logLines{})
	checks := map[int]bool{}
	pathCheckHook = func(op, path string, check int, out []float32) {
		if op == winoOpFilter && path == "winograd4x4" {
			checks[check] = true
			if check == 1 {
				// About 3 times the one-image bound here (inputs in
				// [-1, 1]: Σ|terms| ≈ 36 of 144 terms), a tenth of the
				// whole batch's (9,216 terms).
				out[5] += 5e-3
			}
		}
	}
	t.Cleanup(func() { pathCheckHook = nil })
	shapeOps(t, d, s, 2)
	if !checks[0] || !checks[1] {
		t.Fatalf("checks run: %v, want the batch (0) and one image (1)", checks)
	}
	for _, e := range readPaths(t, dir).Paths {
		if e.Op == winoOpFilter && (e.Path == "winograd4x4" || !strings.Contains(e.Dropped["winograd4x4"], "wrong result")) {
			t.Errorf("filter: path %s, dropped %v", e.Path, e.Dropped)
		}
	}
}

// TestShapePathsUnwritten: a path that leaves outputs unwritten (here
// Winograd's output transform skipping its first tile) is dropped: each
// checked run starts from NaN, not from the last path's right answer.
func TestShapePathsUnwritten(t *testing.T) {
	skip := func(name, text string) string {
		if name != "wino.cl" {
			return text
		}
		const at = "    WINO_TILE(K, k, n, ty, tx);                                                                \\\n    const size_t KT"
		if !strings.Contains(text, at) {
			t.Fatal("wino.cl: the output kernel's first line moved")
		}
		return strings.Replace(text, at, "    WINO_TILE(K, k, n, ty, tx);                                                                \\\n    if (i == 0) return;                                                                        \\\n    const size_t KT", 1)
	}
	dir := t.TempDir()
	var log logLines
	d := openTestDevice(t, Options{Version: "test", CacheDir: dir, Logf: log.logf, editSource: skip})
	d.setupShapePaths(tuneOn, "testkey")
	s := device.ConvShape{N: 2, C: 16, H: 7, W: 6, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	rng := rand.New(rand.NewPCG(3, 3))
	nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C*9, s.N*s.K*s.H*s.W
	bx, bw, bb, by := up(t, d, randF32(rng, nx, -1, 1)), up(t, d, randF32(rng, nw, -1, 1)), up(t, d, randF32(rng, s.K, -1, 1)), up(t, d, make([]float32, ny))
	if err := d.Conv2DForward(bx, bw, bb, by, s); err != nil {
		t.Fatal(err)
	}
	e := readPaths(t, dir).Paths[0]
	for _, p := range []string{"winograd", "winograd4x4"} {
		if !strings.Contains(e.Dropped[p], "wrong result") || !strings.Contains(e.Dropped[p], "NaN") {
			t.Errorf("%s: dropped %q, want a wrong result of NaN", p, e.Dropped[p])
		}
	}
	if e.Path != "direct" {
		t.Errorf("path %s", e.Path)
	}
}

// TestShapePathsConcurrent: ops on one new shape from several goroutines
// time it once per op, and every op's result is right.
func TestShapePathsConcurrent(t *testing.T) {
	s := device.ConvShape{N: 2, C: 16, H: 9, W: 8, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	var log logLines
	d := openShapes(t, t.TempDir(), nil, &log)
	t.Run("ops", func(t *testing.T) {
		for i := range 4 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				shapeOps(t, d, s, uint64(10+i))
			})
		}
	})
	if n := strings.Count(log.String(), "tuned the "); n != 3 {
		t.Errorf("%d timings, want 3:\n%s", n, log.String())
	}
}

// TestShapePathsMerge: two devices on one cache directory (two
// processes) each time shapes; the record keeps both's, and of two
// timings of one shape the later, even after the earlier's device saves
// again.
func TestShapePathsMerge(t *testing.T) {
	dir := t.TempDir()
	a, b := openShapes(t, dir, nil, &logLines{}), openShapes(t, dir, nil, &logLines{})
	s1 := device.ConvShape{N: 1, C: 16, H: 5, W: 5, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	s2 := device.ConvShape{N: 1, C: 16, H: 6, W: 6, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	shapeOps(t, a, s1, 4)
	shapeOps(t, b, s1, 5) // the later timing of s1
	shapeOps(t, a, s2, 6)
	rec := readPaths(t, dir)
	if n := len(rec.Paths); n != 6 {
		t.Fatalf("%d paths recorded, want 6", n)
	}
	for _, e := range rec.Paths {
		if e.Shape != s1 {
			continue
		}
		i := slices.IndexFunc(b.shapes.timed, func(p pathEntry) bool { return p.Op == e.Op })
		if i < 0 || !maps.Equal(e.MS, b.shapes.timed[i].MS) {
			t.Errorf("%s of s1: recorded %v, the later timing %v", e.Op, e.MS, b.shapes.timed)
		}
	}
}

// TestFastest: the fastest path wins by winMargin over the usual one.
func TestFastest(t *testing.T) {
	for _, tc := range []struct {
		ms   []time.Duration
		want int
	}{
		{[]time.Duration{100, 90, 95}, 1},
		{[]time.Duration{100, 99, 101}, 0}, // a near tie keeps the usual path
		{[]time.Duration{100, 120, 97}, 2},
		{[]time.Duration{100, 98, 99}, 0},
		{[]time.Duration{100}, 0},
	} {
		if got := fastest(tc.ms); got != tc.want {
			t.Errorf("fastest(%v) = %d, want %d", tc.ms, got, tc.want)
		}
	}
}

// TestShapePathsQuiet: the timing of a new shape leaves a profile of the
// caller's op only, and a bad label for the caller's next Sync.
func TestShapePathsQuiet(t *testing.T) {
	s := device.ConvShape{N: 2, C: 16, H: 6, W: 6, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	d := openShapes(t, t.TempDir(), nil, &logLines{})
	n := s.N * s.C * s.H * s.W
	bx, bw, bb, by := up(t, d, filled(n, 1)), up(t, d, filled(s.K*s.C*9, 1)), up(t, d, filled(s.K, 0)), up(t, d, filled(n, 0))
	launches := func() int {
		d.StartProfiling()
		d.labels.pending.Store(true) // as after a SoftmaxCrossEntropy
		if err := d.Conv2DForward(bx, bw, bb, by, s); err != nil {
			t.Fatal(err)
		}
		if !d.labels.pending.Load() {
			t.Error("the op took the caller's label check")
		}
		kts, err := d.StopProfiling()
		if err != nil {
			t.Fatal(err)
		}
		return len(kts)
	}
	first := launches() // times the shape's paths
	if again := launches(); first != again || first == 0 {
		t.Errorf("the first call profiled %d launches, the next %d", first, again)
	}
}

// TestShapePathsOff: the choice per shape is off with tuning off, with a
// path the user set, and with ALEXCL_CL_LEGACY=shapes; a record of other
// tunables is not used, and ALEXCL_TUNE=force deletes the record.
func TestShapePathsOff(t *testing.T) {
	dir := t.TempDir()
	open := func(defs map[string]string, mode tuneMode) (*Device, string) {
		var log logLines
		d := openTestDevice(t, Options{Version: "test", CacheDir: dir, Defines: defs, Logf: log.logf})
		d.setupShapePaths(mode, "testkey")
		return d, log.String()
	}
	if d, _ := open(nil, tuneOff); d.shapes.on {
		t.Error("on with tuning off")
	}
	if d, _ := open(map[string]string{"CONV_BWDATA": "col"}, tuneOn); d.shapes.on {
		t.Error("on with a path the user set")
	}
	// Tiles the user pinned turn tuning off, and the choice per shape too.
	t.Setenv("ALEXCL_TUNE", "on")
	pinned := openTestDevice(t, Options{Version: "test", CacheDir: dir, Tune: true, Defines: map[string]string{"GEMMV_MR": "4"}})
	if pinned.shapes.on {
		t.Error("on with tiles the user pinned")
	}
	t.Setenv("ALEXCL_TUNE", "")
	t.Setenv("ALEXCL_CL_LEGACY", "shapes")
	if d, _ := open(nil, tuneOn); d.shapes.on {
		t.Error("on with ALEXCL_CL_LEGACY=shapes")
	}
	t.Setenv("ALEXCL_CL_LEGACY", "")

	s := device.ConvShape{N: 1, C: 16, H: 5, W: 5, K: 16, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	d, _ := open(nil, tuneOn)
	shapeOps(t, d, s, 3)
	if rec := readPaths(t, dir); len(rec.Paths) != 3 {
		t.Fatalf("%d paths recorded, want 3", len(rec.Paths))
	}
	// Other tiles: another record, which times anew and leaves the first.
	d, log := open(map[string]string{"GEMMV_MR": "4"}, tuneOn)
	if strings.Contains(log, "record hit") || len(d.shapes.chosen) != 0 {
		t.Errorf("other tunables: %d paths taken; log:\n%s", len(d.shapes.chosen), log)
	}
	shapeOps(t, d, s, 3)
	if files, _ := filepath.Glob(filepath.Join(dir, "paths-testkey-*.json")); len(files) != 2 {
		t.Errorf("records %v, want two", files)
	}
	if _, log = open(nil, tuneOn); !strings.Contains(log, "3 of 3 shapes") {
		t.Errorf("log:\n%s", log)
	}
	// A record that does not parse is not used.
	d, _ = open(nil, tuneOn)
	if err := os.WriteFile(d.shapes.file, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, log = open(nil, tuneOn); !strings.Contains(log, "not used") {
		t.Errorf("a corrupt record: log:\n%s", log)
	}
	if _, log = open(nil, tuneForce); strings.Contains(log, "record hit") {
		t.Errorf("ALEXCL_TUNE=force read the record:\n%s", log)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "paths-testkey-*.json")); len(files) != 0 {
		t.Errorf("ALEXCL_TUNE=force left the records %v", files)
	}
}

package opencl

// alexcl's kernels compiled ahead of time, on the host, for the GPU
// instruction sets of the vendors alexcl serves, by clang with libclc (the
// OpenCL C compiler and library Mesa's drivers use; POCL already depends
// on clang). AMD's drivers compile OpenCL with the same LLVM AMDGPU
// back end, so its reports (registers, spills to scratch memory,
// occupancy) are the ones an AMD card's driver sees; NVIDIA's driver takes
// the kernels through its own front end to PTX and then ptxas, so for
// NVIDIA this checks the PTX (what LLVM's NVPTX back end makes of the
// kernels: vector local-memory loads, arrays kept in registers, no calls),
// not the final registers. Neither needs a GPU, so CI runs it.

import (
	"bufio"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/alexcl/alexcl/clkernels"
	"github.com/alexcl/alexcl/device"
)

// isaTarget is one instruction set the kernels are compiled for.
type isaTarget struct {
	name   string // as reports print it
	triple string // clang -target
	cpu    string // clang -mcpu (AMD) or -march (NVIDIA)
	lib    string // libclc's bitcode library for the triple
}

func (t isaTarget) amd() bool { return strings.HasPrefix(t.triple, "amdgcn") }

// isaTargets: AMD CDNA2 (Instinct MI200), RDNA2 (Radeon RX 6000), RDNA3
// (Radeon RX 7000), and NVIDIA PTX for Ampere (sm_80, the newest clang 15
// knows; Hopper takes the same PTX).
var isaTargets = []isaTarget{
	{"gfx90a", "amdgcn-amd-amdhsa", "gfx90a", "amdgcn--amdhsa.bc"},
	{"gfx1030", "amdgcn-amd-amdhsa", "gfx1030", "amdgcn--amdhsa.bc"},
	{"gfx1100", "amdgcn-amd-amdhsa", "gfx1100", "amdgcn--amdhsa.bc"},
	{"ptx-sm80", "nvptx64-nvidia-nvcl", "sm_80", "nvptx64--nvidiacl.bc"},
}

// kernelISA is what the compiled code of one kernel says about it. AMD
// fields come from the compiler's kernel report; counts are static (each
// instruction of the code once, loops not multiplied out), fused
// multiply-adds counted per lane operation (a packed or dual FMA is 2).
type kernelISA struct {
	vgprs, sgprs, occupancy int // AMD: registers, waves per SIMD
	agprs                   int // AMD CDNA: accumulation registers, where these kernels (no matrix instructions) only spill
	reported                int // AMD: which of the report's required lines were read (amdRequired bits)
	scratch                 int // AMD: bytes of scratch per work item (spills, stack arrays)
	ldsBytes                int // AMD: local memory per work-group
	localDepot              int // PTX: bytes of per-thread local memory (arrays not in registers)
	calls                   int // call instructions (s_swappc_b64, call)
	fma                     int
	localLoads              int // local-memory load instructions (ds_read*/ds_load*, ld.shared*)
	localLoads128           int // of which 16-byte (float4) loads
	globalLoads             int
}

// isaToolchain finds clang and libclc: ALEXCL_CLANG and ALEXCL_LIBCLC
// name them, else the newest clang-N on PATH (or clang) and libclc's
// usual Debian places. It returns why not when one is missing.
func isaToolchain() (clang, libclc string, err error) {
	clang = os.Getenv("ALEXCL_CLANG")
	if clang == "" {
		best := -1
		for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
			matches, _ := filepath.Glob(filepath.Join(dir, "clang-[0-9]*"))
			for _, m := range matches {
				if v, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), "clang-")); err == nil && v > best {
					best, clang = v, m
				}
			}
		}
		if clang == "" {
			clang, _ = exec.LookPath("clang")
		}
	}
	if clang == "" {
		return "", "", fmt.Errorf("no clang on PATH (Debian: apt-get install clang; POCL's package brings clang-N)")
	}
	dirs := []string{os.Getenv("ALEXCL_LIBCLC"), "/usr/lib/clc", "/usr/share/clc", "/usr/local/lib/clc"}
	more, _ := filepath.Glob("/usr/lib/llvm-*/lib/clc")
	for _, dir := range append(dirs, more...) {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, isaTargets[0].lib)); err == nil {
			return clang, dir, nil
		}
	}
	return "", "", fmt.Errorf("no libclc bitcode (%s) found; Debian: apt-get install libclc-N for clang-N, or set ALEXCL_LIBCLC", isaTargets[0].lib)
}

// compileISA compiles source with the build options of defines for
// target t and returns each kernel's report. Any diagnostic from the
// compiler is an error (the only one silenced is libclc's target triple,
// spelled differently from clang's).
func compileISA(clang, libclc string, t isaTarget, source string, defines map[string]string) (map[string]kernelISA, error) {
	opts, err := buildOptions(Options{Defines: defines})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "alexcl-isa-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src, out := filepath.Join(dir, "kernels.cl"), filepath.Join(dir, "kernels.s")
	if err := os.WriteFile(src, []byte(source), 0o644); err != nil {
		return nil, err
	}
	arch := "-mcpu=" + t.cpu
	if !t.amd() {
		arch = "-march=" + t.cpu
	}
	args := []string{"-x", "cl", "-cl-std=CL1.2", "-target", t.triple, arch, "-O3", "-S",
		"-Xclang", "-finclude-default-header",
		"-Xclang", "-mlink-builtin-bitcode", "-Xclang", filepath.Join(libclc, t.lib),
		"-Wno-linker-warnings", "-o", out, src}
	if t.amd() {
		args = append(args, "-nogpulib") // libclc instead of ROCm's device libraries
	}
	args = append(args, strings.Fields(opts)...)
	cmd := exec.Command(clang, args...)
	msg, err := cmd.CombinedOutput()
	if err != nil || len(msg) > 0 {
		return nil, fmt.Errorf("clang %s (%s): %v\n%s", t.name, opts, err, msg)
	}
	asm, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	if t.amd() {
		return parseAMDGCN(string(asm))
	}
	return parsePTX(string(asm)), nil
}

var (
	amdLabel = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*):\s+; @`)
	amdStat  = regexp.MustCompile(`^; (NumVgprs|NumAgprs|NumSgprs|ScratchSize|Occupancy|LDSByteSize): (\d+)`)
)

// amdRequired are the report lines every AMD kernel must have, as bits of
// kernelISA.reported: without one a figure would read as 0.
var amdRequired = map[string]int{"NumVgprs": 1, "ScratchSize": 2, "Occupancy": 4}

// parseAMDGCN reads clang's AMDGPU assembly: each function's instructions
// between its label and .Lfunc_end, then the report the compiler writes
// after it (kernels' reports carry an Occupancy line).
func parseAMDGCN(asm string) (map[string]kernelISA, error) {
	out := map[string]kernelISA{}
	var name string
	var k kernelISA
	inBody := false
	sc := bufio.NewScanner(strings.NewReader(asm))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := amdLabel.FindStringSubmatch(line); m != nil {
			name, k, inBody = m[1], kernelISA{}, true
			continue
		}
		if name == "" {
			continue
		}
		if inBody {
			if strings.HasPrefix(line, ".Lfunc_end") {
				inBody = false
				continue
			}
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], ";") || strings.HasPrefix(f[0], ".") {
				continue
			}
			op := f[0]
			if strings.HasPrefix(op, "v_dual_") { // RDNA3: two operations in one
				for _, half := range strings.Split(line, "::") {
					if h := strings.Fields(half); len(h) > 0 && strings.HasPrefix(h[0], "v_dual_fma") {
						k.fma++
					}
				}
				continue
			}
			switch {
			case strings.HasPrefix(op, "v_pk_fma_f32"):
				k.fma += 2
			case strings.HasPrefix(op, "v_fma_f32"), strings.HasPrefix(op, "v_fmac_f32"), strings.HasPrefix(op, "v_mac_f32"):
				k.fma++
			case strings.HasPrefix(op, "ds_read"), strings.HasPrefix(op, "ds_load"):
				k.localLoads++
				if strings.HasSuffix(op, "b128") {
					k.localLoads128++
				}
			case strings.HasPrefix(op, "global_load"), strings.HasPrefix(op, "buffer_load"), strings.HasPrefix(op, "flat_load"):
				k.globalLoads++
			case op == "s_swappc_b64":
				k.calls++
			}
			continue
		}
		if m := amdStat.FindStringSubmatch(line); m != nil {
			v, _ := strconv.Atoi(m[2])
			k.reported |= amdRequired[m[1]]
			switch m[1] {
			case "NumVgprs":
				k.vgprs = v
			case "NumAgprs":
				k.agprs = v
			case "NumSgprs":
				k.sgprs = v
			case "ScratchSize":
				k.scratch = v
			case "Occupancy":
				k.occupancy = v
			case "LDSByteSize":
				k.ldsBytes = v
			}
			out[name] = k
		}
	}
	// Helper functions (reports without Occupancy) are not kernels.
	for n, k := range out {
		switch {
		case k.reported&amdRequired["Occupancy"] == 0:
			delete(out, n)
		case k.reported != 7:
			return nil, fmt.Errorf("kernel %s: the compiler's report lacks one of NumVgprs, ScratchSize, Occupancy (a new format?)", n)
		}
	}
	return out, nil
}

var (
	ptxEntry = regexp.MustCompile(`^(?:\.visible\s+)?\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\(`)
	ptxDepot = regexp.MustCompile(`\.local \.align \d+ \.b8\s+__local_depot\d+\[(\d+)\]`)
)

// parsePTX reads clang's PTX: each .entry up to its closing brace.
func parsePTX(ptx string) map[string]kernelISA {
	out := map[string]kernelISA{}
	var name string
	var k kernelISA
	sc := bufio.NewScanner(strings.NewReader(ptx))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := ptxEntry.FindStringSubmatch(line); m != nil {
			name, k = m[1], kernelISA{}
			continue
		}
		if name == "" {
			continue
		}
		if line == "}" {
			out[name] = k
			name = ""
			continue
		}
		if m := ptxDepot.FindStringSubmatch(line); m != nil {
			k.localDepot, _ = strconv.Atoi(m[1])
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		op := f[0]
		if strings.HasPrefix(op, "@") && len(f) > 1 { // predicated
			op = f[1]
		}
		switch {
		case strings.HasPrefix(op, "fma.rn.f32"):
			k.fma++
		case strings.HasPrefix(op, "ld.shared"):
			k.localLoads++
			if strings.HasPrefix(op, "ld.shared.v4.") {
				k.localLoads128++
			}
		case strings.HasPrefix(op, "ld.global"):
			k.globalLoads++
		case strings.HasPrefix(op, "call"):
			k.calls++
		}
	}
	return out
}

// vectorOnly are the kernels only the vector (CPU) family launches.
var vectorOnly = []string{"gemm_vec", "gemm_dot", "max_pool_forward_plane", "max_pool_backward_plane", "lrn_forward_vec", "lrn_backward_vec", "dropout_forward_vec", "dropout_backward_vec", "conv2d_backward_bias_vec", "gemm_transpose"}

// isaConfig is one program: a name for reports, its defines and the
// kernels whose figures the report prints.
type isaConfig struct {
	name    string
	defines map[string]string
	hot     []string
}

// isaConfigs returns the programs the tuner can build on a GPU: each GEMM
// candidate of the GPU tuning spec with the default conv tiles, and each
// conv tile set on conv2d_forward and, where its blocks allow, on
// conv2d_forward_blk with its K steps in the default runs and unrolled
// whole (as convFamily gives them after a "ku16" winner). Each once.
func isaConfigs() []isaConfig {
	spec := defaultTuneSpec(device.Info{Type: "GPU"})
	var cs []isaConfig
	for _, c := range spec.gemm {
		hot := []string{"gemm"}
		switch c.Kind {
		case gemmBlocked:
			hot = []string{"gemm_blk", "conv2d_forward_blk"}
		case gemmVector:
			hot = []string{"gemm_vec", "gemm_dot"}
		}
		cs = append(cs, isaConfig{"GEMM " + c.String(), c.defines("GEMM"), hot})
	}
	for _, c := range spec.conv {
		variants := []candidate{c}
		if c.WPTM%4 == 0 && c.WPTN%4 == 0 {
			b := c
			b.Kind = gemmBlocked
			variants = append(variants, b, b.ku(b.TSK))
		}
		for _, v := range variants {
			hot := "conv2d_forward"
			if v.Kind == gemmBlocked {
				hot = "conv2d_forward_blk"
			}
			cs = append(cs, isaConfig{"CONV " + v.String(), v.defines("CONV"), []string{hot}})
		}
	}
	return cs
}

// kernelNames returns the names of the __kernel functions in source,
// including those a function-like macro defines from one of its
// parameters (__kernel void PREFIX##_filter in wino.cl's WINO_KERNELS),
// once per invocation of the macro at the start of a line.
func kernelNames(source string) []string {
	re := regexp.MustCompile(`(?m)^__kernel\s+(?:__attribute__\(\(.*\)\)\s*)?void\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(source, -1) {
		names = append(names, m[1])
	}
	// A macro's body runs to its first line without a trailing backslash.
	define := regexp.MustCompile(`(?m)^#define\s+(\w+)\(([^)]*)\)((?:.*\\\n)*.*)`)
	pasted := regexp.MustCompile(`__kernel\s+void\s+(\w+)\s*##\s*(\w+)\s*\(`)
	for _, d := range define.FindAllStringSubmatch(source, -1) {
		params := strings.Split(d[2], ",")
		for i := range params {
			params[i] = strings.TrimSpace(params[i])
		}
		calls := regexp.MustCompile(`(?m)^`+d[1]+`\(([^)]*)\)`).FindAllStringSubmatch(source, -1)
		for _, k := range pasted.FindAllStringSubmatch(d[3], -1) {
			at := slices.Index(params, k[1])
			for _, c := range calls {
				if args := strings.Split(c[1], ","); at >= 0 && at < len(args) {
					names = append(names, strings.TrimSpace(args[at])+k[2])
				}
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// spillFree reports whether TestKernelISA requires the kernels of c to
// keep out of scratch on target t: always in PTX; on AMD, the tiled sets.
// The blocked sets other than the defaults (which the whole programs
// check) are reported there, not required: AMD's compiler spills those
// with all K steps unrolled, and some with large register blocks, for
// want of registers, and the tuner, timing them, drops what is slow.
func spillFree(t isaTarget, c isaConfig) bool {
	return !t.amd() || c.defines["GEMM_KIND"] != gemmBlocked && c.defines["CONV_KIND"] != gemmBlocked
}

// TestKernelISA compiles alexcl's kernels for AMD's and NVIDIA's GPU
// instruction sets (isaTargets) and checks what every driver would find:
//   - the whole program of each GPU family (tiled, blocked) compiles
//     without a diagnostic for every target;
//   - in those programs, no kernel the family launches spills to scratch
//     on AMD or keeps a per-thread array in local memory in PTX, and none
//     calls a function (every helper is inlined);
//   - the matrix-product and forward-convolution kernels of every tile
//     set the GPU tuner may pick compile for every target and keep their
//     register blocks and staging arrays out of per-thread memory in PTX,
//     the tiled ones also out of scratch on AMD (spillFree); the blocked
//     kernels read local memory only as float4s. The vector (CPU)
//     family's kernels are reported, not checked.
//
// Without clang and libclc it skips, unless ALEXCL_REQUIRE_OPENCL=1 (CI),
// where it fails. ALEXCL_ISA_REPORT=FILE writes the per-candidate figures
// as a Markdown table (BENCHMARKS.md quotes one).
func TestKernelISA(t *testing.T) {
	clang, libclc, err := isaToolchain()
	if err != nil {
		if os.Getenv("ALEXCL_REQUIRE_OPENCL") == "1" {
			t.Fatalf("ALEXCL_REQUIRE_OPENCL=1 but %v", err)
		}
		t.Skipf("%v; set ALEXCL_REQUIRE_OPENCL=1 to make this a failure", err)
	}
	whole := strings.Join(clkernels.Sources(), "\n")
	part := strings.Join(new(Options).sources([]string{"conv.cl", "gemm.cl"}, nil), "\n") // in Sources' order

	type job struct {
		cfg    isaConfig
		target isaTarget
		full   bool
	}
	type result struct {
		job
		ks  map[string]kernelISA
		err error
	}
	var jobs []job
	for _, tg := range isaTargets {
		for _, kinds := range [][2]string{{gemmTiled, ""}, {gemmBlocked, ""}, {gemmTiled, gemmBlocked}, {gemmBlocked, gemmTiled}} {
			defs, name := map[string]string{"GEMM_KIND": kinds[0]}, "program "+kinds[0]
			if kinds[1] != "" {
				defs["CONV_KIND"], name = kinds[1], name+", conv "+kinds[1]
			}
			jobs = append(jobs, job{isaConfig{name, defs, nil}, tg, true})
		}
		for _, c := range isaConfigs() {
			jobs = append(jobs, job{c, tg, false})
		}
	}
	results := make([]result, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			src := part
			if j.full {
				src = whole
			}
			ks, err := compileISA(clang, libclc, j.target, src, j.cfg.defines)
			results[i] = result{j, ks, err}
		}()
	}
	wg.Wait()

	var report []string
	for _, r := range results {
		where := fmt.Sprintf("%s, %s", r.target.name, r.cfg.name)
		if r.err != nil {
			t.Errorf("%s: %v", where, r.err)
			continue
		}
		if r.full {
			want := slices.DeleteFunc(kernelNames(whole), func(n string) bool {
				return n == "gemm_blk" && r.cfg.defines["GEMM_KIND"] != gemmBlocked ||
					n == "conv2d_forward_blk" && convKind(r.cfg.defines) != gemmBlocked
			})
			if got := slices.Sorted(maps.Keys(r.ks)); !slices.Equal(got, want) {
				t.Errorf("%s: the compiler's output gave kernels %v, the sources have %v (a parser out of date?)", where, got, want)
			}
			for _, name := range slices.Sorted(maps.Keys(r.ks)) {
				if !slices.Contains(vectorOnly, name) {
					checkNoSpill(t, where+", "+name, r.ks[name])
				}
			}
			continue
		}
		for _, name := range r.cfg.hot {
			k, ok := r.ks[name]
			if !ok {
				t.Errorf("%s: kernel %s not in the compiler's output", where, name)
				continue
			}
			report = append(report, isaRow(r.target, r.cfg.name, name, k))
			if spillFree(r.target, r.cfg) && !slices.Contains(vectorOnly, name) {
				checkNoSpill(t, where+", "+name, k)
			}
			if strings.HasSuffix(name, "_blk") && k.localLoads != k.localLoads128 {
				t.Errorf("%s, %s: %d of %d local-memory loads are narrower than float4", where, name, k.localLoads-k.localLoads128, k.localLoads)
			}
		}
	}
	slices.Sort(report)
	table := "| target | program | kernel | VGPRs | occupancy | scratch B | PTX local B | FMAs | local loads (float4) | FMAs per local load |\n" +
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + strings.Join(report, "\n") + "\n"
	if path := os.Getenv("ALEXCL_ISA_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("clang %s, libclc %s\n%s", clang, libclc, table)
}

func checkNoSpill(t *testing.T, where string, k kernelISA) {
	t.Helper()
	if k.scratch > 0 {
		t.Errorf("%s: %d bytes of scratch per work item (registers spilled: %d VGPRs)", where, k.scratch, k.vgprs)
	}
	if k.agprs > 0 {
		t.Errorf("%s: %d accumulation registers beside %d VGPRs (registers spilled into AGPRs)", where, k.agprs, k.vgprs)
	}
	if k.localDepot > 0 {
		t.Errorf("%s: %d bytes of per-thread local memory in PTX (an array not kept in registers)", where, k.localDepot)
	}
	if k.calls > 0 {
		t.Errorf("%s: %d function calls (a helper not inlined)", where, k.calls)
	}
}

func isaRow(t isaTarget, cfg, name string, k kernelISA) string {
	dash := func(v int, ok bool) string {
		if !ok {
			return "–"
		}
		return strconv.Itoa(v)
	}
	vgprs := dash(k.vgprs, t.amd())
	if k.agprs > 0 {
		vgprs += fmt.Sprintf(" +%d AGPRs", k.agprs)
	}
	ratio := "–"
	if k.localLoads > 0 {
		ratio = strconv.FormatFloat(float64(k.fma)/float64(k.localLoads), 'f', 1, 64)
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %d | %d (%d) | %s |", t.name, cfg, name,
		vgprs, dash(k.occupancy, t.amd()), dash(k.scratch, t.amd()), dash(k.localDepot, !t.amd()),
		k.fma, k.localLoads, k.localLoads128, ratio)
}

// TestConvDiv checks conv_div (conv.cl), (int)(((float)a + 0.5f) * inv),
// in float32 arithmetic as a device does it: for every divisor b up to
// 1024 and every a below 2^20 next to a multiple of b (a = kb-1 and kb,
// where the quotient is closest to changing; elsewhere the margin is at
// least three times wider), with inv = 1.0f/b and up to 3 ulp either side
// of it (OpenCL 1.2 allows 2.5 for a float division), the quotient is
// a / b. Below 2^21 it does go wrong, which shows the check can fail.
func TestConvDiv(t *testing.T) {
	convDiv := func(a int, inv float32) int { return int(float32(float32(a)+0.5) * inv) }
	// wrong returns the first a < limit (as above) with a wrong quotient.
	wrong := func(b, limit int) (int, float32) {
		base := float32(1) / float32(b)
		inv, up, down := []float32{base}, base, base
		for range 3 {
			up, down = math.Nextafter32(up, 2), math.Nextafter32(down, 0)
			inv = append(inv, up, down)
		}
		for k := 0; k*b-1 < limit; k++ {
			for _, a := range []int{k*b - 1, k * b} {
				if a < 0 || a >= limit {
					continue
				}
				for _, v := range inv {
					if convDiv(a, v) != a/b {
						return a, v
					}
				}
			}
		}
		return -1, 0
	}
	for b := 1; b <= 1024; b++ {
		if a, v := wrong(b, 1<<20); a >= 0 {
			t.Fatalf("conv_div(%d, %g) = %d, want %d (b = %d)", a, v, convDiv(a, v), a/b, b)
		}
	}
	found := false
	for b := 1; b <= 130 && !found; b++ {
		a, _ := wrong(b, 1<<21)
		found = a >= 0
	}
	if !found {
		t.Errorf("no wrong quotient below 2^21 either: the check would not see one")
	}
}

#!/usr/bin/env bash
# One call on a machine with an NVIDIA GPU and its driver: correctness on
# the GPU (selftest, which also tunes the kernels: its log and the tuning
# record are kept), alexcl's training throughput (paper at batch 128 and
# 256, mini at 512, with per-layer kernel times) and PyTorch's on the same
# card, the small GEMM tile set against one set, one epoch of the default
# training run; then paper at batch 128 on the tuned tiles with each
# convolution path, with each kernel family, with the upload inside the
# step, with each GPU-path change turned off and with other work-group
# targets. BENCHMARKS.md's GPU section came from this.
#
#   go build -o alexcl ./cmd/alexcl   # CGO_ENABLED=0 builds run anywhere
#   ci/bench-gpu.sh ./alexcl OUTDIR
#   tar czf results.tgz -C OUTDIR .   # about 35 files: one archive to bring back
#
# The runs go most wanted first, each capped to the time left of
# BENCH_LIMIT seconds (default 540: a device call may take 600; lower it
# by what runs before the script in the same call), and are skipped once
# under 20 s is left, so one call always brings results back.
#
# TORCH_BENCH names PyTorch's script (default ci/torch/
# torch_train_bench.py, the copy of shared/anchors'), PYTHON the interpreter with CUDA PyTorch
# (default python3). NVIDIA's OpenCL library is registered with the ICD
# loader through OCL_ICD_VENDORS when the machine has no .icd file for it.
set -uo pipefail
B=$(realpath "${1:-./alexcl}")
OUT=$(mkdir -p "${2:-gpu-out}" && realpath "${2:-gpu-out}")
TORCH=$(realpath "${TORCH_BENCH:-$(dirname "$0")/torch/torch_train_bench.py}")

if ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
	v=$(mktemp -d)
	for lib in /usr/lib/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1; do
		[ -e "$lib" ] && echo "$lib" > "$v/nvidia.icd" && break
	done
	cp /etc/OpenCL/vendors/*.icd "$v/" 2>/dev/null
	export OCL_ICD_VENDORS=$v
fi

# The driver's report of every program built (NVIDIA's ptxas: registers
# and spills per kernel, the tuner's candidates included) goes to
# buildlog.txt; the option changes no code.
export ALEXCL_CL_OPTIONS="${ALEXCL_CL_OPTIONS:--cl-nv-verbose}" ALEXCL_CL_BUILD_LOG="$OUT/buildlog.txt"

LIMIT=${BENCH_LIMIT:-540}
# step FILE TIMEOUT COMMAND...: runs COMMAND into $OUT/FILE unless the
# budget is spent, for at most TIMEOUT seconds or what is left; prints the
# first lines.
step() {
	local f=$1 t=$2 left=$((LIMIT - SECONDS))
	shift 2
	if [ "$left" -lt 20 ]; then
		echo "skipped: the ${LIMIT} s budget is spent" | tee "$OUT/$f"
		return
	fi
	[ "$t" -gt "$left" ] && t=$left
	timeout -k 10 "$t" "$@" > "$OUT/$f" 2>&1
	echo "rc=$? after ${SECONDS} s" >> "$OUT/$f"
	echo "== $f"
	head -5 "$OUT/$f"
}

timeout -k 5 20 nvidia-smi --query-gpu=name,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
timeout -k 5 30 "$B" list-devices > "$OUT/list.txt" 2>&1
step selftest.txt 120 "$B" selftest --device gpu0
if grep -q "include ALEXCL_CL_OPTIONS" "$OUT/selftest.txt"; then
	echo "the driver refused ALEXCL_CL_OPTIONS=$ALEXCL_CL_OPTIONS: again without it"
	mv "$OUT/selftest.txt" "$OUT/selftest-options.txt"
	unset ALEXCL_CL_OPTIONS
	step selftest.txt 120 "$B" selftest --device gpu0
fi
tail -2 "$OUT/selftest.txt"
grep -h 'tuning gemm\|tuning conv\|tuning winograd\|tuning bwdata\|tuned' "$OUT/selftest.txt" | head -40
cp "${XDG_CACHE_HOME:-$HOME/.cache}"/alexcl/kernels/tune-*.json "$OUT/" 2>/dev/null
grep -h 'ptxas\|spill\|Used [0-9]* registers' "$OUT/buildlog.txt" 2>/dev/null | sort | uniq -c | sort -rn | head -20
step paper128.txt 90 "$B" bench --device gpu0 --preset paper --batch 128 --steps 10 --warmup 3
cp "${XDG_CACHE_HOME:-$HOME/.cache}"/alexcl/kernels/paths-*.json "$OUT/" 2>/dev/null
step torch.txt 150 "${PYTHON:-python3}" "$TORCH" cuda 128 256
cat "$OUT/torch.txt"
step paper256.txt 90 "$B" bench --device gpu0 --preset paper --batch 256 --steps 10 --warmup 3
step mini512.txt 60 "$B" bench --device gpu0 --preset mini --batch 512 --steps 10 --warmup 3
# The small GEMM tile set (device/opencl/gemmset.go) against one set for
# every product, paper and mini, twice each, alternating.
for i in 1 2; do
	step "paper128-small-$i.txt" 40 "$B" bench --device gpu0 --preset paper --batch 128 --steps 10 --warmup 3 --profile-steps 0
	step "paper128-legacy-small-$i.txt" 40 env ALEXCL_CL_LEGACY=small "$B" bench --device gpu0 --preset paper --batch 128 --steps 10 --warmup 3 --profile-steps 0
	step "mini512-small-$i.txt" 40 "$B" bench --device gpu0 --preset mini --batch 512 --steps 10 --warmup 3 --profile-steps 0
	step "mini512-legacy-small-$i.txt" 40 env ALEXCL_CL_LEGACY=small "$B" bench --device gpu0 --preset mini --batch 512 --steps 10 --warmup 3 --profile-steps 0
done
train_dir=$(mktemp -d)
step train.txt 120 "$B" train --device gpu0 --epochs 1 --out "$train_dir/run"
tail -3 "$OUT/train.txt"
# The convolutions' paths on the tuned tiles (a path set in
# ALEXCL_CL_DEFINES overrides the tuner's choice of that path only; its
# own op-by-op timings are in selftest.txt): all usual paths; Winograd
# for every 3x3 and 5x5 op by F(2x2), then by the larger tiles F(4x4, 3x3)
# and F(3x3, 5x5) (CONV_BWDATA as tuned for the layers Winograd does not
# take); the implicit data gradient without Winograd.
usual=CONV_WINO=off,CONV_WINO43=off,CONV_WINO5=off,CONV_WINO35=off,CONV_BWDATA=col
step paper128-paths-usual.txt 60 env ALEXCL_CL_DEFINES=$usual "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
step paper128-paths-wino.txt 60 env ALEXCL_CL_DEFINES=CONV_WINO=on,CONV_WINO43=off,CONV_WINO5=on,CONV_WINO35=off "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
step paper128-paths-wino-large.txt 60 env ALEXCL_CL_DEFINES=CONV_WINO43=on,CONV_WINO35=on "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
step paper128-paths-implicit.txt 60 env ALEXCL_CL_DEFINES=CONV_WINO=off,CONV_WINO43=off,CONV_WINO5=off,CONV_WINO35=off,CONV_BWDATA=implicit "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
# The kernel families on the same step, whatever the tuner chose: the
# vendor defaults (tiled 64x64x16/4x4, usual paths), and the blocked
# family with its K steps in the default runs of 2 and unrolled whole
# (TestKernelISA: AMD's compiler needs the runs; which NVIDIA's prefers is
# what this measures); these turn tuning off.
step paper128-tiled-default.txt 60 env ALEXCL_TUNE=off "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
for defs in GEMM_KIND=blocked GEMM_KIND=blocked,GEMM_KU=16,CONV_KU=16; do
	step "paper128-${defs//[=,]/-}.txt" 60 env "ALEXCL_CL_DEFINES=$defs" "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
done
# The paths per layer shape (paper128.txt: its warm-up timed them, its
# path: lines say which won) against the tuner's choice per filter size.
step paper128-legacy-shapes.txt 60 env ALEXCL_CL_LEGACY=shapes "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
# What each change since the last GPU run gains: the same step with each
# batch uploaded inside it, then with each GPU-path change turned back off
# (ALEXCL_CL_LEGACY: one filter-gradient product per image, no flush every
# 16 kernels, a work item per row in im2col/col2im, no split K (linear
# layers, Winograd's filter gradient); all six, with the paths per filter
# size and one GEMM tile set; shapes and small alone run above). Then the
# work-groups per compute unit that split K and the filter gradient's runs
# of images aim at (host-only defines; 4 by default), at 12: neither 8 nor
# 12 moved the step on an H200.
step paper128-sync.txt 60 "$B" bench --device gpu0 --preset paper --batch 128 --steps 10 --warmup 3 --profile-steps 0 --sync-upload
for l in filter flush im2col splitk all; do
	step "paper128-legacy-$l.txt" 60 env ALEXCL_CL_LEGACY=$l "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2
done
for v in CONV_FILTER_GROUPS=12 GEMM_SPLIT_GROUPS=12; do
	step "paper128-${v//[=,]/-}.txt" 40 env ALEXCL_CL_DEFINES=$v "$B" bench --device gpu0 --preset paper --batch 128 --steps 10 --warmup 3 --profile-steps 0
done

#!/usr/bin/env bash
# One call on a machine with an NVIDIA GPU and its driver: correctness on
# the GPU (selftest, which also tunes the kernels: its log and the tuning
# record are kept), alexcl's training throughput (paper at batch 128 and
# 256, mini at 512, with per-layer kernel times; paper 128 again with the
# upload inside the step) and PyTorch's on the same card, then one epoch of
# the default training run. BENCHMARKS.md's GPU
# section came from this.
#
#   go build -o alexcl ./cmd/alexcl   # CGO_ENABLED=0 builds run anywhere
#   ci/bench-gpu.sh ./alexcl OUTDIR
#
# TORCH_BENCH names PyTorch's script (default ../shared/anchors/
# torch_train_bench.py), PYTHON the interpreter with CUDA PyTorch
# (default python3). NVIDIA's OpenCL library is registered with the ICD
# loader through OCL_ICD_VENDORS when the machine has no .icd file for it.
set -uo pipefail
B=$(realpath "${1:-./alexcl}")
OUT=$(mkdir -p "${2:-gpu-out}" && realpath "${2:-gpu-out}")
TORCH=$(realpath "${TORCH_BENCH:-../shared/anchors/torch_train_bench.py}")

if ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
	v=$(mktemp -d)
	for lib in /usr/lib/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1; do
		[ -e "$lib" ] && echo "$lib" > "$v/nvidia.icd" && break
	done
	cp /etc/OpenCL/vendors/*.icd "$v/" 2>/dev/null
	export OCL_ICD_VENDORS=$v
fi

nvidia-smi --query-gpu=name,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
"$B" list-devices > "$OUT/list.txt" 2>&1
timeout 120 "$B" selftest --device gpu0 > "$OUT/selftest.txt" 2>&1
echo "selftest rc=$?" >> "$OUT/selftest.txt"
tail -2 "$OUT/selftest.txt"
grep -h 'tuning gemm\|tuned' "$OUT/selftest.txt" | head -20
cp "${XDG_CACHE_HOME:-$HOME/.cache}"/alexcl/kernels/tune-*.json "$OUT/" 2>/dev/null
for b in 128 256; do
	timeout 90 "$B" bench --device gpu0 --preset paper --batch $b --steps 10 --warmup 3 > "$OUT/paper$b.txt" 2>&1
	head -5 "$OUT/paper$b.txt"
done
# What each change since the last GPU run gains: the same step with each
# batch uploaded inside it, then with each GPU-path change turned back off
# (ALEXCL_CL_LEGACY: one filter-gradient product per image, no flush every
# 16 kernels, a work item per row in im2col/col2im; all three), per-layer
# times included where the change is in the conv layers' backward.
timeout 90 "$B" bench --device gpu0 --preset paper --batch 128 --steps 10 --warmup 3 --profile-steps 0 --sync-upload > "$OUT/paper128-sync.txt" 2>&1
head -5 "$OUT/paper128-sync.txt"
for l in filter flush im2col all; do
	ALEXCL_CL_LEGACY=$l timeout 60 "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2 > "$OUT/paper128-legacy-$l.txt" 2>&1
	head -5 "$OUT/paper128-legacy-$l.txt"
done
# The kernel families on the same step, whatever the tuner chose: the
# vendor defaults (tiled 64x64x16/4x4), and the blocked family with all K
# steps unrolled and in runs of 2 (TestKernelISA: AMD's compiler needs the
# runs; which NVIDIA's prefers is what this measures).
ALEXCL_TUNE=off timeout 60 "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2 > "$OUT/paper128-tiled-default.txt" 2>&1
head -5 "$OUT/paper128-tiled-default.txt"
for defs in GEMM_KIND=blocked GEMM_KIND=blocked,GEMM_KU=2; do
	ALEXCL_CL_DEFINES=$defs timeout 60 "$B" bench --device gpu0 --preset paper --batch 128 --steps 5 --warmup 2 > "$OUT/paper128-${defs//[=,]/-}.txt" 2>&1
	head -5 "$OUT/paper128-${defs//[=,]/-}.txt"
done
timeout 60 "$B" bench --device gpu0 --preset mini --batch 512 --steps 10 --warmup 3 > "$OUT/mini512.txt" 2>&1
head -5 "$OUT/mini512.txt"
timeout 180 "${PYTHON:-python3}" "$TORCH" cuda 128 256 > "$OUT/torch.txt" 2>&1
cat "$OUT/torch.txt"
(cd "$(mktemp -d)" && timeout 120 "$B" train --device gpu0 --epochs 1 --out run) > "$OUT/train.txt" 2>&1
echo "train rc=$?" >> "$OUT/train.txt"
tail -3 "$OUT/train.txt"

#!/bin/bash
# The CPU ratio rounds of BENCHMARKS.md: three rounds, each PyTorch on the
# CPU (ci/torch/torch_train_bench.py, the copy of shared/anchors'), then `alexcl bench` for
# paper (batch 32) and mini (batch 128) on the cpu device as it is, as on
# a CPU without AVX-512 (ALEXCL_AVX512=off: the AVX2 kernel, Go loops for
# the AVX-512 helpers), with OpenBLAS's GEMM (ALEXCL_GEMM=blas), and on
# POCL (cl0).
#
#   go build -o alexcl ./cmd/alexcl && ci/bench-cpu.sh ./alexcl
set -euo pipefail
B=${1:-./alexcl}
TORCH=${TORCH_BENCH:-$(dirname "$0")/torch/torch_train_bench.py}
rate() { python3 -c "import json,sys; d=json.load(sys.stdin); print('%.1f %.1f' % (d['train_images_per_second'], d['infer_images_per_second']))"; }
for round in 1 2 3; do
	echo "== round $round $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
	OMP_NUM_THREADS=2 /usr/bin/python3 "$TORCH" cpu 2>&1 | grep img
	for cfg in "cpu ALEXCL_CPU=as-is" "cpu ALEXCL_AVX512=off" "cpu ALEXCL_GEMM=blas" "cl0 ALEXCL_CPU=as-is"; do
		set -- $cfg
		dev=$1 env=$2
		for p in "paper 32" "mini 128"; do
			set -- $p
			echo "alexcl $dev $env $1 b$2 (train, infer img/s): $(env "$env" "$B" bench --device "$dev" --preset "$1" --batch "$2" --steps 5 --warmup 1 --profile-steps 0 --json | rate)"
		done
	done
done

#!/usr/bin/env bash
# Installs what alexcl's tests need on a fresh Debian machine, skipping what
# is already there: the OpenCL ICD loader and POCL (a CPU OpenCL platform, so
# the OpenCL device is tested without a GPU), OpenBLAS (the CPU device's
# fast GEMM, loaded at run time), gcc (cgo, which the race detector needs),
# and python3-torch (the PyTorch oracle that checks our checkpoints load
# into the reference module).
# Set ALEXCL_SKIP_TORCH=1 to leave python3-torch out.
set -euo pipefail

need=()
[ -e /etc/OpenCL/vendors/pocl.icd ] || need+=(pocl-opencl-icd)
ldconfig -p | grep -q 'libOpenCL.so.1' || need+=(ocl-icd-libopencl1)
ldconfig -p | grep -q 'libopenblas.so.0' || need+=(libopenblas0-pthread)
command -v gcc >/dev/null || need+=(gcc libc6-dev) # go test -race needs cgo
if [ "${ALEXCL_SKIP_TORCH:-0}" != 1 ] && ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  need+=(python3-torch)
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "ci: dependencies present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ci: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "ci: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

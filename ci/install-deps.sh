#!/usr/bin/env bash
# Installs what alexcl's tests need on a fresh Debian machine, skipping what
# is already there: the OpenCL ICD loader and POCL (a CPU OpenCL platform, so
# the OpenCL device is tested without a GPU), OpenBLAS (the CPU device's
# fast GEMM, loaded at run time), gcc (cgo, which the race detector needs),
# python3-torch (the PyTorch oracle that checks our checkpoints load into
# the reference module), and libclc for the clang that POCL brings
# (TestKernelISA compiles the kernels for AMD and NVIDIA GPUs with them).
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

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "ci: missing $*; run as root or: sudo apt-get install -y $*" >&2
    exit 1
  fi
  echo "ci: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  [ -n "${updated:-}" ] || apt-get update -qq
  updated=1
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
# libclc matching the newest clang-N (POCL's package depends on one).
clang_n=$(ls /usr/bin/clang-[0-9]* 2>/dev/null | sed 's/.*clang-//' | sort -n | tail -1 || true)
if [ -z "$clang_n" ]; then
  echo "ci: no clang-N found after installing POCL; TestKernelISA will fail" >&2
elif [ ! -e /usr/lib/clc/amdgcn--amdhsa.bc ]; then
  apt_install "libclc-$clang_n"
fi
echo "ci: dependencies present"

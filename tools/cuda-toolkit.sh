#!/usr/bin/env bash
# tools/cuda-toolkit.sh - install a CUDA 13.0 compiler toolchain from PyPI wheels, no root
# installer, no NVIDIA repository, no driver; enough to BUILD the engine's CUDA backend
# (running it needs a machine with an NVIDIA driver and GPU).
#
#   tools/cuda-toolkit.sh [PREFIX]        install into PREFIX (default /opt/cuda13), then print
#                                         the cmake flags
#   tools/cuda-toolkit.sh --flags [PREFIX] only print the flags of an existing install
#
# What it does:
#   1. creates a Python virtual environment at PREFIX (python3 -m venv; $PYTHON overrides);
#   2. pip-installs these wheels, versions pinned to one CUDA 13.0 release set:
#        nvidia-cuda-nvcc==13.0.88     nvcc, cudafe++, ptxas, nvlink, fatbinary, nvcc.profile
#        nvidia-nvvm==13.0.88          cicc and libdevice (nvcc's dependency, pinned to match)
#        nvidia-cuda-crt==13.0.88      the crt/ headers nvcc includes
#        nvidia-cuda-runtime==13.0.96  cuda_runtime.h, libcudart_static.a, libcudadevrt.a
#        nvidia-cuda-cccl==13.0.85     CUB / Thrust / libcu++ headers (include/cccl)
#      They all unpack into PREFIX/lib/python3.X/site-packages/nvidia/cu13/{bin,include,lib,nvvm}.
#      (The cu12 wheels, nvidia-cuda-nvcc-cu12, carry ptxas but no nvcc binary.)
#   3. builds PREFIX/home, a CUDA_HOME-shaped tree of symlinks into that directory. Needed
#      because nvcc.profile links with -L$(TOP)/lib64, which the wheels do not have, and
#      because `bin` must be a real directory: nvcc computes TOP as <dir of nvcc>/.., and
#      through a symlinked bin/ that would resolve back into site-packages. Also adds the
#      unversioned libcudart.so link that find_package(CUDAToolkit) looks for.
#   4. checks the result: nvcc --version, and compiles and links a small .cu file.
#
# Network: the only thing contacted is the Python package index pip is configured with
# (PyPI, https://pypi.org/simple, unless PIP_INDEX_URL / pip.conf say otherwise; wheels
# already in PIP_FIND_LINKS or a pip cache are used without downloading). Nothing else is
# fetched, nothing outside PREFIX is written.
#
# The flags it prints, for example:
#   cmake -S . -B build-cuda -DHEALTHGPT_CUDA=ON -DCMAKE_CUDA_COMPILER=/opt/cuda13/home/bin/nvcc
# CUDA 13 compiles for sm_75 (Turing) and newer only.
set -euo pipefail

NVCC_VERSION=13.0.88
NVVM_VERSION=13.0.88
CRT_VERSION=13.0.88
RUNTIME_VERSION=13.0.96
CCCL_VERSION=13.0.85

flags_only=0
if [[ "${1:-}" == "--flags" ]]; then
    flags_only=1
    shift
fi
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
fi
PREFIX="${1:-/opt/cuda13}"
PREFIX="$(mkdir -p "$PREFIX" && cd "$PREFIX" && pwd)"
HOME_DIR="$PREFIX/home"
MARKER="$HOME_DIR/.healthgpt-cuda-home"

die() {
    echo "cuda-toolkit.sh: $*" >&2
    exit 1
}

print_flags() {
    local nvcc="$HOME_DIR/bin/nvcc"
    [[ -x "$nvcc" ]] || die "no toolkit at $PREFIX (run without --flags to install)"
    echo
    echo "CUDA toolkit: $HOME_DIR ($("$nvcc" --version | sed -n 's/.*release \([0-9.]*\), \(V[0-9.]*\).*/\1, \2/p'))"
    echo "cmake flags:"
    echo "  -DHEALTHGPT_CUDA=ON -DCMAKE_CUDA_COMPILER=$nvcc -DCUDAToolkit_ROOT=$HOME_DIR"
    echo "or in the environment (what HEALTHGPT_CUDA=AUTO / cmake-js pick up):"
    echo "  export CUDACXX=$nvcc CUDAToolkit_ROOT=$HOME_DIR"
}

if [[ $flags_only == 1 ]]; then
    print_flags
    exit 0
fi

# ---- 1. virtual environment ----
PY="${PYTHON:-python3}"
if [[ ! -x "$PREFIX/bin/python" ]]; then
    "$PY" -m venv "$PREFIX" || die "could not create a virtual environment at $PREFIX"
fi

# ---- 2. the wheels (PyPI only) ----
"$PREFIX/bin/python" -m pip install --disable-pip-version-check --no-input \
    "nvidia-cuda-nvcc==$NVCC_VERSION" \
    "nvidia-nvvm==$NVVM_VERSION" \
    "nvidia-cuda-crt==$CRT_VERSION" \
    "nvidia-cuda-runtime==$RUNTIME_VERSION" \
    "nvidia-cuda-cccl==$CCCL_VERSION"

CU="$("$PREFIX/bin/python" - <<'EOF'
import os, sysconfig
print(os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu13"))
EOF
)"
for f in bin/nvcc bin/nvcc.profile bin/cudafe++ bin/ptxas nvvm/bin/cicc include/cuda_runtime.h \
         include/cccl/cub/cub.cuh lib/libcudart_static.a lib/libcudadevrt.a; do
    [[ -e "$CU/$f" ]] || die "the wheels lack $f (expected under $CU)"
done

# ---- 3. the CUDA_HOME-shaped symlink tree ----
if [[ -e "$HOME_DIR" && ! -e "$MARKER" ]] && [[ -n "$(ls -A "$HOME_DIR")" ]]; then
    die "$HOME_DIR exists and was not made by this script; move it away first"
fi
rm -rf "$HOME_DIR"
mkdir -p "$HOME_DIR/bin" "$HOME_DIR/lib"
for f in "$CU"/bin/*; do ln -s "$f" "$HOME_DIR/bin/"; done # bin: a real directory
for f in "$CU"/lib/*; do ln -s "$f" "$HOME_DIR/lib/"; done
if [[ -e "$CU/lib/libcudart.so.13" && ! -e "$HOME_DIR/lib/libcudart.so" ]]; then
    ln -s libcudart.so.13 "$HOME_DIR/lib/libcudart.so"
fi
ln -s lib "$HOME_DIR/lib64"
ln -s "$CU/include" "$HOME_DIR/include"
ln -s "$CU/nvvm" "$HOME_DIR/nvvm"
echo "symlinks into $CU, made by tools/cuda-toolkit.sh" > "$MARKER"

# ---- 4. check: compile and link a kernel against the static runtime ----
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/t.cu" <<'EOF'
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cstdio>
__global__ void k(float *p) { p[threadIdx.x] = __half2float(__float2half(1.5f)); }
int main() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0; // no driver here is fine
    std::printf("devices: %d\n", n);
    return 0;
}
EOF
"$HOME_DIR/bin/nvcc" -arch=sm_75 -o "$tmp/t" "$tmp/t.cu" || die "nvcc could not build a test program"
"$tmp/t" >/dev/null || die "the test program failed to run"
echo "cuda-toolkit.sh: nvcc builds and links (test program ran: $("$tmp/t"))"

print_flags

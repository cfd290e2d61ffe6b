#!/usr/bin/env bash
# Configures and builds ridgeline into ./build (CUDA when nvcc is found; sm_90 unless
# CMAKE_CUDA_ARCHITECTURES is set in the environment).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRIDGELINE_CUDA="${RIDGELINE_CUDA:-AUTO}" \
  -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" >&2
cmake --build build -j "$jobs" "$@" >&2

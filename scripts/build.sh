#!/usr/bin/env bash
# Configures and builds ridgeline with the `release` CMake preset into ./build (CUDA when nvcc is
# found; sm_90 unless CMAKE_CUDA_ARCHITECTURES is set in the environment). Extra arguments go to
# `cmake --build` (e.g. --target ridgeline).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
cmake --preset release -DRIDGELINE_CUDA="${RIDGELINE_CUDA:-AUTO}" \
  -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" >&2
cmake --build --preset release -j "$(nproc)" "$@" >&2

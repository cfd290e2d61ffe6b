#!/usr/bin/env bash
# Installs the Debian packages ridgeline builds against, if any is missing. CUDA comes from the
# NVIDIA toolkit (/usr/local/cuda), not from here: without nvcc the CPU backend alone is built.
# `clang` (the fuzzers' compiler) is optional: where it cannot be installed, scripts/test.sh says
# so and skips the fuzzing stage instead of failing.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev
      libbenchmark-dev libsentencepiece-dev libcli11-dev zlib1g-dev chromium python3)
optional=(clang)
missing() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
install() {
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
    --no-install-recommends "$@" >&2
}
mapfile -t need < <(missing "${pkgs[@]}")
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  install "${need[@]}"
fi
mapfile -t want < <(missing "${optional[@]}")
if [ ${#want[@]} -gt 0 ]; then
  echo "setup: installing ${want[*]} (optional)" >&2
  install "${want[@]}" || echo "setup: could not install ${want[*]}; the fuzzing stage will be skipped" >&2
fi

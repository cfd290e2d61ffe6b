#!/usr/bin/env bash
# Installs the Debian packages ridgeline builds against, if any is missing. CUDA comes from the
# NVIDIA toolkit (/usr/local/cuda), not from here: without nvcc the CPU backend alone is built.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev
      libbenchmark-dev libsentencepiece-dev libcli11-dev chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

#!/usr/bin/env bash
# The main job: builds ridgeline, then asks the bundled tiny InternLM2 model a question on the best
# backend this machine has (CUDA when a GPU answers, else the CPU reference).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --target ridgeline
./build/ridgeline generate --model tests/data/tiny-internlm2-chat --chat "What is 40 + 20?" "$@"

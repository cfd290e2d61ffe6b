#!/usr/bin/env bash
# The main job: builds ridgeline, runs the default sweep and renders its report.
#  - with a GPU: internlm2-chat-1_8b preset (synthetic weights on the device), batch 1..256 x
#    context 1024/4096, fp16, against the measured ceilings of the card;
#  - without one: the CPU reference backend on the bundled tiny model (it says so).
# Writes out/run.json (schema ridgeline.report.v1), out/report.html and out/report.md (+ SVG charts).
# Extra arguments go to `ridgeline sweep` (e.g. --batch 1,16 --context 2048).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --target ridgeline
mkdir -p out
./build/ridgeline sweep --out out/run.json "$@"
./build/ridgeline report out/run.json -o out/report.html
./build/ridgeline report out/run.json -o out/report.md
echo "main job: wrote out/run.json, out/report.html, out/report.md" >&2

#!/usr/bin/env bash
# The main job: builds ridgeline, runs the default sweep and renders its report.
#  - with a GPU: internlm2-chat-1_8b preset (synthetic weights on the device), batch 1..256 x
#    context 1024/4096, against the measured ceilings of the card;
#  - without one: the CPU reference backend on the bundled tiny model (it says so);
#  - both: fp16 and w4a16 weights (the model's linears quantized at load, round-to-nearest) x fp16 and
#    int8 KV, so that the report compares what each quantization buys.
# Writes out/run.json (schema ridgeline.report.v1), out/report.html and out/report.md (+ SVG charts).
# Extra arguments go to `ridgeline sweep` (e.g. --batch 1,16 --context 2048); naming --model,
# --weights or --kv drops the formats above (a model's own formats are the sweep's default).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --target ridgeline
mkdir -p out
formats=(--weights fp16,w4a16 --kv fp16,int8)
for a in "$@"; do
  case $a in --model | --model=* | --weights | --weights=* | --kv | --kv=*) formats=() ;; esac
done
./build/ridgeline sweep --out out/run.json "${formats[@]}" "$@"
./build/ridgeline report out/run.json -o out/report.html
./build/ridgeline report out/run.json -o out/report.md
echo "main job: wrote out/run.json, out/report.html, out/report.md" >&2

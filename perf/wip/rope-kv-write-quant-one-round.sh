#!/usr/bin/env bash
# One device call (~3 minutes from a bare machine), queued by the twenty-seventh session: the
# quantized rope_kv_write in one round of up to 512 threads a token
# (perf/wip/rope-kv-write-quant-one-round.patch) against HEAD: the KV-write tests with the patch
# (stored bytes and scales exactly the CPU reference's), then `ridgeline sweep` B = 1, 4, 16 ctx 1024,
# fp16 weights, every KV format, both presets, with HEAD's build and the patched one.
# Prediction: rope_kv_write per op (serial) int8 / int4 1.8b 5.7 -> ~4.4 us, 7b 6.3 -> ~4 us; the
# quantized-KV B=1 steps -10..-40 us (part of the op is already hidden under wqkv's tail), fp16 KV
# unchanged (the fp16 path is untouched; at B <= 2 it is fused into wqkv anyway).
#
#   perf/wip/rope-kv-write-quant-one-round.sh OUTDIR
#
# Set RIDGELINE_GIT_COMMIT to the local HEAD first. Leaves the tree as HEAD.
set -uo pipefail
out=${1:?usage: perf/wip/rope-kv-write-quant-one-round.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
p=perf/wip/rope-kv-write-quant-one-round.patch
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
sweeps() {  # tag
  for m in 1_8b 7b; do
    "$build/ridgeline" sweep --model internlm2-chat-$m --batch 1,4,16 --context 1024 --weights fp16 \
      --kv fp16,int8,int4 --out "$out/sweep-$m-$1.json" >"$out/sweep-$m-$1.log" 2>&1 || echo "sweep $m $1 failed"
    grep -E "^\[[0-9]+/[0-9]+\]" "$out/sweep-$m-$1.log" | sed "s/^/$m $1 /" | cut -c1-90
  done
}
bash scripts/refresh-mtimes.sh "$build" >/dev/null
cmake --build "$build" -j16 --target ridgeline >"$out/build-head.log" 2>&1 || { echo "HEAD build failed"; exit 1; }
sweeps head
git apply "$p" || exit 1
trap 'git apply -R "$p"' EXIT
cmake --build "$build" -j16 --target ridgeline ridgeline_gpu_tests >"$out/build-new.log" 2>&1 || { grep error "$out/build-new.log" | head; exit 1; }
"$build/tests/ridgeline_gpu_tests" --gtest_filter='KernelRope*:CudaKv*:CudaEngine.*' >"$out/tests.log" 2>&1
grep -E "^\[  PASSED|^\[  FAILED" "$out/tests.log"
sweeps new
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for m in ("1_8b", "7b"):
    runs = {}
    for tag in ("head", "new"):
        for r in json.load(open(f"{out}/sweep-{m}-{tag}.json"))["runs"]:
            ops = [o["time_us"] for o in r["ops"] if o["name"].endswith("rope_kv_write")]
            runs[(tag, r["batch"], r["kv"])] = (r["step"]["time_us"]["median"], sum(ops) / len(ops) if ops else 0)
    for (tag, b, kv), (step, rope) in sorted(runs.items()):
        if tag == "head":
            n = runs[("new", b, kv)]
            print(f"{m} B={b} {kv}: step {step:.1f} -> {n[0]:.1f} us, rope_kv_write {rope:.2f} -> {n[1]:.2f} us a layer")
PY

#!/usr/bin/env bash
# One device call (~5-6 minutes from a bare machine), queued by the twenty-eighth session (no device
# then): perf/wip/rope-in-attention.patch, rope_kv_write's work inside decode attention
# (Fusions::rope_in_attention: every decode step whose wqkv does not rotate; each CTA rotates its q
# heads from the wqkv output, the CTA whose split holds the newest token writes its K/V row, fp16 or
# quantized, through kernels/kv_write.cuh, rope_kv_write's own store). Runs, in order:
#   1. HEAD's ridgeline: `sweep` B = 1, 4, 16, 64 ctx 1024 and B = 16 ctx 8192, fp16 weights, every KV
#      format, both presets (and w4a16 B = 1, 16 on 1.8b);
#   2. the patch: the GPU tests that touch it (the new KernelDecodeAttentionRope.*, which hold the
#      fused kernel's pools and outputs byte for byte to rope_kv_write + decode_attention; decode
#      attention's, rope's, the engine's and the quantized-KV engine tests), memcheck over the new
#      tests and one int8-KV engine test, BM_DecodeAttentionRope (fused against the two launches), and
#      the same sweeps.
# Prediction (perf/NOTES.md, "twenty-eighth"): the quantized-KV B=1 steps lose most of rope_kv_write
# (1.8b int8 / int4 1256 -> ~1150-1180 us, at or under fp16 KV's 1163; 7b 4239 / 4251 -> ~4080-4120);
# fp16 KV at B >= 4 -1..-3% (3.1-4.3 us a layer of rope_kv_write gone, less what overlapping already
# hid); BM_DecodeAttentionRope fused <= unfused everywhere, most at B = 1. The risks: the writer
# CTA's longer start (load, quantize, fence, barrier) at B = 1, and 64 double sincos a CTA at large
# batches (before the wait, so hidden unless the grid is in its second wave).
#
#   perf/wip/rope-in-attention.sh OUTDIR
#
# Set RIDGELINE_GIT_COMMIT to the local HEAD first. Leaves the tree as HEAD.
set -uo pipefail
out=${1:?usage: perf/wip/rope-in-attention.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
p=perf/wip/rope-in-attention.patch
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
sweeps() {  # tag
  for m in 1_8b 7b; do
    "$build/ridgeline" sweep --model internlm2-chat-$m --batch 1,4,16,64 --context 1024 --weights fp16 \
      --kv fp16,int8,int4 --out "$out/sweep-$m-$1.json" >"$out/sweep-$m-$1.log" 2>&1 || echo "sweep $m $1 failed"
    "$build/ridgeline" sweep --model internlm2-chat-$m --batch 16 --context 8192 --weights fp16 \
      --kv fp16,int8,int4 --out "$out/sweep-$m-8k-$1.json" >"$out/sweep-$m-8k-$1.log" 2>&1 || echo "sweep $m 8k $1 failed"
  done
  "$build/ridgeline" sweep --model internlm2-chat-1_8b --batch 1,16 --context 1024 --weights w4a16 \
    --kv fp16,int8,int4 --out "$out/sweep-w4-$1.json" >"$out/sweep-w4-$1.log" 2>&1 || echo "sweep w4 $1 failed"
}
bash scripts/refresh-mtimes.sh "$build" >/dev/null
cmake --build "$build" -j16 --target ridgeline >"$out/build-head.log" 2>&1 || { echo "HEAD build failed"; exit 1; }
sweeps head
git apply "$p" || exit 1
trap 'git apply -R "$p"' EXIT
bash scripts/refresh-mtimes.sh "$build" >/dev/null
cmake --build "$build" -j16 --target ridgeline ridgeline_gpu_tests ridgeline_bench >"$out/build-new.log" 2>&1 ||
  { grep -E "error" "$out/build-new.log" | head; exit 1; }
grep -c "warning" "$out/build-new.log" | sed 's/^/build warnings: /'
"$build/tests/ridgeline_gpu_tests" \
  --gtest_filter='KernelDecodeAttentionRope.*:KernelDecodeAttention*:KernelRope*:CudaEngine.*:CudaEngineQuantizedKv*' \
  >"$out/tests.log" 2>&1
grep -E "^\[  PASSED|^\[  FAILED|FAILED  \]" "$out/tests.log" | head -20
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 "$build/tests/ridgeline_gpu_tests" \
  --gtest_filter='KernelDecodeAttentionRope.MixedContexts*:CudaEngineQuantizedKv*' >"$out/memcheck.log" 2>&1
echo "memcheck exit $? ($(grep -c 'Invalid' "$out/memcheck.log") invalid accesses)"
"$build/bench/ridgeline_bench" --benchmark_filter=BM_DecodeAttentionRope --benchmark_min_time=30x \
  --benchmark_out="$out/bench-rope.json" --benchmark_out_format=json >"$out/bench-rope.txt" 2>&1 || echo "bench failed"
sweeps new
python3 - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
for head in sorted(glob.glob(f"{out}/sweep-*-head.json")):
    new = head.replace("-head.json", "-new.json")
    if not os.path.exists(new):
        continue
    old = {(r["batch"], r["context"], r["weights"], r["kv"]): r["step"]["time_us"]["median"]
           for r in json.load(open(head))["runs"]}
    for r in json.load(open(new))["runs"]:
        k = (r["batch"], r["context"], r["weights"], r["kv"])
        if k in old:
            t = r["step"]["time_us"]["median"]
            print(f"{os.path.basename(head)[6:-10]:8} B={k[0]:<3} ctx {k[1]:<5} {k[2]}/{k[3]}: "
                  f"{old[k]:8.1f} -> {t:8.1f} us ({t / old[k]:.3f})")
try:
    t = {}
    for b in json.load(open(f"{out}/bench-rope.json"))["benchmarks"]:
        parts = b["name"].split("/")  # BM_DecodeAttentionRope/model/kv/ctx/batch/fused/...
        t[(tuple(parts[1:5]), parts[5])] = b["real_time"]
    for (k, f), us in sorted(t.items()):
        if f == "0" and (k, "1") in t:
            print(f"rope+attention model {k[0]} kv {k[1]} ctx {k[2]} B={k[3]}: {us:.2f} -> fused {t[(k, '1')]:.2f} us")
except Exception as e:
    print("no bench json:", e)
PY

#!/usr/bin/env bash
# Thirty-seventh: issue 10's last cell without the split merge. At B=16 on 8 KV heads the 128
# (sequence, KV head) pairs about fill the 132 SMs once; the split rule makes 4 splits (int8/int4:
# 512 CTAs of 4 warps, 4 an SM) or 3 (fp16), then a merge kernel that ends 3.0-3.6 us after the last
# attention warp (perf/NOTES.md, "twentieth"). Landed after this script's H100 run (it then applied a
# patch, not kept: main's kernels/decode_attention.cu is that patch, bounded at 8192): one wide CTA a pair
# (16 warps at int8/int4, 12 at fp16), each warp streaming the same tiles as before, merged in shared
# memory: no partials, no merge kernel (choose_warps; RIDGELINE_WIDE_ATTENTION=0 keeps the splits).
# One device call (~6 min from a bare machine): build; the decode-attention GPU tests; memcheck
# over a new test; BM_DecodeAttention at B=16 ctx 1024/8192/32768 and B=64 ctx 8192 off/on/off/on; the B=16 ctx
# 1024 and 8192 decode steps of both presets off/on/off/on.
# Prediction: every B=16 row -2.5..-3.5 us (the merge's tail), so int8 ~1.83x and int4 ~3.05x at ctx
# 8192 on the H200 with fp16 gaining the same; B=64 unchanged (one split already: not wide).
#
#   OUT=/some/dir bash perf/wip/wide-attention-ab.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline ridgeline_bench ridgeline_gpu_tests
nvidia-smi --query-gpu=name --format=csv,noheader
t=build-gpu/tests/ridgeline_gpu_tests
RIDGELINE_REQUIRE_GPU=1 timeout 200 $t --gtest_filter='KernelDecodeAttention*' \
  >"$W/tests.log" 2>&1
echo "tests exit $?"
grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|warps=1[26]" "$W/tests.log" | head -40
f='BM_DecodeAttention/[01]/[012]/((1024|8192|32768)/16|8192/64)/'
for k in 0 1 0b 1b; do
  RIDGELINE_WIDE_ATTENTION=${k%b} build-gpu/bench/ridgeline_bench --benchmark_filter="$f" --benchmark_min_time=30x \
    --benchmark_out="$W/bench-$k.json" --benchmark_out_format=json >"$W/bench-$k.log" 2>&1 || echo "bench $k failed"
done
r=build-gpu/ridgeline
$r probe --out "$W/ceil.json" >"$W/probe.log" 2>&1
grep -iE "^read" "$W/probe.log"
for k in 0 1 0b 1b; do
  for m in internlm2-chat-1_8b internlm2-chat-7b; do
    RIDGELINE_WIDE_ATTENTION=${k%b} timeout 120 $r sweep --model $m --batch 16 --context 1024,8192 --weights fp16 \
      --kv fp16,int8,int4 --ceilings "$W/ceil.json" --out "$W/step-$m-$k.json" >"$W/step-$m-$k.log" 2>&1 ||
      echo "$m $k failed"
  done
done
python3 - "$W" <<'PY' | tee "$W/summary.txt"
import collections, json, os, sys
w = sys.argv[1]
t = collections.defaultdict(list)
for k in ("0", "1", "0b", "1b"):
    f = os.path.join(w, f"bench-{k}.json")
    if not os.path.exists(f): continue
    for b in json.load(open(f))["benchmarks"]:
        t[b["name"].split("/manual")[0]].append(b["real_time"])
print("BM_DecodeAttention us (model/kv/ctx/batch): splits, wide, splits, wide")
for n, v in t.items():
    print(f"{n:44s}", " ".join(f"{x:8.2f}" for x in v))
steps = collections.defaultdict(list)
for m in ("internlm2-chat-1_8b", "internlm2-chat-7b"):
    for k in ("0", "1", "0b", "1b"):
        f = os.path.join(w, f"step-{m}-{k}.json")
        if not os.path.exists(f): continue
        for run in json.load(open(f))["runs"]:
            steps[(m, run["context"], run["kv"])].append(run["step"]["time_us"]["median"])
print("B=16 step us (model, context, kv): splits, wide, splits, wide")
for k, v in steps.items():
    print(*k, " ".join(f"{x:8.1f}" for x in v))
PY
timeout 150 compute-sanitizer --tool memcheck $t \
  --gtest_filter='KernelDecodeAttentionRope.SixteenSequencesInWideCtasMatchToo' >"$W/memcheck.log" 2>&1
echo "memcheck exit $?"; tail -3 "$W/memcheck.log"

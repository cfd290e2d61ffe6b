#!/usr/bin/env bash
# Thirty-seventh: issue 10's last cell (int8 1.77-1.79x, int4 2.93-2.98x at B=16 ctx 8192 on the H200)
# without the split merge. At B=16 on 8 KV heads the 128 (sequence, KV head) pairs about fill the 132
# SMs once, and the split rule makes 4 splits (int8/int4: 512 CTAs of 4 warps, 4 an SM) or 3 (fp16),
# then a merge kernel that ends 3.0-3.6 us after the last attention warp (perf/NOTES.md, "twentieth").
# perf/wip/attention-wide-cta.patch (RIDGELINE_ATTN_WIDE=1): one CTA of 4 x splits warps per pair
# (16 at int8/int4, 12 at fp16), each warp streaming the same tiles as before, merged in shared
# memory, no partials and no merge kernel. One device call (~5 min from a bare machine): build, the
# attention tests with the knob (a new test at B=16, mixed contexts to 8192, groups 2 and 4, every
# format, against the CPU reference), BM_DecodeAttention at B=16/64 ctx 8192-32768 off/on/off, and
# the B=16 ctx 8192 decode steps of both presets off/on.
# Prediction: every B=16 row -2.5..-3.5 us (the merge's tail), so int8 ~1.83x and int4 ~3.05x at ctx
# 8192 if fp16 gains the same; B=64 unchanged (one split already: the knob does not apply).
#
#   OUT=/some/dir bash perf/wip/attention-wide-ab.sh
source "$(dirname "$0")/device-call.sh"
trap 'git apply -R perf/wip/attention-wide-cta.patch 2>/dev/null; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/attention-wide-cta.patch || exit 1
build_gpu ridgeline ridgeline_bench ridgeline_gpu_tests
RIDGELINE_REQUIRE_GPU=1 timeout 240 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelDecodeAttention.WideCtasMatchReference:KernelDecodeAttention.QuantizedCache*' >"$W/tests-off.log" 2>&1
echo "tests (knob off but the new test) exit $?"
RIDGELINE_ATTN_WIDE=1 RIDGELINE_REQUIRE_GPU=1 timeout 240 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelDecodeAttention*:KernelDecodeAttentionRope*' >"$W/tests-on.log" 2>&1
echo "tests with RIDGELINE_ATTN_WIDE=1 exit $?"
grep -E "^\[  (PASSED|FAILED) |wide=|FAILED" "$W/tests-off.log" "$W/tests-on.log" | head -30
f='BM_DecodeAttention/[01]/[012]/(8192|16384|32768)/(16|64)/'
for k in 0 1 0b 1b; do
  RIDGELINE_ATTN_WIDE=${k%b} build-gpu/bench/ridgeline_bench --benchmark_filter="$f" --benchmark_min_time=30x \
    --benchmark_out="$W/bench-$k.json" --benchmark_out_format=json >"$W/bench-$k.log" 2>&1 || echo "bench $k failed"
done
r=build-gpu/ridgeline
$r probe --out "$W/ceil.json" >"$W/probe.log" 2>&1
for k in 0 1 0b 1b; do
  for m in internlm2-chat-1_8b internlm2-chat-7b; do
    RIDGELINE_ATTN_WIDE=${k%b} timeout 120 $r sweep --model $m --batch 16 --context 8192 --weights fp16 \
      --kv fp16,int8,int4 --ceilings "$W/ceil.json" --out "$W/step-$m-$k.json" >"$W/step-$m-$k.log" 2>&1 || echo "$m $k failed"
  done
done
python3 - "$W" <<'PY' | tee "$W/summary.txt"
import collections, json, os, sys
w = sys.argv[1]
t = collections.defaultdict(list)
for k in ("0", "1", "0b", "1b"):
    for b in json.load(open(os.path.join(w, f"bench-{k}.json")))["benchmarks"]:
        t[b["name"].split("/manual")[0]].append((k.rstrip("b"), b["real_time"]))
print("BM_DecodeAttention us: off, on, off, on")
for n, v in t.items():
    print(f"{n:48s}", " ".join(f"{x:8.2f}" for _, x in v))
for m in ("internlm2-chat-1_8b", "internlm2-chat-7b"):
    for k in ("0", "1", "0b", "1b"):
        f = os.path.join(w, f"step-{m}-{k}.json")
        if not os.path.exists(f): continue
        for run in json.load(open(f))["runs"]:
            att = sum(o.get("time_us", {}).get("median", 0) if isinstance(o.get("time_us"), dict) else 0
                      for o in run.get("ops", []) if "attention" in str(o.get("name", o.get("op", ""))))
            print(m, "wide" if k.startswith("1") else "off ", run["kv"], f"step {run['step']['time_us']['median']:9.1f}")
PY

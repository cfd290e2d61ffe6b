#!/usr/bin/env bash
# Thirty-fifth: gemm_narrow with x shared by 2 or 4 output tiles (perf/wip/gemm-narrow-share.patch over
# gemm-narrow.patch). Why: the single tiles' main loop is fed from the L2, not DRAM: 1.8b w13 at split 1
# reads 128 tiles x 32 stages x 48 KB = 201 MB from the L2 in 38.7 us (5.2 TB/s on the H100) while one
# CTA alone runs a stage at the SM's peak (w2 at split 1: 16 CTAs, 0.63 us a stage). Sharing x cuts a
# CTA's stage to 32 KB (pairs) or 24 KB (fours). The thirty-fourth session's pairs were slower than
# single tiles (w13 split 1: 52.7 against 38.7 us); suspect: every consumer warp's remote arrival was a
# release at cluster scope (and the producer's wait an acquire at cluster scope), which may be a fence a
# stage. The delta makes them CTA-scope (CUTLASS's form) and keeps the first form behind
# RL_X_GEMM_NARROW_SCOPE=cluster, and generalizes pairs to groups of `share` tiles (1, 2, 4).
# Then perf/wip/gemm-narrow-epilogue.patch: the launch's fixed cost. At split 1 (no sum) 16 CTAs took
# 28.2 us for 32 stages (wo) and 81.2 for 128 (w2): 0.55 us a stage and ~10.5 us a launch, and Nsight
# Compute put 843 of w13's 3591 warp samples after the main loop (the partials' sum one dependent
# generic load at a time, cluster barriers fenced at GPU scope around the y stores). The patch sums
# with the W4A16 GEMMs' reduce_splits_and_store (a block barrier at split 1, each quad's partials
# loaded before the first add, a relaxed exit barrier); RL_X_GEMM_NARROW_EPILOGUE=old keeps the first.
# One device call, ~7 min from a bare machine:
#   1. build; ptxas's view; SASS fences (MEMBAR) per kernel instance;
#   2. the kernel tests (groups of 2 and 4 bit-identical to single tiles at every split);
#   3. probe; BM_GemmNarrow at 256 rows: every shape at the plan's split x share 1/2/4, the 1.8b
#      shapes at split 1 (GEMM_NARROW_SPLITS); single tiles with the old epilogue; then shares 2 and 4
#      again with RL_X_GEMM_NARROW_SCOPE=cluster (split 0 only);
#   4. B=256 ctx 1024 sweeps, 1.8b (GEMM_NARROW_MODELS): RL_X_GEMM_NARROW=0 (cuBLASLt), 1, 3 (pairs),
#      5 (fours);
#   5. memcheck over the sharing test, in what time is left.
# Prediction: if the cluster-scope release was the cost, pairs at split 1 on w13 go from 52.7 to below
# the single tiles' 38.7 us, toward the 201 -> 134 MB of L2 traffic (~26 us at 5.2 TB/s, so the tensor
# cores' ~24 us bound it); fours 100 MB. With the cluster scope restored, pairs as before. The new
# epilogue: 3-6 us less a launch at every split (1.8b wo 16.6 -> ~11-13 us, w2 27.3 -> ~22-24).
#
#   OUT=/some/dir bash perf/wip/gemm-narrow-share.sh
source "$(dirname "$0")/device-call.sh"
source "$(dirname "$0")/gemm-narrow-lib.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
# GEMM_NARROW_PATCHES: the deltas over gemm-narrow.patch, in order (the share patch, then the epilogue's).
if [ ! -f kernels/sm90a/gemm_narrow.cu ]; then
  git apply perf/wip/gemm-narrow.patch || { echo "gemm-narrow.patch does not apply"; exit 1; }
  for p in ${GEMM_NARROW_PATCHES:-gemm-narrow-share.patch gemm-narrow-epilogue.patch}; do
    git apply "perf/wip/$p" || { echo "$p does not apply"; exit 1; }
  done
fi
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
narrow_ptxas
obj=$(find build-gpu -name 'gemm_narrow.cu.o' | head -1)
if [ -n "$obj" ] && command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$obj" >"$W/gemm-narrow.sass" 2>&1
  awk '/Function :/ {f=$3} /MEMBAR|FENCE|ERRBAR/ {n[f]++} END {for (k in n) print "fences", n[k], k}' \
    "$W/gemm-narrow.sass"
  grep -c "Function :" "$W/gemm-narrow.sass"
fi
narrow_tests 150
timeout 120 build-gpu/ridgeline probe --out "$W/ceilings.json" >"$W/probe.log" 2>&1 && tail -2 "$W/probe.log"
bench() {  # tag, filter, then env
  local tag=$1 filter=$2
  shift 2
  env "$@" timeout 150 build-gpu/bench/ridgeline_bench --benchmark_filter="$filter" --benchmark_min_time=20x \
    --benchmark_out="$W/bench-$tag.json" --benchmark_out_format=json >"$W/bench-$tag.txt" 2>&1
  echo "bench $tag exit $?"
}
# Each share in a process of its own (a faulting multicast launch ends its process).
# GEMM_NARROW_SPLITS: the forced splits to time besides the plan's own (0); a regex alternative.
splits=${GEMM_NARROW_SPLITS:-0|1}
# GEMM_NARROW_SHAPES: the shapes (kGemms indices, a regex alternative; 2 is 1.8b w13) to time.
shapes=${GEMM_NARROW_SHAPES:-[0-9]+}
for share in 1 2 4; do bench share$share "BM_GemmNarrow/($shapes)/256/($splits)/$share/" RL_NONE=1; done
# The epilogue patch's A/B: the first epilogue, single tiles at the plan's split.
grep -q RL_X_GEMM_NARROW_EPILOGUE kernels/sm90a/gemm_narrow.cu &&
  bench old-epilogue "BM_GemmNarrow/($shapes)/256/0/1/" RL_X_GEMM_NARROW_EPILOGUE=old
# GEMM_NARROW_CLUSTER_SHAPES: the shapes (a regex alternative of kGemms indices) timed again with the
# cluster-scope form.
for share in 2 4; do
  bench cluster$share "BM_GemmNarrow/(${GEMM_NARROW_CLUSTER_SHAPES:-[0-9]+})/256/0/$share/" RL_X_GEMM_NARROW_SCOPE=cluster
done
python3 perf/wip/gemm-narrow-summary.py bench "$W"
if [ "$tests_rc" -eq 0 ]; then
  for model in ${GEMM_NARROW_MODELS:-internlm2-chat-1_8b}; do
    for mode in 0 1 3 5; do
      [ $(( $(date +%s) - start )) -gt ${GEMM_NARROW_BUDGET_S:-430} ] && break 2
      narrow_sweep "$mode" "$model" "narrow$mode-$model"
    done
  done
else
  echo "tests failed: no sweeps"
fi
left=$(( ${GEMM_NARROW_CALL_S:-580} - ($(date +%s) - start) - 10 ))
if [ "$left" -gt 40 ]; then
  timeout "$left" compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
    --gtest_filter='KernelGemmNarrow.TilesSharing*' >"$W/memcheck.log" 2>&1
  echo "memcheck exit $? ($left s allowed)"
  tail -2 "$W/memcheck.log"
fi
python3 perf/wip/gemm-narrow-summary.py sweep "$W"

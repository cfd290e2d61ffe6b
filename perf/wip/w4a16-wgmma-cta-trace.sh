#!/usr/bin/env bash
# One device call (~6 min from a bare machine, any Hopper card): where the wgmma W4A16 GEMM's blocks land
# inside the w4a16 step's graph, and when. The question (perf/NOTES.md "fiftieth"): the 1.8b w13's
# split moves the step 4-8x more than its kernel time alone says (unsplit at 48 rows: +7.2 us a launch in
# the graph, +1.3 alone; clusters of 2 at 24: the RMSNorm before and the SwiGLU after lose too). The
# candidate: placement, 128 unsplit blocks of 101 KB beside the RMSNorm's resident blocks going two to
# some SMs and none to others (alone, back to back, each launch's blocks land beside the last one's, one
# an SM). Prediction: unsplit at 48 rows shows sm_max 2 over ~64 SMs ("sms"), the rule's clusters of 2
# 2 over all 132; if both spread evenly, placement is not the cause.
# Applies perf/wip/cta-trace-wgmma.patch (per-block globaltimer stamps in the wgmma kernel, add_rmsnorm
# and swiglu, built with -DRIDGELINE_CTA_TRACE=ON into build-trace/), sweeps 1.8b w4a16 B = 24 / 48 ctx
# 1024 with RIDGELINE_CTA_TRACE set at HEAD, with w4a16-tuned-splits-off.patch and with
# w4a16-w13-unsplit-48-64.patch, and summarizes each (perf/wip/cta-trace-summary.py). $OUT/w.tgz.
# TRACE_VARIANTS ("label:patch ...") replaces those two variants (TRACE_VARIANTS=" " runs HEAD alone);
# TRACE_BATCHES replaces 24,48 (e.g. 1,2 for the W4A16 GEMVs of issue 9's B = 1 step, also stamped).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> bash perf/wip/w4a16-wgmma-cta-trace.sh
source "$(dirname "$0")/device-call.sh"
mkdir -p "$W/trace"
trap 'git apply -R perf/wip/cta-trace-wgmma.patch 2>/dev/null; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
echo "card: $(card)"
git apply perf/wip/cta-trace-wgmma.patch || exit 1
start=$(date +%s)
cmake --preset gpu -B build-trace -DRIDGELINE_CTA_TRACE=ON >"$W/cfg.log" 2>&1 || { tail -20 "$W/cfg.log"; exit 1; }
trace() {  # trace LABEL [PATCH]: build-trace with PATCH applied, the traced sweep, the summary
  [ -n "${2:-}" ] && { git apply "$2" || { echo "$2 does not apply"; return; }; }
  bash scripts/refresh-mtimes.sh build-trace >/dev/null
  cmake --build build-trace -j16 --target ridgeline >"$W/build-$1.log" 2>&1 ||
    { grep -E "error" "$W/build-$1.log" | head; [ -n "${2:-}" ] && git apply -R "$2"; return; }
  echo "$1 built at $(( $(date +%s) - start )) s"
  [ -f "$W/ceil.json" ] || build-trace/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1
  RIDGELINE_CTA_TRACE="$W/trace/$1" timeout 90 build-trace/ridgeline sweep --model internlm2-chat-1_8b \
    --weights w4a16 --kv fp16 --batch "${TRACE_BATCHES:-24,48}" --context 1024 --ceilings "$W/ceil.json" --timeline \
    --out "$W/$1.json" >"$W/$1.log" 2>&1 || echo "$1 sweep failed"
  python3 perf/wip/cta-trace-summary.py "$W"/trace/"$1"-*.tsv | tee "$W/summary-$1.txt"
  [ -n "${2:-}" ] && git apply -R "$2"
}
trace head
for v in ${TRACE_VARIANTS:-rule-at-24:perf/wip/w4a16-tuned-splits-off.patch unsplit-at-48:perf/wip/w4a16-w13-unsplit-48-64.patch}; do
  trace "${v%%:*}" "${v#*:}"
done
gzip -f "$W"/trace/*.tsv
echo "done at $(( $(date +%s) - start )) s"

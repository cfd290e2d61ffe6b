#!/usr/bin/env bash
# Forty-fifth session's call on a card that is not an H200 (~9 min from a bare machine): the landed
# wgmma overlap's verify call (unpatched build: its tests, BM_W4A16VsFp16 at 48/64 rows, the w4a16
# steps at B=48/64), then the shared-x GEMV candidate at 16 rows (patched, incremental rebuild) in
# whatever is left of RIDGELINE_CALL_SECONDS (default 560) after the verify. On an H200 run
# h200-baselines-call.sh instead:
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) RIDGELINE_CALL_SECONDS=560 \
#     bash perf/wip/by-card.sh h200-baselines-call.sh w4a16-verify-then-shared-x.sh
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
bash "$here/w4a16-wgmma-overlap-verify.sh"
left=$(( ${RIDGELINE_CALL_SECONDS:-560} - ($(date +%s) - t0) ))
echo "verify took $(( $(date +%s) - t0 )) s, $left s left"
# the shared-x call needs ~100 s to rebuild and ~40 s of tests before its benchmark
if [ "$left" -gt 200 ]; then
  SX_BENCH_SECONDS=$(( left - 150 )) bash "$here/w4a16-gemv-m16-shared-x.sh"
else
  echo "too little time left for the shared-x candidate"
fi

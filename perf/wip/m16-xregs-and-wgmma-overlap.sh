#!/usr/bin/env bash
# Forty-third session, one device call for two experiments in one build (the patches touch different
# lines): perf/wip/w4a16-m16-xregs.sh (the x-in-registers GEMV at 16 rows) and then
# perf/wip/w4a16-wgmma-overlapped.sh (the wgmma GEMM launched overlapped), each with NO_BUILD=1.
# ~9.5 min from a bare machine; the steps at the end stop at RIDGELINE_CALL_SECONDS (default 560).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/m16-xregs-and-wgmma-overlap.sh
here=$(cd "$(dirname "$0")" && pwd)
source "$here/device-call.sh"
patches=(perf/wip/w4a16-gemv-m16-xregs.patch perf/wip/w4a16-wgmma-overlapped.patch)
trap 'for p in "${patches[@]}"; do git apply -R "$p" 2>/dev/null; done; tar czf "$OUT/all.tgz" -C "$OUT" w' EXIT
for p in "${patches[@]}"; do git apply "$p" || { echo "$p does not apply"; exit 1; }; done
card
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
export start
NO_BUILD=1 XREGS_BENCH_SECONDS=120 bash "$here/w4a16-m16-xregs.sh"
NO_BUILD=1 bash "$here/w4a16-wgmma-overlapped.sh"

#!/usr/bin/env bash
# A short last call (~4 min): on an H200 issue 9's figures (perf/wip/h200-issue9-short.sh), on any
# other card the GPU suite under RIDGELINE_SUITE_SECONDS (perf/wip/gpu-suite-call.sh).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/short-dispatch.sh
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$card" in
  *H200*) exec bash "$(dirname "$0")/h200-issue9-short.sh" ;;
  *) echo "card: $card"; exec bash "$(dirname "$0")/gpu-suite-call.sh" ;;
esac

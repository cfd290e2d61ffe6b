#!/usr/bin/env bash
# The forty-second session's first call, whichever card comes: on an H200 the W4A16 tests and the
# baselines with targets (perf/wip/h200-baselines-call.sh; the issues' figures are H200 figures), on
# any other card the wgmma ping-pong experiment and the route's verify call
# (perf/wip/w4a16-wgmma-next-call.sh, comparable with the forty-first session's H100 runs), or the
# perf/wip script RIDGELINE_OTHER_CARD_CALL names.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/session-dispatch.sh
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "card: $card"
case "$card" in
  *H200*) exec bash "$(dirname "$0")/h200-baselines-call.sh" ;;
  *) exec bash "$(dirname "$0")/${RIDGELINE_OTHER_CARD_CALL:-w4a16-wgmma-next-call.sh}" ;;
esac

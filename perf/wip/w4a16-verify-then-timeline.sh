#!/usr/bin/env bash
# The next session's call on a card that is not an H200 (~7 min from a bare machine): the landed
# overlap's verify call, then the timeline of why 7b's large weights lose overlapped. On an H200
# run h200-baselines-call.sh instead:
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) RIDGELINE_CALL_SECONDS=560 \
#     bash perf/wip/by-card.sh h200-baselines-call.sh w4a16-verify-then-timeline.sh
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/w4a16-wgmma-overlap-verify.sh"
bash "$here/w4a16-wgmma-overlap-timeline.sh"

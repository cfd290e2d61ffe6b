#!/usr/bin/env bash
# One device call whose work depends on the card that comes (a call may name a kind but still get
# an H100 or an H200): the first perf/wip script on an H200, the second on any other card.
#   forty-second session: by-card.sh h200-baselines-call.sh w4a16-wgmma-next-call.sh (the first
#   call), by-card.sh h200-issue9-short.sh gpu-suite-call.sh (a last call of ~4 minutes).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/by-card.sh ON_H200 OTHERWISE
here=$(cd "$(dirname "$0")" && pwd)
source "$here/device-call.sh"
echo "card: $(card)"
case "$(card)" in
  *H200*) exec bash "$here/${1:?usage: by-card.sh ON_H200 OTHERWISE}" ;;
  *) exec bash "$here/${2:?usage: by-card.sh ON_H200 OTHERWISE}" ;;
esac

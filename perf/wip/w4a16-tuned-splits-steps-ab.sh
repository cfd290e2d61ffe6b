#!/usr/bin/env bash
# Fiftieth session: the w4a16 steps at B = 24 / 32 with the measured split table (HEAD), without it
# (w4a16-tuned-splits-off.patch), with it again: w4a16-steps-ab.sh with that patch. $OUT/ab.tgz.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> bash perf/wip/w4a16-tuned-splits-steps-ab.sh
here=$(cd "$(dirname "$0")" && pwd)
AB_PATCH=perf/wip/w4a16-tuned-splits-off.patch AB_BATCHES=24,32 exec bash "$here/w4a16-steps-ab.sh"

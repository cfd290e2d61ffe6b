#!/usr/bin/env bash
# For a short H200 budget (~3-4 min from a bare machine): ridgeline_bench alone built, then issue 9's
# kernel cells (BM_W4A16VsFp16 at M = 1 / 16 / 48 / 64) and the read floor of every shape at M = 1
# and 16 (perf/wip/read-floor-call.sh says what it is). On any other card only the read floor runs.
# Everything comes back in $OUT/read-floor.tgz.
#
#   OUT=/some/dir bash perf/wip/h200-floor-and-issue9-cells.sh
here=$(cd "$(dirname "$0")" && pwd)
source "$here/device-call.sh"
case "$(card)" in
  *H200*)
    trap 'tar czf "$OUT/read-floor.tgz" -C "$OUT" w' EXIT
    build_gpu ridgeline_bench
    vsfp16 "1|16|48|64"
    trap - EXIT
    ;;
esac
exec bash "$here/read-floor-call.sh"

#!/usr/bin/env bash
# BM_W4A16VsFp16 at 16..64 rows, HEAD / HEAD + VS_PATCH / HEAD on one machine (~5 min warm): spread launches
# timed back to back (issue 9's kernel rows) lose the overlap of a launch's blocks beside the previous
# launch's (fifty-first session, run before the spread landed: bench/results/h100-spread-one-an-sm).
# $OUT/all.tgz.
# VS_PATCH (default the spread-off patch) and VS_ROWS (default 16|24|32|48|64) for other A / B pairs.
#   OUT=/some/dir bash perf/wip/w4a16-spread-vsfp16-ab.sh
source "$(dirname "$0")/device-call.sh"
patch=${VS_PATCH:-perf/wip/w4a16-spread-off.patch}
rows=${VS_ROWS:-16|24|32|48|64}
trap 'tar czf "$OUT/all.tgz" -C "$OUT" w' EXIT
for v in head-1 patched head-2; do
  [ $v = patched ] && { git apply $patch 2>/dev/null || patch -p1 --forward <$patch >/dev/null; }
  build_gpu ridgeline_bench
  vsfp16 "$rows" | sed "s/^/$v /"
  mv "$W/vsfp16.json" "$W/vsfp16-$v.json"
  [ $v = patched ] && unpatch $patch
done

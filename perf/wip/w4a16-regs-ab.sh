#!/usr/bin/env bash
# Register-GEMV patches against HEAD on any Hopper card, one after the other (~3.5 min each, HEAD
# measured again beside every patch): for each, the GEMV tests on the patched build (each keeps
# HEAD's bits, so the bits tests must pass; the two engine tests that hold overlapped launches and
# graph replays to serial, eager bits on 1.8b shapes catch a read before the wait that races), then
# BM_W4A16GemvVariants at one row, BM_W4A16Fusions at one row and the B = 1 / 16 steps, as built and
# patched (perf/wip/w4a16-stream-only-call.sh's A/B form). Each comes back in $OUT/<name>.tgz.
#   - early2: perf/wip/w4a16-gemv-regs-second-batch-early.patch (second batch before x's staging);
#   - refill: perf/wip/w4a16-gemv-regs-refill.patch (each slot re-requested as its group is done);
#   - xasync: perf/wip/w4a16-gemv-regs-x-async.patch (x staged by cp.async: one L2 round trip, not
#     one per chunk a thread has);
#   - epiearly: perf/wip/w4a16-gemv-regs-epilogue-early.patch (what the epilogues read, the RoPE pair's
#     position, cache block and angle and the residual GEMVs' residual entry, read before the wait
#     instead of in the tail).
#
#   OUT=/some/dir bash perf/wip/w4a16-regs-ab.sh [NAME...]   (default: xasync epiearly; each A/B
#   measures HEAD and the patch, ~3.5 min, so two fit a device call: `early2 refill` the next one)
here=$(cd "$(dirname "$0")" && pwd)
export RIDGELINE_AB_FLOOR=0 RIDGELINE_AB_ROWS=1 RIDGELINE_CALL_SECONDS=${RIDGELINE_CALL_SECONDS:-300} \
  RIDGELINE_AB_TESTS='KernelW4A16Gemv.*:KernelW4A16GemvFused.*:KernelRopeEpilogue.*:CudaW4A16.*:CudaEngine.OverlappedLaunchesGiveTheBitsOfSerialLaunches:CudaEngine.GraphDecodeEqualsEagerDecode'
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(xasync epiearly)
for name in "${names[@]}"; do
  case $name in
    early2) patch=w4a16-gemv-regs-second-batch-early.patch ;;
    refill) patch=w4a16-gemv-regs-refill.patch ;;
    xasync) patch=w4a16-gemv-regs-x-async.patch ;;
    epiearly) patch=w4a16-gemv-regs-epilogue-early.patch ;;
    *) echo "unknown patch name $name (xasync, epiearly, early2, refill)"; exit 1 ;;
  esac
  echo "== $name"
  rm -rf "$OUT/w"  # the previous run's files are in its tarball; none may stand in for this run's
  RIDGELINE_AB_PATCH=perf/wip/$patch RIDGELINE_AB_NAME=$name bash "$here/w4a16-stream-only-call.sh"
done

#!/usr/bin/env bash
# Where the one-row W4A16 GEMVs' exposed arithmetic sits, per SASS instruction (any Hopper card, ~4-5
# min from a bare machine). The stream-only experiment (fifty-seventh session, H100) put 9% of the
# 7b w4a16 B = 1 step (2.103 -> 1.915 ms) and 1.5-2 us of the large 7b GEMVs at one row in the
# dequantization and mma that the layouts do not hide; this asks which instructions the warps wait on
# and whether a batch's multiply starts before the batch's last load has returned.
# scripts/ncu-sass.sh on the first launch of:
#   - w13: the register kernel's SwiGLU pair in the 7b B = 1 step (BM_W4A16Fusions/6/1);
#   - wo-res: the register kernel's residual GEMV of 7b wo (BM_W4A16Fusions/5/1);
#   - wo-ring: the ring kernel's plain 7b wo at one row, issue 9's M = 1 minimum (BM_W4A16VsFp16/5/1);
#   - w2-res: the register kernel's residual GEMV of 7b w2 (BM_W4A16Fusions/7/1);
# each into $W/<name>/ (sass.csv.gz, sass.txt), plus the register kernel's whole SASS (cuobjdump) for
# the load-wait grouping (DEPBAR / scoreboards). Everything comes back in $OUT/m1-sass.tgz.
#
#   OUT=/some/dir bash perf/wip/w4a16-m1-sass.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
trap 'tar czf "$OUT/m1-sass.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline_bench
t0=$(date +%s)
obj=$(find build-gpu -name 'w4a16_gemv_regs.cu.o' | head -1)
[ -n "$obj" ] && cuobjdump -sass "$obj" 2>/dev/null | gzip >"$W/regs-kernel.sass.gz"
echo "sass dump: $(zcat "$W/regs-kernel.sass.gz" 2>/dev/null | wc -l) lines from ${obj:-nothing}"
profile() {  # profile NAME KERNEL_REGEX FILTER
  timeout 120 bash scripts/ncu-sass.sh "$W/$1" "$2" "$3" >"$W/$1.log" 2>&1
  echo "== $1 exit $? at $(( $(date +%s) - t0 )) s"
  head -40 "$W/$1/sass.txt" 2>/dev/null
}
profile w13 w4a16_gemv_regs_kernel 'BM_W4A16Fusions/6/1/'
profile wo-res w4a16_gemv_regs_kernel 'BM_W4A16Fusions/5/1/'
profile wo-ring w4a16_gemv_kernel 'BM_W4A16VsFp16/5/1/'
profile w2-res w4a16_gemv_regs_kernel 'BM_W4A16Fusions/7/1/'
# The residual GEMVs again with the L2 left as the benchmark leaves it (ncu flushes it by default, so
# x came from DRAM above; in the step the kernel before leaves x in the L2): is x's staging wait the same?
export RIDGELINE_NCU_CACHE=none
profile wo-res-l2 w4a16_gemv_regs_kernel 'BM_W4A16Fusions/5/1/'
profile w2-res-l2 w4a16_gemv_regs_kernel 'BM_W4A16Fusions/7/1/'
echo "done at $(( $(date +%s) - t0 )) s"

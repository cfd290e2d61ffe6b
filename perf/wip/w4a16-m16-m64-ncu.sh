#!/usr/bin/env bash
# Forty-second session: where the time goes in issue 9's two short kernel rows, as the code is now
# (after the thirty-ninth session's 2-stage GEMV rings at 9-32 rows and the forty-first's wgmma GEMM):
#  - M = 16 on 7b (wqkv 2.30x, wo 2.32x of fp16 on the H100, 2.5x asked): the ring GEMV at 16 rows
#    against 8 (same weight bytes; 7b wqkv 6.29 -> 9.45 us), Nsight Compute sections and stall
#    reasons, per-SASS-line samples of 7b wqkv M = 16;
#  - M = 64 on 1.8b wo (0.95x; 6.79 us against fp16's 6.44): the wgmma kernel's sections, stalls and
#    SASS lines (is a group's time the wgmma wait, the barrier or the copies?), and cuBLAS's kernel
#    beside it.
# ~4-5 min from a bare machine. Clocks are left alone (as the benchmarks run).
#
#   OUT=/some/dir bash perf/wip/w4a16-m16-m64-ncu.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
nvidia-smi --query-gpu=name --format=csv,noheader
build_gpu ridgeline_bench
ncu_profile 7b-wqkv-m8 w4a16_gemv 'BM_W4A16Path/4/8/0/'
ncu_profile 7b-wqkv-m16 w4a16_gemv 'BM_W4A16Path/4/16/0/'
ncu_profile 7b-wo-m16 w4a16_gemv 'BM_W4A16Path/5/16/0/'
ncu_profile 1_8b-wo-m64 w4a16_gemm_wgmma 'BM_W4A16VsFp16/1/64/'
ncu_profile 1_8b-wo-m64-fp16 '^(?!w4a16|synthetic|fill)' 'BM_W4A16VsFp16/1/64/'
timeout 100 bash scripts/ncu-sass.sh "$W/sass-7b-wqkv-m16" w4a16_gemv_kernel 'BM_W4A16Path/4/16/0/'
head -45 "$W/sass-7b-wqkv-m16/sass.txt"
timeout 100 bash scripts/ncu-sass.sh "$W/sass-1_8b-wo-m64" w4a16_gemm_wgmma_kernel 'BM_W4A16VsFp16/1/64/'
head -45 "$W/sass-1_8b-wo-m64/sass.txt"
echo "done at $(( $(date +%s) - start )) s"

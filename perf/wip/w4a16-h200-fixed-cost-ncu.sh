#!/usr/bin/env bash
# Forty-fifth session, for an H200 (runs on any Hopper card): Nsight Compute on the cells issue 9
# misses there by fixed cost rather than bytes (bench/results/h200-baselines-f195121/):
#  - 1.8b wqkv at 64 rows: 8.18 us at both 48 and 64 rows against fp16's 7.3 (0.89x) at f195121,
#    then the tiled kernel in two n-tiles of 32 (two_tiles_of_32); since d483546 the wgmma kernel in
#    n-tiles of 32 and clusters of 2 (w4a16_gemm_wgmma_pairs_of_32; 6.4 us on an H100, where the
#    tiled kernel took 7.9-8.3). 4.2 MB of codes, 1 us of DRAM time at 4.5 TB/s. Its sections,
#    stalls and SASS lines beside cuBLAS's kernel;
#  - 7b wo at one row: 4.69 us against fp16's 10.76 (2.30x; 3.2x asks 3.36 us), 2.0 us of bytes: the
#    ring GEMV's sections and stalls beside fp16's GEMV.
# ~4 min from a bare machine.
#
#   OUT=/some/dir bash perf/wip/w4a16-h200-fixed-cost-ncu.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/ncu.tgz" -C "$OUT" w' EXIT
echo "card: $(card)"
build_gpu ridgeline_bench
ncu_profile 1_8b-wqkv-m64 'w4a16_gemm' 'BM_W4A16VsFp16/0/64/'
ncu_profile 1_8b-wqkv-m64-fp16 '^(?!w4a16|synthetic|fill)' 'BM_W4A16VsFp16/0/64/'
ncu_profile 7b-wo-m1 'w4a16_gemv' 'BM_W4A16VsFp16/5/1/'
ncu_profile 7b-wo-m1-fp16 '^(?!w4a16|synthetic|fill)' 'BM_W4A16VsFp16/5/1/'
timeout 100 bash scripts/ncu-sass.sh "$W/sass-1_8b-wqkv-m64" w4a16_gemm_wgmma_kernel 'BM_W4A16VsFp16/0/64/'
head -45 "$W/sass-1_8b-wqkv-m64/sass.txt"
echo "done at $(( $(date +%s) - start )) s"

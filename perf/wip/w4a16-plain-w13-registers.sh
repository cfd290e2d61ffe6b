#!/usr/bin/env bash
# Forty-eighth session, for an H200 (any Hopper card runs it; ~1 min on a warm machine whose
# build-gpu is current, ~4 from bare): 7b w13 at one row on the register kernel
# (perf/wip/w4a16-plain-w13-registers.patch: choose_plain_config gives weights of more than three
# strips an SM at one row 8-warp blocks of one slice, 4 groups a batch, r8.1.4) against the ring
# kernel's 2-warp default, in one call: BM_W4A16VsFp16 at M = 1 and 2 (the control: the rule is for
# one row) before and after, then the GEMV and model-shape tests with the patch. H100: r8.1.4 22.54 /
# 22.57 us against 24.27 / 24.12 (two runs); on the H200 3.2x asks 18.05 us of the default's 19.55.
# Land the patch if 7b w13 at M = 1 gains there and the tests pass.
# Run (forty-ninth session, H100, aa22f79; bench/results/h100-aa22f79-verify/): 23.25 -> 22.84 us at
# M = 1 (the M = 2 control +0.6%), tests 11/11; not landed (the unfused linear only, no step changes).
#
#   OUT=/some/dir bash perf/wip/w4a16-plain-w13-registers.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
build_gpu ridgeline_bench
vsfp16 "1|2" | grep -E "^vsfp16|7b"
mv "$W/vsfp16.json" "$W/vsfp16-ring.json"
patched_build perf/wip/w4a16-plain-w13-registers.patch w13.tgz ridgeline_bench ridgeline_gpu_tests
gpu_tests tests 90 'KernelW4A16Gemv*:KernelW4A16Linear.*:W4A16ModelShapes*'
vsfp16 "1|2" | grep -E "^vsfp16|7b"
mv "$W/vsfp16.json" "$W/vsfp16-registers.json"
